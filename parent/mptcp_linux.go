package parent

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Landlock's TCP rules cover sockets of protocol IPPROTO_TCP only: an
// IPPROTO_MPTCP socket binds and connects to any port whatever the
// ruleset (seen on Linux 6.18, ABI 7). Go's net.Listen makes MPTCP
// listeners by default where the kernel has MPTCP, so without more a
// sandboxed Go program's net.Listen ignores BindTCP. When TCP is
// restricted, a seccomp filter therefore makes creating an MPTCP socket
// fail with EACCES, on every thread at once (SECCOMP_FILTER_FLAG_TSYNC, which
// needs no help under cgo); Go then falls back to plain TCP, which Landlock
// checks.

const ipprotoMPTCP = 262

// seccompArch is what the filter checks for one system call ABI the
// process can use: sockets are made with one of socketNrs, whose third
// argument is the protocol; opaqueNrs are calls that could make a socket
// without the filter being able to see the protocol (i386 socketcall
// passes its arguments in memory), which fail with ENOSYS.
type seccompArch struct {
	audit     uint32
	socketNrs []uint32
	opaqueNrs []uint32
	littleEnd bool
}

// mptcpFilter builds the filter for arches: unknown architectures and every
// other call are allowed.
func mptcpFilter(arches []seccompArch) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, Jf: jf, K: k}
	}
	const (
		ld      = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		ret     = unix.BPF_RET | unix.BPF_K
		offNr   = 0
		offArch = 4
		offArg2 = 16 + 2*8 // seccomp_data.args[2]
	)
	allow := stmt(ret, unix.SECCOMP_RET_ALLOW)
	f := []unix.SockFilter{stmt(ld, offArch)}
	for _, a := range arches {
		var block []unix.SockFilter
		block = append(block, stmt(ld, offNr))
		arg2 := uint32(offArg2) // the low half of the 64-bit slot holds the int
		if !a.littleEnd {
			arg2 += 4
		}
		for _, nr := range a.socketNrs {
			block = append(block,
				jeq(nr, 0, 4),
				stmt(ld, arg2),
				jeq(ipprotoMPTCP, 0, 1),
				stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EACCES)),
				allow,
				stmt(ld, offNr), // back to the number for the next comparison
			)
		}
		for _, nr := range a.opaqueNrs {
			block = append(block, jeq(nr, 0, 1), stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS)))
		}
		block = append(block, allow)
		f = append(f, jeq(a.audit, 0, uint8(len(block))))
		f = append(f, block...)
	}
	return append(f, allow)
}

// refuseMPTCP installs the filter on every thread. no_new_privs must hold.
func refuseMPTCP() error {
	arches := mptcpArches()
	if arches == nil {
		return nil // planLandlock reported it (see haveMPTCPFilter)
	}
	filter := mptcpFilter(arches)
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("privsep: seccomp filter refusing MPTCP sockets on every thread: %w", e)
	}
	if r != 0 {
		return fmt.Errorf("privsep: seccomp filter refusing MPTCP sockets: thread %d could not take it", r)
	}
	return nil
}

// haveMPTCPFilter says whether this architecture has the filter.
func haveMPTCPFilter() bool { return mptcpArches() != nil }

package parent

import (
	"fmt"
	"runtime"

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
// checks. The filter also refuses io_uring, which makes sockets without
// socket(2): a ring set up before the sandbox cannot be entered after it
// either.

const ipprotoMPTCP = 262

// seccompArch is what the filter checks for one system call ABI the
// process can use: sockets are made with one of socketNrs, whose third
// argument is the protocol. socketcall, when not 0, is the number of the
// multiplexed socketcall(2) (i386): its first argument, the sub-call, is
// visible, but the socket's arguments are in memory, which a seccomp filter
// cannot read. socketcall(SYS_SOCKET) therefore fails with ENOSYS (a libc
// with socket(2) never uses it); its other sub-calls (recvmsg, accept4,
// ...) make no new socket of a chosen protocol and are allowed.
//
// ioURingNrs are io_uring_setup, _enter and _register: a ring makes
// sockets itself (IORING_OP_SOCKET, Linux 5.19), its protocol in shared
// memory, never passing socket(2) or the filter; it too fails with ENOSYS,
// as on a kernel without io_uring.
type seccompArch struct {
	audit      uint32
	socketNrs  []uint32
	socketcall uint32
	ioURingNrs []uint32
	littleEnd  bool
}

// sysSocketcallSocket is socketcall's sub-call number for socket(2)
// (linux/net.h SYS_SOCKET).
const sysSocketcallSocket = 1

// mptcpFilter builds the filter for arches, which must be every system call
// ABI the kernel lets the process use: a call of an ABI not among them could
// make an MPTCP socket unseen, so it fails with ENOSYS. Every other call is
// allowed.
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
		offArg0 = 16 // seccomp_data.args[0]
		offArg2 = 16 + 2*8
	)
	allow := stmt(ret, unix.SECCOMP_RET_ALLOW)
	enosys := stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	f := []unix.SockFilter{stmt(ld, offArch)}
	for _, a := range arches {
		var block []unix.SockFilter
		block = append(block, stmt(ld, offNr))
		arg0, arg2 := uint32(offArg0), uint32(offArg2) // the low half of the 64-bit slot holds the int
		if !a.littleEnd {
			arg0, arg2 = arg0+4, arg2+4
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
		for _, nr := range a.ioURingNrs {
			block = append(block, jeq(nr, 0, 1), enosys)
		}
		if a.socketcall != 0 {
			block = append(block,
				jeq(a.socketcall, 0, 3),
				stmt(ld, arg0),
				jeq(sysSocketcallSocket, 0, 1),
				enosys,
			)
		}
		block = append(block, allow)
		f = append(f, jeq(a.audit, 0, uint8(len(block))))
		f = append(f, block...)
	}
	return append(f, enosys)
}

// refuseMPTCP installs the filter on every thread. no_new_privs must hold.
func refuseMPTCP() error {
	arches := mptcpArches()
	if arches == nil {
		return nil // planLandlock reported it (see haveMPTCPFilter)
	}
	filter := mptcpFilter(arches)
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, e := seccompFilterAllThreads(&prog)
	if e != 0 {
		return fmt.Errorf("privsep: seccomp filter refusing MPTCP sockets on every thread: %w", e)
	}
	if r != 0 {
		return fmt.Errorf("privsep: seccomp filter refusing MPTCP sockets: thread %d could not take it", r)
	}
	return nil
}

// mptcpArches lists the system call ABIs a process of this architecture
// can use, for the filter; nil where privsep has none.
func mptcpArches() []seccompArch { return mptcpArchesFor(runtime.GOARCH) }

// mptcpArchesFor is mptcpArches for a GOARCH. The numbers are written out
// because golang.org/x/sys/unix defines only the running architecture's.
//
// linux/386 has no filter: no filter there is both sound and usable. The
// kernel has socket(2) (359), whose protocol a filter can check, but also
// socketcall(2) (102), whose arguments are in memory, out of a filter's
// reach, and Go's own linux/386 syscall package makes every socket with
// socketcall(SYS_SOCKET). Refusing that sub-call, as the amd64 filter does
// for 32-bit programs, would leave the sandboxed program itself unable to
// make any socket (Unix, UDP, or the TCP ports BindTCP and ConnectTCP
// grant). So restricting TCP there is reported as not fully applied:
// without BestEffort an error naming IPPROTO_MPTCP. ppc64, s390x and mips
// have socketcall too; loong64 has the generic table but is untested.
func mptcpArchesFor(goarch string) []seccompArch {
	// The io_uring calls have the same numbers in every table (unified
	// from 424 on); x32's carry its bit.
	ioURing := func(base uint32) []uint32 { return []uint32{base | 425, base | 426, base | 427} }
	switch goarch {
	case "amd64":
		// x86-64, its x32 ABI (same audit arch, numbers with bit 30 set)
		// and i386 compatibility (int 0x80), with socket(2) and
		// socketcall(2).
		const x32 = 0x40000000
		return []seccompArch{
			{audit: unix.AUDIT_ARCH_X86_64, socketNrs: []uint32{41, x32 | 41}, ioURingNrs: append(ioURing(0), ioURing(x32)...), littleEnd: true},
			{audit: unix.AUDIT_ARCH_I386, socketNrs: []uint32{359}, socketcall: 102, ioURingNrs: ioURing(0), littleEnd: true},
		}
	case "arm64":
		// arm64 and 32-bit ARM compatibility (EABI only).
		return []seccompArch{
			{audit: unix.AUDIT_ARCH_AARCH64, socketNrs: []uint32{198}, ioURingNrs: ioURing(0), littleEnd: true},
			{audit: unix.AUDIT_ARCH_ARM, socketNrs: []uint32{281}, ioURingNrs: ioURing(0), littleEnd: true},
		}
	case "arm":
		// EABI: the kernel offers seccomp filters only without the old ABI,
		// the one with socketcall; Go calls socket directly.
		return []seccompArch{{audit: unix.AUDIT_ARCH_ARM, socketNrs: []uint32{281}, ioURingNrs: ioURing(0), littleEnd: true}}
	case "riscv64":
		// RISC-V 64 and its 32-bit compatibility ABI (CONFIG_COMPAT), both
		// with the generic table.
		return []seccompArch{
			{audit: unix.AUDIT_ARCH_RISCV64, socketNrs: []uint32{198}, ioURingNrs: ioURing(0), littleEnd: true},
			{audit: unix.AUDIT_ARCH_RISCV32, socketNrs: []uint32{198}, ioURingNrs: ioURing(0), littleEnd: true},
		}
	}
	return nil
}

// haveMPTCPFilter says whether this architecture has the filter.
func haveMPTCPFilter() bool { return mptcpArches() != nil }

// TCPRestrictable says whether privsep can restrict TCP completely on this
// architecture: it has the seccomp filter that refuses MPTCP sockets,
// which Landlock's TCP rules do not cover (linux/amd64, arm64, arm and
// riscv64). Where it is false, a LandlockConfig that restricts TCP fails
// unless BestEffort, which then reports "IPPROTO_MPTCP" in
// LandlockResult.NotApplied; a program that need not bind or connect after
// it is sandboxed can set AnyTCP instead. The kernel's part, Landlock ABI
// 4, is not checked here.
func TCPRestrictable() bool { return haveMPTCPFilter() }

//go:build linux && (amd64 || arm64)

package broker

import (
	"fmt"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

type notifiedCall struct {
	nr   uint32
	name Syscall
}

// Offsets in struct seccomp_data: int nr; __u32 arch; __u64 ip; __u64 args[6].
const (
	offNr   = 0
	offArch = 4
)

// filterProgram is the classic BPF program InstallFilter loads:
//
//	arch != native           -> KILL_PROCESS
//	nr has the x32 bit       -> KILL_PROCESS   (amd64 only)
//	nr is an open call       -> USER_NOTIF
//	anything else            -> ALLOW
//
// A call of another ABI (an int 0x80 from a 64-bit program, or a 32-bit
// program altogether) kills the process rather than failing with an errno:
// its numbers are not the ones listed here, so letting it through would
// open files unnotified, and an errno would leave a program that fails in
// ways nobody can read. SIGSYS ("Bad system call") names the cause.
func filterProgram() []bpf.Instruction {
	kill := bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS}
	p := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: nativeArch, SkipTrue: 1},
		kill,
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if x32Bit != 0 {
		p = append(p,
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: x32Bit, SkipFalse: 1},
			kill)
	}
	// One test per call, each jumping to the USER_NOTIF return that
	// follows the ALLOW one.
	for i, c := range notified {
		left := len(notified) - 1 - i
		p = append(p, bpf.JumpIf{Cond: bpf.JumpEqual, Val: c.nr, SkipTrue: uint8(left + 1)})
	}
	return append(p,
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
		bpf.RetConstant{Val: unix.SECCOMP_RET_USER_NOTIF})
}

// InstallFilter loads the broker's seccomp filter on the calling process
// and returns the listener: the descriptor whose owner answers the
// process's open, openat, openat2 and creat calls from then on (see
// Serve). The descriptor has close-on-exec set.
//
// Preconditions: the caller has dropped its privileges for good and set
// no_new_privs (PR_SET_NO_NEW_PRIVS); the kernel refuses the filter to an
// unprivileged process without it, and a filter installed while still
// privileged would carry over into nothing the program should have.
//
// N.B. from the moment InstallFilter returns, every open of the calling
// process waits for an answer on the listener. The caller must hand the
// listener to the supervisor (over a socket, SCM_RIGHTS), wait until the
// supervisor says it is serving, close its own copy and only then execve:
// the dynamic loader's first opens come right after execve, and a
// listener nobody reads blocks them. execve itself is not filtered; the
// kernel's own reads of the program and its interpreter are not calls.
//
// The filter is synchronised onto every thread of the process (TSYNC), so
// it does not matter which thread later calls execve; execve ends the
// other threads, and the program's own threads and children inherit it.
func InstallFilter() (int, error) {
	raw, err := bpf.Assemble(filterProgram())
	if err != nil {
		return -1, fmt.Errorf("broker: assembling the seccomp filter: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	// WAIT_KILLABLE_RECV: once the supervisor has received a call, only a
	// fatal signal interrupts the program's wait. Without it every signal
	// (a Go program's preemption SIGURG, a SIGCHLD, a timer) aborts the
	// call the supervisor is serving, the program restarts it, and a busy
	// program can keep the supervisor opening files it never gets. Kernels
	// before 5.19 refuse the flag with EINVAL; the broker then works
	// without it, as the man page's own example does.
	// TSYNC with NEW_LISTENER needs TSYNC_ESRCH (5.7): a thread that cannot
	// be synchronised makes the call fail with ESRCH instead of returning
	// its id where the listener belongs.
	base := uintptr(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
	fd, err := seccompSetFilter(base|unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fprog)
	if err == unix.EINVAL {
		fd, err = seccompSetFilter(base, &fprog)
	}
	if err != nil {
		return -1, fmt.Errorf("broker: installing the seccomp filter: %w", err)
	}
	return fd, nil
}

func seccompSetFilter(flags uintptr, prog *unix.SockFprog) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(prog)))
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// callName says which notified call nr is.
func callName(nr int32) (Syscall, bool) {
	for _, c := range notified {
		if uint32(nr) == c.nr {
			return c.name, true
		}
	}
	return "", false
}

package parent

import "kernel.org/pub/linux/libs/security/libcap/psx"

// allThreadsSyscall runs a system call on every thread of the process and
// returns its result, or the error of the first thread it failed on.
//
// Go's own syscall.AllThreadsSyscall refuses (ENOTSUP) in a program linked
// with cgo, which is most programs: os/user and net pull cgo in wherever a
// C compiler is present. psx reaches every thread either way: without cgo
// it is AllThreadsSyscall; with cgo its C half stops every thread of the
// combined Go and C runtimes and runs the call on each. Both end the
// process rather than return when the threads disagree (the call succeeded
// on some and failed on others), so a nil error means every thread.
func allThreadsSyscall(trap, a1, a2, a3 uintptr) error {
	if _, _, e := psx.Syscall6(trap, a1, a2, a3, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

//go:build linux

package parent

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sandbox's system calls that take a pointer to a structure: the only
// unsafe code of the Landlock implementation (landlock_linux.go) and of
// the MPTCP filter (mptcp_linux.go). Each returns the errno, 0 on success;
// the structure need live only for the call.

// landlockCreateRuleset is landlock_create_ruleset(2) with the first size
// bytes of attr (the size the kernel's ABI knows).
func landlockCreateRuleset(attr *landlockRulesetAttr, size uintptr) (int, unix.Errno) {
	fd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(attr)), size, 0)
	return int(fd), e
}

// landlockAddPathRule is landlock_add_rule(2) of a LANDLOCK_RULE_PATH_BENEATH.
func landlockAddPathRule(ruleset int, attr *unix.LandlockPathBeneathAttr) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(attr)), 0, 0, 0)
	return e
}

// landlockAddPortRule is landlock_add_rule(2) of a LANDLOCK_RULE_NET_PORT.
func landlockAddPortRule(ruleset int, attr *landlockNetPortAttr) unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(ruleset), landlockRuleNetPort,
		uintptr(unsafe.Pointer(attr)), 0, 0, 0)
	return e
}

// seccompFilterAllThreads is seccomp(SECCOMP_SET_MODE_FILTER,
// SECCOMP_FILTER_FLAG_TSYNC, prog): with TSYNC, a non-zero r is the id of
// a thread that could not take the filter.
func seccompFilterAllThreads(prog *unix.SockFprog) (r uintptr, e unix.Errno) {
	r, _, e = unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(prog)))
	return r, e
}

//go:build linux

package testutil

import "golang.org/x/sys/unix"

// LandlockABI returns the kernel's Landlock ABI version, 0 without
// Landlock, for a test to skip what the kernel cannot do. The probe
// changes nothing.
func LandlockABI() int {
	abi, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(abi)
}

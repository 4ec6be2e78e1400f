//go:build linux

package broker

import "golang.org/x/sys/unix"

const nativeArch = unix.AUDIT_ARCH_X86_64

// x32Bit marks the x32 ABI's system call numbers (__X32_SYSCALL_BIT). The
// x32 ABI reports AUDIT_ARCH_X86_64 too, so only this bit tells its calls
// apart: an x32 openat is number 0x40000101, which the filter would
// otherwise let through unnotified.
const x32Bit = 0x40000000

var notified = []notifiedCall{
	{unix.SYS_OPEN, SysOpen},
	{unix.SYS_OPENAT, SysOpenat},
	{unix.SYS_OPENAT2, SysOpenat2},
	{unix.SYS_CREAT, SysCreat},
}

//go:build linux

package broker

import "golang.org/x/sys/unix"

const nativeArch = unix.AUDIT_ARCH_AARCH64

// x32Bit is 0: arm64 has no second ABI sharing its audit arch (a 32-bit
// arm call reports AUDIT_ARCH_ARM and is refused by the arch check).
const x32Bit = 0

// arm64 has no open or creat: the C library makes them openat.
var notified = []notifiedCall{
	{unix.SYS_OPENAT, SysOpenat},
	{unix.SYS_OPENAT2, SysOpenat2},
}

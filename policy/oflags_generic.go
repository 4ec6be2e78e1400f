//go:build !linux || 386 || amd64 || loong64 || riscv64 || s390x

package policy

// Linux's asm-generic/fcntl.h values (x86, loong64, riscv64, s390x). Other
// operating systems use them too: no opener runs there, so the values only
// have to be Linux's for the printing and checking helpers.
const (
	oCreat     = 0x40
	oExcl      = 0x80
	oNoctty    = 0x100
	oTrunc     = 0x200
	oAppend    = 0x400
	oNonblock  = 0x800
	oDsync     = 0x1000
	oAsync     = 0x2000
	oDirect    = 0x4000
	oDirectory = 0x10000
	oNofollow  = 0x20000
	oNoatime   = 0x40000
	oCloexec   = 0x80000
	oSync      = 0x101000
	oPath      = 0x200000
	oTmpfile   = 0x410000

	// kernelLargefile is the kernel's O_LARGEFILE bit. Go's unix.O_LARGEFILE
	// is 0 on 64-bit architectures, where the kernel implies the flag, but a
	// client may still send the bit; it changes nothing, so it is accepted.
	kernelLargefile = 0x8000
)

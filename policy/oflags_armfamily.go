//go:build linux && (arm || arm64)

package policy

// Linux's arm and arm64 values: O_DIRECTORY, O_NOFOLLOW, O_DIRECT and
// O_LARGEFILE differ from asm-generic.
const (
	oCreat     = 0x40
	oExcl      = 0x80
	oNoctty    = 0x100
	oTrunc     = 0x200
	oAppend    = 0x400
	oNonblock  = 0x800
	oDsync     = 0x1000
	oAsync     = 0x2000
	oDirectory = 0x4000
	oNofollow  = 0x8000
	oDirect    = 0x10000
	oNoatime   = 0x40000
	oCloexec   = 0x80000
	oSync      = 0x101000
	oPath      = 0x200000
	oTmpfile   = 0x404000

	// kernelLargefile is the kernel's O_LARGEFILE bit (see oflags_generic.go).
	kernelLargefile = 0x20000
)

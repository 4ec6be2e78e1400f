//go:build linux && (mips || mipsle || mips64 || mips64le)

package policy

// Linux's mips values, which differ from asm-generic in most bits.
const (
	oAppend    = 0x8
	oDsync     = 0x10
	oNonblock  = 0x80
	oCreat     = 0x100
	oExcl      = 0x400
	oNoctty    = 0x800
	oAsync     = 0x1000
	oSync      = 0x4010
	oDirect    = 0x8000
	oDirectory = 0x10000
	oNofollow  = 0x20000

	// kernelLargefile is the kernel's O_LARGEFILE bit (see oflags_generic.go).
	kernelLargefile = 0x2000
)

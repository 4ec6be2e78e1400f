//go:build linux && (arm || arm64)

package policy

// Linux's arm and arm64 values for the bits that differ from asm-generic.
const (
	oDirectory = 0x4000
	oNofollow  = 0x8000
	oDirect    = 0x10000

	// kernelLargefile is the kernel's O_LARGEFILE bit (see oflags_generic.go).
	kernelLargefile = 0x20000
)

//go:build !linux || 386 || amd64 || loong64 || riscv64 || s390x

package policy

// The bits arm and powerpc renumber, as asm-generic/fcntl.h has them (x86,
// loong64, riscv64, s390x, and the other operating systems).
const (
	oDirect    = 0x4000
	oDirectory = 0x10000
	oNofollow  = 0x20000

	// kernelLargefile is the kernel's O_LARGEFILE bit. Go's unix.O_LARGEFILE
	// is 0 on 64-bit architectures, where the kernel implies the flag, but a
	// client may still send the bit; it changes nothing, so it is accepted.
	kernelLargefile = 0x8000
)

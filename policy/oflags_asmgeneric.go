//go:build !linux || 386 || amd64 || arm || arm64 || loong64 || ppc64 || ppc64le || riscv64 || s390x

package policy

// Linux's asm-generic/fcntl.h values that every family but mips keeps: arm
// and powerpc number only O_DIRECTORY, O_NOFOLLOW, O_DIRECT and O_LARGEFILE
// their own way. Other operating systems use them too: no opener runs
// there, so the values only have to be Linux's for the printing and
// checking helpers.
const (
	oCreat    = 0x40
	oExcl     = 0x80
	oNoctty   = 0x100
	oAppend   = 0x400
	oNonblock = 0x800
	oDsync    = 0x1000
	oAsync    = 0x2000
	oSync     = 0x101000
)

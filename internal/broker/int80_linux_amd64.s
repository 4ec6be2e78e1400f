#include "textflag.h"

// func int80(nr, a1, a2, a3 uintptr) (r uintptr)
// A system call through the i386 ABI, for the test that the filter
// refuses a foreign-ABI call. It bypasses the Go runtime's syscall
// bookkeeping: only for quick calls.
TEXT ·int80(SB),NOSPLIT,$0-40
	MOVQ nr+0(FP), AX
	MOVQ a1+8(FP), BX
	MOVQ a2+16(FP), CX
	MOVQ a3+24(FP), DX
	INT $0x80
	MOVQ AX, r+32(FP)
	RET

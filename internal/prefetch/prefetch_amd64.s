#include "textflag.h"

// func Line(addr uintptr)
TEXT ·Line(SB), NOSPLIT|NOFRAME, $0-8
	MOVQ addr+0(FP), AX
	PREFETCHT0 (AX)
	RET

// func Span(addr, n uintptr): PREFETCHT0 for each 64-byte line from the
// one holding addr to the one holding addr+n-1, counted (a loop on the
// address would wrap at the top of the address space and never end).
TEXT ·Span(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ addr+0(FP), AX
	MOVQ n+8(FP), BX
	TESTQ BX, BX
	JEQ done
	LEAQ -1(AX)(BX*1), BX
	SHRQ $6, BX
	MOVQ AX, CX
	SHRQ $6, CX
	SUBQ CX, BX
	INCQ BX // lines
	ANDQ $~63, AX
loop:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	DECQ BX
	JNE loop
done:
	RET

#include "textflag.h"

// func Line(addr uintptr)
TEXT ·Line(SB), NOSPLIT|NOFRAME, $0-8
	MOVD addr+0(FP), R0
	PRFM (R0), PLDL1KEEP
	RET

// func Span(addr, n uintptr): PRFM PLDL1KEEP for each 64-byte line from
// the one holding addr to the one holding addr+n-1, counted (a loop on
// the address would wrap at the top of the address space); on cores with
// 128-byte lines every other one is a repeat, harmless.
TEXT ·Span(SB), NOSPLIT|NOFRAME, $0-16
	MOVD addr+0(FP), R0
	MOVD n+8(FP), R1
	CBZ R1, done
	ADD R0, R1, R1
	SUB $1, R1, R1
	LSR $6, R1, R1
	LSR $6, R0, R2
	SUB R2, R1, R1
	ADD $1, R1, R1
	AND $~63, R0, R0
loop:
	PRFM (R0), PLDL1KEEP
	ADD $64, R0, R0
	SUBS $1, R1, R1
	BNE loop
done:
	RET

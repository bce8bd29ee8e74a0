package link

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// Registers of a classic program translated to eBPF, as the kernel's own
// conversion (bpf_convert_filter) assigns them: A is r0, so that the
// legacy packet loads (which return in r0) and the exit need no move; the
// packet loads want the socket buffer in r6.
const (
	regA   = asm.R0
	regX   = asm.R7
	regCtx = asm.R6
	regTmp = asm.R8
)

// skbProtocol is the offset of protocol in struct __sk_buff (network byte
// order, in a 32-bit field).
const skbProtocol = 16

// scratchSlot is the stack offset of classic scratch word n.
func scratchSlot(n int) int16 { return int16(-4 * (n + 1)) }

// cbpfToEBPF translates a classic socket program into eBPF, one
// instruction (or a few) each, so that a program built and tested as
// classic BPF (ClientHash's, checked in bpf.VM and against its Go twin)
// can run where only eBPF may (PACKET_FANOUT_EBPF), and gain what classic
// BPF has no way to do (a map lookup). Instruction i of the classic
// program is labelled "c<i>"; its returns jump to label ret with the
// result in r0, or leave the program when ret is "".
//
// Only the loads a socket program uses are translated: absolute and
// indirect packet loads (SKF_NET_OFF offsets too: the eBPF packet loads
// accept them), the IP header length load, scratch memory and the protocol
// extension.
func cbpfToEBPF(raw []bpf.RawInstruction, ret string) (asm.Instructions, error) {
	return translateCBPF(raw, ret, skbLoads{})
}

// cbpfLoads translates a classic program's packet loads, which differ
// between program types: a socket program has the legacy packet loads,
// an XDP program reads packet memory directly.
type cbpfLoads interface {
	// prologue starts the program (A and X are zeroed after it).
	prologue() asm.Instructions
	// load is A = P[X+off] (indirect) or P[off], size bytes, big endian.
	load(off uint32, size asm.Size, indirect bool) asm.Instructions
	// loadMemShift is X = 4*(P[off]&0xf), A kept.
	loadMemShift(off uint32) asm.Instructions
	// protocol is A = the frame's EtherType.
	protocol() (asm.Instructions, error)
	// epilogue ends the program: the labels the loads jump to.
	epilogue(leave asm.Instruction) asm.Instructions
	// scratch is where classic scratch word n lives on the stack, and
	// how wide its slot is.
	scratch(n int) (int16, asm.Size)
}

// skbLoads are a socket program's loads (SKF_NET_OFF offsets too: the
// eBPF packet loads accept them), which end the program with 0 when out
// of bounds, as the classic ones do.
type skbLoads struct{}

func (skbLoads) prologue() asm.Instructions { return asm.Instructions{asm.Mov.Reg(regCtx, asm.R1)} }

func (skbLoads) load(off uint32, size asm.Size, indirect bool) asm.Instructions {
	if indirect {
		return asm.Instructions{asm.LoadInd(asm.R0, regX, int32(off), size)}
	}
	return asm.Instructions{asm.LoadAbs(int32(off), size)}
}

func (skbLoads) loadMemShift(off uint32) asm.Instructions {
	// The packet load returns in r0, which is A.
	return asm.Instructions{
		asm.Mov.Reg(regTmp, regA),
		asm.LoadAbs(int32(off), asm.Byte),
		asm.And.Imm32(asm.R0, 0xf),
		asm.LSh.Imm32(asm.R0, 2),
		asm.Mov.Reg(regX, asm.R0),
		asm.Mov.Reg(regA, regTmp),
	}
}

func (skbLoads) protocol() (asm.Instructions, error) {
	return asm.Instructions{
		asm.LoadMem(regA, regCtx, skbProtocol, asm.Word),
		asm.HostTo(asm.BE, regA, asm.Half),
	}, nil
}

func (skbLoads) epilogue(asm.Instruction) asm.Instructions { return nil }

func (skbLoads) scratch(n int) (int16, asm.Size) { return scratchSlot(n), asm.Word }

// translateCBPF is cbpfToEBPF with the packet loads of loads.
func translateCBPF(raw []bpf.RawInstruction, ret string, loads cbpfLoads) (asm.Instructions, error) {
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("%w: a classic instruction that does not disassemble", ErrFanout)
	}
	label := func(i int) string { return fmt.Sprintf("c%d", i) }
	// A classic program starts with A, X and the scratch words zero; the
	// verifier wants the registers written before they are read (the
	// classic checker already refused reads of unwritten scratch words).
	out := append(loads.prologue(),
		asm.Mov.Imm(regA, 0),
		asm.Mov.Imm(regX, 0),
	)
	leave := func() asm.Instruction {
		if ret == "" {
			return asm.Return()
		}
		return asm.Ja.Label(ret)
	}
	reg := func(r bpf.Register) asm.Register {
		if r == bpf.RegX {
			return regX
		}
		return regA
	}
	for i, in := range ins {
		target := func(skip int) string { return label(i + 1 + skip) }
		var seq asm.Instructions
		switch v := in.(type) {
		case bpf.LoadConstant:
			seq = asm.Instructions{asm.Mov.Imm32(reg(v.Dst), int32(v.Val))}
		case bpf.LoadScratch:
			off, size := loads.scratch(v.N)
			seq = asm.Instructions{asm.LoadMem(reg(v.Dst), asm.RFP, off, size)}
		case bpf.StoreScratch:
			off, size := loads.scratch(v.N)
			seq = asm.Instructions{asm.StoreMem(asm.RFP, off, reg(v.Src), size)}
		case bpf.LoadAbsolute:
			sz, err := loadSize(v.Size)
			if err != nil {
				return nil, err
			}
			seq = loads.load(v.Off, sz, false)
		case bpf.LoadIndirect:
			sz, err := loadSize(v.Size)
			if err != nil {
				return nil, err
			}
			seq = loads.load(v.Off, sz, true)
		case bpf.LoadMemShift:
			seq = loads.loadMemShift(v.Off)
		case bpf.LoadExtension:
			if v.Num != bpf.ExtProto {
				return nil, fmt.Errorf("%w: classic extension %d has no translation", ErrFanout, v.Num)
			}
			var err error
			if seq, err = loads.protocol(); err != nil {
				return nil, err
			}
		case bpf.ALUOpConstant:
			op, err := aluOp(v.Op)
			if err != nil {
				return nil, err
			}
			if (v.Op == bpf.ALUOpDiv || v.Op == bpf.ALUOpMod) && v.Val == 0 {
				return nil, fmt.Errorf("%w: division by a constant 0", ErrFanout)
			}
			seq = asm.Instructions{op.Imm32(regA, int32(v.Val))}
		case bpf.ALUOpX:
			op, err := aluOp(v.Op)
			if err != nil {
				return nil, err
			}
			seq = asm.Instructions{op.Reg32(regA, regX)}
			if v.Op == bpf.ALUOpDiv || v.Op == bpf.ALUOpMod {
				// Classic BPF ends the program with 0 on a division by
				// a zero X; eBPF's would go on (A/0 is 0, A%0 is A), so
				// test first, as the kernel's own conversion does.
				seq = asm.Instructions{
					asm.JNE.Imm32(regX, 0, label(i)+"div"),
					asm.Mov.Imm32(regA, 0),
					leave(),
					op.Reg32(regA, regX).WithSymbol(label(i) + "div"),
				}
			}
		case bpf.Jump:
			seq = asm.Instructions{asm.Ja.Label(target(int(v.Skip)))}
		case bpf.JumpIf:
			seq = condJump(v.Cond, func(op asm.JumpOp, to string) asm.Instruction {
				return op.Imm32(regA, int32(v.Val), to)
			}, target(int(v.SkipTrue)), target(int(v.SkipFalse)))
		case bpf.JumpIfX:
			seq = condJump(v.Cond, func(op asm.JumpOp, to string) asm.Instruction {
				return op.Reg32(regA, regX, to)
			}, target(int(v.SkipTrue)), target(int(v.SkipFalse)))
		case bpf.RetA:
			seq = asm.Instructions{leave()}
		case bpf.RetConstant:
			seq = asm.Instructions{asm.Mov.Imm32(regA, int32(v.Val)), leave()}
		case bpf.TAX:
			seq = asm.Instructions{asm.Mov.Reg32(regX, regA)}
		case bpf.TXA:
			seq = asm.Instructions{asm.Mov.Reg32(regA, regX)}
		default:
			return nil, fmt.Errorf("%w: classic instruction %v has no translation", ErrFanout, in)
		}
		seq[0] = seq[0].WithSymbol(label(i))
		out = append(out, seq...)
	}
	return append(out, loads.epilogue(leave())...), nil
}

// condJump jumps to yes when the classic condition holds, else to no
// (both labels; no is usually the next instruction). eBPF has every
// classic comparison but "bits not set", which is "bits set" with the
// targets swapped.
func condJump(c bpf.JumpTest, jump func(asm.JumpOp, string) asm.Instruction, yes, no string) asm.Instructions {
	var op asm.JumpOp
	switch c {
	case bpf.JumpEqual:
		op = asm.JEq
	case bpf.JumpNotEqual:
		op = asm.JNE
	case bpf.JumpGreaterThan:
		op = asm.JGT
	case bpf.JumpLessThan:
		op = asm.JLT
	case bpf.JumpGreaterOrEqual:
		op = asm.JGE
	case bpf.JumpLessOrEqual:
		op = asm.JLE
	case bpf.JumpBitsSet:
		op = asm.JSet
	case bpf.JumpBitsNotSet:
		op, yes, no = asm.JSet, no, yes
	}
	return asm.Instructions{jump(op, yes), asm.Ja.Label(no)}
}

func loadSize(n int) (asm.Size, error) {
	switch n {
	case 1:
		return asm.Byte, nil
	case 2:
		return asm.Half, nil
	case 4:
		return asm.Word, nil
	}
	return 0, fmt.Errorf("%w: a classic load of %d bytes", ErrFanout, n)
}

func aluOp(op bpf.ALUOp) (asm.ALUOp, error) {
	switch op {
	case bpf.ALUOpAdd:
		return asm.Add, nil
	case bpf.ALUOpSub:
		return asm.Sub, nil
	case bpf.ALUOpMul:
		return asm.Mul, nil
	case bpf.ALUOpDiv:
		return asm.Div, nil
	case bpf.ALUOpOr:
		return asm.Or, nil
	case bpf.ALUOpAnd:
		return asm.And, nil
	case bpf.ALUOpShiftLeft:
		return asm.LSh, nil
	case bpf.ALUOpShiftRight:
		return asm.RSh, nil
	case bpf.ALUOpMod:
		return asm.Mod, nil
	case bpf.ALUOpXor:
		return asm.Xor, nil
	}
	return 0, fmt.Errorf("%w: classic ALU operation %d has no translation", ErrFanout, op)
}

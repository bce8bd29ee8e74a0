package link

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// xdpLoads are an XDP program's packet loads for a translated classic
// program (translateCBPF): direct reads of packet memory, each checked
// against the packet's end first (the verifier refuses any other), with
// the frame's context in regCtx. A load out of bounds ends the classic
// program with 0, as the kernel's classic loads do, so the translation
// gives what bpf.VM gives for the same frame.
//
// The XDP program reads the whole frame where a classic fanout program
// reads the socket buffer's linear part only: on a driver that builds
// skbs with the headers in fragments, an ICMP error whose quoted header
// lies there could hash apart on the two paths (veth and drivers running
// XDP build linear skbs; the frame then reaches a worker that does not
// own the client, which handles it as an unknown flow).
//
// Offsets are from the frame's first byte: the classic program is built
// with plain offsets (ClientHash.program with net 14 and the EtherType
// read at 12), as bpf.VM runs it in the tests.
type xdpLoads struct{}

// xdpOutOfBounds is the label of the loads' failure.
const xdpOutOfBounds = "cbpf_oob"

func (xdpLoads) prologue() asm.Instructions { return nil }

func (xdpLoads) load(off uint32, size asm.Size, indirect bool) asm.Instructions {
	end := int32(off) + int32(size.Sizeof())
	var seq asm.Instructions
	if !indirect {
		seq = packetData(regCtx, asm.R4, end, xdpOutOfBounds)
	} else {
		// packetData with X added to data before the check. X is
		// bounded wherever the hash program loads through it (4 * a
		// nibble, or (a byte + 1) * 8 + 40): the verifier knows it.
		seq = asm.Instructions{
			asm.LoadMem(asm.R2, regCtx, 0, asm.Word), // data
			asm.LoadMem(asm.R3, regCtx, 4, asm.Word), // data_end
			asm.Add.Reg(asm.R2, regX),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Imm(asm.R4, end),
			asm.JGT.Reg(asm.R4, asm.R3, xdpOutOfBounds),
		}
	}
	seq = append(seq, asm.LoadMem(regA, asm.R2, int16(off), size))
	if size != asm.Byte {
		seq = append(seq, asm.HostTo(asm.BE, regA, size))
	}
	return seq
}

func (xdpLoads) loadMemShift(off uint32) asm.Instructions {
	return append(packetData(regCtx, asm.R4, int32(off)+1, xdpOutOfBounds),
		asm.LoadMem(regX, asm.R2, int16(off), asm.Byte),
		asm.And.Imm32(regX, 0xf),
		asm.LSh.Imm32(regX, 2),
	)
}

func (xdpLoads) protocol() (asm.Instructions, error) {
	return nil, errors.New("link: the protocol extension has no XDP translation (read the EtherType at 12)")
}

// scratch: whole 8-byte slots, as the verifier keeps a value's bounds
// only through a spill of the whole register, and the hash program keeps
// the offset it loads through in scratch (ClientHash's words6x). A and X
// hold 32-bit values with the upper half zero, so the wider slot stores
// and restores exactly the classic word.
func (xdpLoads) scratch(n int) (int16, asm.Size) { return int16(-8 * (n + 1)), asm.DWord }

func (xdpLoads) epilogue(leave asm.Instruction) asm.Instructions {
	return asm.Instructions{asm.Mov.Imm32(regA, 0).WithSymbol(xdpOutOfBounds), leave}
}

// clientHashXDP is h's hash (ClientHash.Sum of the frame's client: what
// its fanout program returns) as XDP instructions that leave it in R0 and
// jump to ret, with the frame's context in regCtx (R6). They clobber R1-R5
// and regX (R7) and the top 128 bytes of the stack (the classic scratch
// words); R8 and R9 are kept. Frames too short for what the hash
// reads, and frames not IPv4 or IPv6, hash to 0, as in the fanout program.
func clientHashXDP(h ClientHash, ret string) (asm.Instructions, error) {
	raw, err := h.program(14, bpf.LoadAbsolute{Off: 12, Size: 2}, 0)
	if err != nil {
		return nil, err
	}
	insns, err := translateCBPF(raw, ret, xdpLoads{})
	if err != nil {
		return nil, fmt.Errorf("client hash for XDP: %w", err)
	}
	return insns, nil
}

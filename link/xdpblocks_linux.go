package link

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Program blocks that the XDP program's XDP_TX paths share
// (xdpstateless_linux.go, xdpflows_linux.go), some with the socket
// filter's kernel paths (pktsyns_linux.go, kflowblock_linux.go): a map
// lookup, the IPv6 fixed header and the frame's MACs. cfg points at a map
// value whose bytes 4 to 9 are the director's MAC; data at the frame,
// whose first 12 bytes the caller has checked are in bounds.

// The IPv4 and IPv6 ethertypes (0x0800, 0x86dd) as a half-word load of
// the wire bytes gives them on a little-endian CPU, as the programs
// compare them.
const (
	ethIPv4 = 0x0008
	ethIPv6 = 0xdd86
)

// ipv6PayloadLength goes on when the IP header after the frame's
// Ethernet header (at data, its first 14+6 bytes checked in bounds by
// the caller) is version 6, with the header's payload length (host
// order) in length, and jumps to fail otherwise; it clobbers scratch.
// The kernel-flow block, the XDP program's SYN block and the socket
// filter's SYN branch read the fixed header so.
func ipv6PayloadLength(data, scratch, length asm.Register, fail string) asm.Instructions {
	const eth = 14
	return asm.Instructions{
		asm.LoadMem(scratch, data, eth, asm.Byte),
		asm.And.Imm(scratch, 0xf0),
		asm.JNE.Imm(scratch, 0x60, fail), // version 6
		asm.LoadMem(length, data, eth+4, asm.Half),
		asm.HostTo(asm.BE, length, asm.Half),
		asm.And.Imm(length, 0xffff),
	}
}

// toUsNotFromUs goes on at label next (the caller's next instruction)
// when the frame's destination MAC is the director's and its source is
// not (drlb drops its own frames), and jumps to fail otherwise. It
// clobbers a and b. It loads 2 bytes at a time, so that a copy of the
// frame on the stack (the socket filter's), which must be read aligned,
// can sit with its IP header on a 4-byte boundary.
func toUsNotFromUs(data, cfg, a, b asm.Register, fail, next string) asm.Instructions {
	var insns asm.Instructions
	for _, off := range []int16{0, 2, 4} { // to our MAC?
		insns = append(insns,
			asm.LoadMem(a, data, off, asm.Half),
			asm.LoadMem(b, cfg, 4+off, asm.Half),
			asm.JNE.Reg(a, b, fail),
		)
	}
	for _, off := range []int16{0, 2} { // not from it
		insns = append(insns,
			asm.LoadMem(a, data, 6+off, asm.Half),
			asm.LoadMem(b, cfg, 4+off, asm.Half),
			asm.JNE.Reg(a, b, next),
		)
	}
	return append(insns,
		asm.LoadMem(a, data, 10, asm.Half),
		asm.LoadMem(b, cfg, 8, asm.Half),
		asm.JEq.Reg(a, b, fail),
	)
}

// rewriteMACs makes the frame's destination MAC the 6 bytes at server
// and its source the director's. It clobbers a.
func rewriteMACs(data, server, cfg, a asm.Register) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(a, server, 0, asm.Word), // destination: the real server
		asm.StoreMem(data, 0, a, asm.Word),
		asm.LoadMem(a, server, 4, asm.Half),
		asm.StoreMem(data, 4, a, asm.Half),
		asm.LoadMem(a, cfg, 4, asm.Word), // source: us
		asm.StoreMem(data, 6, a, asm.Word),
		asm.LoadMem(a, cfg, 8, asm.Half),
		asm.StoreMem(data, 10, a, asm.Half),
	}
}

// packetData loads data and data_end from the XDP context in ctx into R2
// and R3 again (a helper call leaves them unknown) and jumps to fail
// unless n bytes of the frame are there, the bounds check the verifier
// wants for loads below n. It clobbers scratch.
func packetData(ctx, scratch asm.Register, n int32, fail string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, ctx, 0, asm.Word),
		asm.LoadMem(asm.R3, ctx, 4, asm.Word),
		asm.Mov.Reg(scratch, asm.R2),
		asm.Add.Imm(scratch, n),
		asm.JGT.Reg(scratch, asm.R3, fail),
	}
}

// switchedOn looks up element 0 of cfg, a one-element array whose value
// starts with an "on" u32 (the kernel-flow and stateless-SYN blocks'
// switches), with key as the u32 key's stack slot: it jumps to off when
// the switch is off, and otherwise leaves the value's pointer in ptr. It
// clobbers R0-R5.
func switchedOn(cfg *ebpf.Map, key int16, ptr asm.Register, off string) asm.Instructions {
	insns := asm.Instructions{asm.StoreImm(asm.RFP, key, 0, asm.Word)}
	insns = append(insns, stackLookup(cfg, key)...)
	return append(insns,
		asm.JEq.Imm(asm.R0, 0, off),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.Word),
		asm.JEq.Imm(asm.R4, 0, off), // off
		asm.Mov.Reg(ptr, asm.R0),
	)
}

// stackLookup looks up the key at the frame pointer's offset key in mp:
// R0 is the value or 0, R1-R5 are clobbered.
func stackLookup(mp *ebpf.Map, key int16) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, mp.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, int32(key)),
		asm.FnMapLookupElem.Call(),
	}
}

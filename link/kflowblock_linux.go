package link

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The kernel-flow block: the checks and lookups that decide whether the
// kernel forwards a frame of a kernel flow itself (FlowPort), shared by
// the AF_XDP port's XDP program (xdpflows_linux.go, which reads the
// packet) and the AF_PACKET port's socket filter (pktflows_linux.go,
// which reads a copy on its stack). Each adds what it does with a frame
// the block accepts.

// kflowAccess is how the block reads the frame.
type kflowAccess struct {
	// prologue runs once kernel flows are on, cfg's value in R9; it may
	// jump to kflowdone.
	prologue asm.Instructions
	// read makes the frame's bytes [0, n) readable through R2 (the
	// bytes before from were already), or jumps to kflowdone when the
	// frame is shorter. It clobbers R0-R5.
	read func(from, n int32) asm.Instructions
	// within jumps to kflowdone unless the IPv4 packet, total length in
	// R5, is all in the frame (R2 from read). It clobbers R1, R4.
	within asm.Instructions
	// superOK jumps to kflowmtu, past the MTU check, for a super-frame
	// (GSO: the kernel segments it on its way out, as it does drlb's,
	// whose MTU check skips them too). It clobbers R1, R4.
	superOK asm.Instructions
}

// Stack slots of the block (below the 64 bytes of a translated classic
// program's scratch words).
const (
	kflowKeySlot   = -80 // 16 bytes: kflowKey
	kflowZeroSlot  = -84 // u32 0: the cfg and slot arrays' key
	kflowSrvSlot   = -88 // u32: the flow's server
	kflowTotalSlot = -96 // u64: the IPv4 total length
	// 48 bytes: the socket filter's copy of the frame, 2 bytes off a
	// 4-byte boundary, so that the IP header's words load aligned (the
	// verifier wants stack loads aligned).
	kflowFrameSlot = -146
)

// kflowTCPEnd is how much of a TCP frame the block reads (through the
// flags), kflowUDPEnd of a UDP one (through the UDP header); a frame
// shorter than kflowUDPEnd is no kernel flow's.
const (
	kflowTCPEnd = 14 + 20 + 14
	kflowUDPEnd = 14 + 20 + 8
)

// kflowBlock is the block, ctx (not R1-R5, R7, R9) holding the program's
// context throughout. It jumps to kflowdone for any frame it leaves
// alone, with R0-R5, R7 and R9 clobbered; for a frame of a flow it
// forwards it goes on at its end, with
//
//	R0 the server's value in m.servers (its MAC in the first 6 bytes)
//	R7 the flow's value in m.flows, R9 cfg's
//	kflowKeySlot the flow's key, kflowSrvSlot its server, kflowTotalSlot the packet's total length
//
// It leaves to drlb:
//
//	off                                     -> kflowdone
//	what acc's prologue refuses            -> kflowdone
//	shorter than an IPv4 UDP frame, IPv4 options (first byte not 0x45),
//	  a fragment (MF or an offset), the packet (total length) beyond the
//	  frame, or over mtu (if set) unless a super-frame acc lets through
//	                                        -> kflowdone
//	not TCP with a 20-byte header (data offset >= 5) and no SYN, FIN or RST,
//	  nor UDP with an 8-byte header, inside the packet -> kflowdone
//	not to our MAC, or from it              -> kflowdone
//	(source, VIP, ports, protocol) not in flows -> kflowdone
//	the flow's punt time reached: the next one set a refresh ahead -> kflowdone
//	the flow's server not in servers        -> kflowdone
//
// The punt is how drlb keeps seeing one frame of the flow per refresh:
// it keeps the connection's timeout and sync records fresh from it.
// The caller checked the frame is IPv4 to a VIP, or leaves that to the
// block's flows lookup (a flow's key names its VIP).
func (m *flowMaps) kflowBlock(acc kflowAccess) asm.Instructions {
	const (
		eth     = 14
		cfgPtr  = asm.R9
		valPtr  = asm.R7
		tcpDoff = 12
		tcpBad  = 0x07 // FIN, SYN, RST
		ethIPv4 = 0x0008
	)
	insns := asm.Instructions{asm.StoreImm(asm.RFP, kflowZeroSlot, 0, asm.Word)}
	insns = append(insns, stackLookup(m.cfg, kflowZeroSlot)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "kflowdone"),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.Word),
		asm.JEq.Imm(asm.R4, 0, "kflowdone"), // off
		asm.Mov.Reg(cfgPtr, asm.R0),
	)
	insns = append(insns, acc.prologue...)
	insns = append(insns, acc.read(0, kflowUDPEnd)...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R4, ethIPv4, "kflowdone"),
		asm.LoadMem(asm.R4, asm.R2, eth, asm.Byte), // version 4, no options
		asm.JNE.Imm(asm.R4, 0x45, "kflowdone"),
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4FragField, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.JSet.Imm(asm.R4, ipv4FragBits, "kflowdone"), // a fragment
		asm.LoadMem(asm.R5, asm.R2, eth+2, asm.Half),    // total length
		asm.HostTo(asm.BE, asm.R5, asm.Half),
		asm.And.Imm(asm.R5, 0xffff), // bounds it for the verifier
		asm.StoreMem(asm.RFP, kflowTotalSlot, asm.R5, asm.DWord),
	)
	insns = append(insns, acc.within...) // padding after the packet is fine
	insns = append(insns, acc.superOK...)
	insns = append(insns,
		asm.LoadMem(asm.R4, cfgPtr, 12, asm.Word), // mtu, 0: any
		asm.JEq.Imm(asm.R4, 0, "kflowmtu"),
		asm.JGT.Reg(asm.R5, asm.R4, "kflowdone"),
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4Proto, asm.Byte).WithSymbol("kflowmtu"),
		asm.JEq.Imm(asm.R4, protoUDP, "kflowudp"),
		asm.JNE.Imm(asm.R4, protoTCP, "kflowdone"),
		asm.JLT.Imm(asm.R5, 20+20, "kflowdone"), // the TCP header inside the packet
	)
	insns = append(insns, acc.read(kflowUDPEnd, kflowTCPEnd)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R2, eth+20+tcpDoff, asm.Byte),
		asm.JLT.Imm(asm.R1, 5<<4, "kflowdone"), // data offset < 5
		asm.LoadMem(asm.R1, asm.R2, eth+20+tcpFlags, asm.Byte),
		asm.JSet.Imm(asm.R1, tcpBad, "kflowdone"),
		asm.Ja.Label("kflowmac"),
		asm.JLT.Imm(asm.R5, 20+8, "kflowdone").WithSymbol("kflowudp"), // the UDP header inside the packet
	)
	mac := toUsNotFromUs(asm.R2, cfgPtr, asm.R1, asm.R5, "kflowdone", "kflowkey")
	mac[0] = mac[0].WithSymbol("kflowmac")
	insns = append(insns, mac...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Src, asm.Word).WithSymbol("kflowkey"), // as on the wire
		asm.StoreMem(asm.RFP, kflowKeySlot, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Src+4, asm.Word),
		asm.StoreMem(asm.RFP, kflowKeySlot+4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, eth+20, asm.Word), // both ports
		asm.StoreMem(asm.RFP, kflowKeySlot+8, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, kflowKeySlot+12, 0, asm.Word), // the protocol, then 3 zero bytes
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Proto, asm.Byte),
		asm.StoreMem(asm.RFP, kflowKeySlot+12, asm.R1, asm.Byte),
	)
	insns = append(insns, stackLookup(m.flows, kflowKeySlot)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "kflowdone"),
		asm.Mov.Reg(valPtr, asm.R0),
		asm.LoadMem(asm.R1, valPtr, 16, asm.Word), // the server first, then: still this flow's element?
		asm.StoreMem(asm.RFP, kflowSrvSlot, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, valPtr, 0, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, kflowKeySlot, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R2, "kflowdone"),
		asm.LoadMem(asm.R1, valPtr, 8, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, kflowKeySlot+8, asm.DWord),
		asm.JNE.Reg(asm.R1, asm.R2, "kflowdone"),
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R1, valPtr, 32, asm.DWord), // punt time
		asm.JLT.Reg(asm.R0, asm.R1, "kflowserver"),
		asm.LoadMem(asm.R1, valPtr, 24, asm.DWord), // this one to drlb, the next a refresh on
		asm.Add.Reg(asm.R0, asm.R1),
		asm.StoreMem(valPtr, 32, asm.R0, asm.DWord),
		asm.Ja.Label("kflowdone"),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("kflowserver"), // (a label needs an instruction)
	)
	insns = append(insns, stackLookup(m.servers, kflowSrvSlot)...)
	return append(insns, asm.JEq.Imm(asm.R0, 0, "kflowdone"))
}

// kflowCounted adds one frame of kflowTotalSlot's bytes to the count of
// kflowSrvSlot's server in counts and goes on at next (also when the
// server has no count: more IDs than maxKernelServers since the port
// opened; it is forwarded all the same). It clobbers R0-R5.
func kflowCounted(counts *ebpf.Map, next string) asm.Instructions {
	insns := stackLookup(counts, kflowSrvSlot)
	return append(insns,
		asm.JEq.Imm(asm.R0, 0, next),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, kflowTotalSlot, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R2),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
	)
}

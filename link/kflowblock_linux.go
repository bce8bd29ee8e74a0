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
	// within jumps to kflowdone unless the IP packet, total length in
	// R5, is all in the frame (R2 from read). It clobbers R1, R4.
	within asm.Instructions
	// superOK jumps to the label it is given, past the MTU check, for a
	// super-frame (GSO: the kernel segments it on its way out, as it
	// does drlb's, whose MTU check skips them too). It clobbers R1, R4.
	superOK func(label string) asm.Instructions
}

// Stack slots of the block (below the 64 bytes of a translated classic
// program's scratch words).
const (
	kflowKeySlot   = -104 // 40 bytes: a kflowKey6, or a kflowKey in the first 16
	kflowZeroSlot  = -108 // u32 0: the cfg and slot arrays' key
	kflowSrvSlot   = -112 // u32: the flow's server
	kflowTotalSlot = -120 // u64: the IP packet's total length
	// kflow6TCPEnd bytes: the socket filter's copy of the frame, 2 bytes
	// off a 4-byte boundary, so that the IP headers' words load aligned
	// (the verifier wants stack loads aligned).
	kflowFrameSlot = -194
)

// kflowTCPEnd is how much of an IPv4 TCP frame the block reads (through
// the flags), kflowUDPEnd of a UDP one (through the UDP header); a frame
// shorter than kflowUDPEnd is no kernel flow's. kflow6TCPEnd and
// kflow6UDPEnd are the same for IPv6 (no extension headers).
const (
	kflowTCPEnd  = 14 + 20 + 14
	kflowUDPEnd  = 14 + 20 + 8
	kflow6TCPEnd = 14 + ipv6Len + 14
	kflow6UDPEnd = 14 + ipv6Len + 8
)

// kflowBlock is the block, ctx (not R1-R5, R7, R9) holding the program's
// context throughout. It jumps to kflowdone for any frame it leaves
// alone, with R0-R5, R7 and R9 clobbered; for a frame of a flow it
// forwards it goes on at its end, with
//
//	R0 the server's value in m.servers (its MAC in the first 6 bytes)
//	R7 the flow's value in m.flows or m.flows6, R9 cfg's
//	kflowKeySlot the flow's key, kflowSrvSlot its server, kflowTotalSlot the packet's total length
//
// It leaves to drlb:
//
//	off                                     -> kflowdone
//	what acc's prologue refuses            -> kflowdone
//	neither IPv4 nor IPv6; shorter than a UDP frame of its family
//	                                        -> kflowdone
//	IPv4: options (first byte not 0x45), a fragment (MF or an offset);
//	  IPv6: not version 6, or an extension header (the next header
//	  neither TCP nor UDP)                   -> kflowdone
//	the packet (total length; IPv6: the payload length and the fixed
//	  header) beyond the frame, or over mtu (if set) unless a
//	  super-frame acc lets through          -> kflowdone
//	not TCP with a 20-byte header (data offset >= 5) and no SYN, FIN or RST,
//	  nor UDP with an 8-byte header, inside the packet -> kflowdone
//	not to our MAC, or from it              -> kflowdone
//	(source, VIP, ports, protocol) not in its family's flows -> kflowdone
//	the flow's punt time reached: the next one set a refresh ahead -> kflowdone
//	the flow's server not in servers        -> kflowdone
//
// The punt is how drlb keeps seeing one frame of the flow per refresh:
// it keeps the connection's timeout and sync records fresh from it.
// The caller checked the frame is to a VIP, or leaves that to the
// block's flows lookup (a flow's key names its VIP).
func (m *flowMaps) kflowBlock(acc kflowAccess) asm.Instructions {
	const (
		eth    = 14
		cfgPtr = asm.R9
	)
	insns := switchedOn(m.cfg, kflowZeroSlot, cfgPtr, "kflowdone")
	insns = append(insns, acc.prologue...)
	insns = append(insns, acc.read(0, kflowUDPEnd)...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R4, ethIPv6, "kflow6"),
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
	insns = append(insns, kflowMTU(acc, "kflowmtu")...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4Proto, asm.Byte).WithSymbol("kflowmtu"),
		asm.JEq.Imm(asm.R4, protoUDP, "kflowudp"),
		asm.JNE.Imm(asm.R4, protoTCP, "kflowdone"),
		asm.JLT.Imm(asm.R5, 20+20, "kflowdone"), // the TCP header inside the packet
	)
	insns = append(insns, acc.read(kflowUDPEnd, kflowTCPEnd)...)
	insns = append(insns, kflowTCPOK(eth+20)...)
	insns = append(insns,
		asm.Ja.Label("kflowmac"),
		asm.JLT.Imm(asm.R5, 20+8, "kflowdone").WithSymbol("kflowudp"), // the UDP header inside the packet
	)
	mac := toUsNotFromUs(asm.R2, cfgPtr, asm.R1, asm.R5, "kflowdone", "kflowkey")
	mac[0] = mac[0].WithSymbol("kflowmac")
	insns = append(insns, mac...)
	insns = append(insns, kflowKeyFrom(eth+ipv4Src, 8, eth+20, eth+ipv4Proto)...) // as on the wire
	insns[len(insns)-kflowKeyLen(8)] = insns[len(insns)-kflowKeyLen(8)].WithSymbol("kflowkey")
	insns = append(insns, stackLookup(m.flows, kflowKeySlot)...)
	insns = append(insns, kflowFound(kflowLayout4)...)

	// IPv6: the same checks, from the fixed header.
	read6 := acc.read(kflowUDPEnd, kflow6UDPEnd)
	read6[0] = read6[0].WithSymbol("kflow6")
	insns = append(insns, read6...)
	insns = append(insns, ipv6PayloadLength(asm.R2, asm.R4, asm.R5, "kflowdone")...)
	insns = append(insns,
		asm.Add.Imm(asm.R5, ipv6Len), // the packet's total length
		asm.StoreMem(asm.RFP, kflowTotalSlot, asm.R5, asm.DWord),
	)
	insns = append(insns, acc.within...)
	insns = append(insns, kflowMTU(acc, "kflowmtu6")...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Next, asm.Byte).WithSymbol("kflowmtu6"), // no extension header
		asm.JEq.Imm(asm.R4, protoUDP, "kflowudp6"),
		asm.JNE.Imm(asm.R4, protoTCP, "kflowdone"),
		asm.JLT.Imm(asm.R5, ipv6Len+20, "kflowdone"),
	)
	insns = append(insns, acc.read(kflow6UDPEnd, kflow6TCPEnd)...)
	insns = append(insns, kflowTCPOK(eth+ipv6Len)...)
	insns = append(insns,
		asm.Ja.Label("kflowmac6"),
		asm.JLT.Imm(asm.R5, ipv6Len+8, "kflowdone").WithSymbol("kflowudp6"),
	)
	mac6 := toUsNotFromUs(asm.R2, cfgPtr, asm.R1, asm.R5, "kflowdone", "kflowkey6")
	mac6[0] = mac6[0].WithSymbol("kflowmac6")
	insns = append(insns, mac6...)
	insns = append(insns, kflowKeyFrom(eth+ipv6Src, 32, eth+ipv6Len, eth+ipv6Next)...)
	insns[len(insns)-kflowKeyLen(32)] = insns[len(insns)-kflowKeyLen(32)].WithSymbol("kflowkey6")
	insns = append(insns, stackLookup(m.flows6, kflowKeySlot)...)
	insns = append(insns, kflowFound(kflowLayout6)...)

	insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol("kflowserver")) // (a label needs an instruction)
	insns = append(insns, stackLookup(m.servers, kflowSrvSlot)...)
	return append(insns, asm.JEq.Imm(asm.R0, 0, "kflowdone"))
}

// kflowMTU jumps to kflowdone for a packet (total length in R5) over
// cfg's MTU, and goes on at past (the caller's next instruction)
// otherwise, or at once for a super-frame (acc.superOK). It clobbers R1,
// R4.
func kflowMTU(acc kflowAccess, past string) asm.Instructions {
	var insns asm.Instructions
	if acc.superOK != nil {
		insns = append(insns, acc.superOK(past)...)
	}
	return append(insns,
		asm.LoadMem(asm.R4, asm.R9, 12, asm.Word), // mtu, 0: any
		asm.JEq.Imm(asm.R4, 0, past),
		asm.JGT.Reg(asm.R5, asm.R4, "kflowdone"),
	)
}

// kflowTCPOK jumps to kflowdone unless the TCP header at tcp (read
// through R2) is 20 bytes or more and has no SYN, FIN or RST. It clobbers
// R1.
func kflowTCPOK(tcp int16) asm.Instructions {
	const (
		tcpDoff = 12
		tcpBad  = 0x07 // FIN, SYN, RST
	)
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.R2, tcp+tcpDoff, asm.Byte),
		asm.JLT.Imm(asm.R1, 5<<4, "kflowdone"), // data offset < 5
		asm.LoadMem(asm.R1, asm.R2, tcp+tcpFlags, asm.Byte),
		asm.JSet.Imm(asm.R1, tcpBad, "kflowdone"),
	}
}

// kflowKeyFrom writes the flow's key to kflowKeySlot from the frame
// (through R2): the addrs bytes of source and destination at addr, the
// ports at ports, then the protocol byte at proto and 3 zero bytes (a
// kflowKey, or a kflowKey6). Word loads: addr and ports must be 4-byte
// aligned in a stack copy. It clobbers R1 and is kflowKeyLen(addrs)
// long.
func kflowKeyFrom(addr, addrs, ports, proto int16) asm.Instructions {
	var insns asm.Instructions
	for i := int16(0); i < addrs; i += 4 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R2, addr+i, asm.Word),
			asm.StoreMem(asm.RFP, kflowKeySlot+i, asm.R1, asm.Word),
		)
	}
	return append(insns,
		asm.LoadMem(asm.R1, asm.R2, ports, asm.Word), // both ports
		asm.StoreMem(asm.RFP, kflowKeySlot+addrs, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, kflowKeySlot+addrs+4, 0, asm.Word), // the protocol, then 3 zero bytes
		asm.LoadMem(asm.R1, asm.R2, proto, asm.Byte),
		asm.StoreMem(asm.RFP, kflowKeySlot+addrs+4, asm.R1, asm.Byte),
	)
}

// kflowKeyLen is how many instructions kflowKeyFrom emits.
func kflowKeyLen(addrs int16) int { return int(addrs/4)*2 + 5 }

// kflowFound follows a flows lookup (R0 the value or 0) in a map of
// layout l: it keeps the value in R7 and its server in kflowSrvSlot,
// checks that the element still holds the flow whose key is in
// kflowKeySlot (the server first: see kflowValue), and jumps to
// kflowserver before the punt time, to kflowdone otherwise, setting the
// next punt a refresh later. It clobbers R0-R5.
func kflowFound(l kflowLayout) asm.Instructions {
	const valPtr = asm.R7
	insns := asm.Instructions{
		asm.JEq.Imm(asm.R0, 0, "kflowdone"),
		asm.Mov.Reg(valPtr, asm.R0),
		asm.LoadMem(asm.R1, valPtr, l.server, asm.Word),
		asm.StoreMem(asm.RFP, kflowSrvSlot, asm.R1, asm.Word),
	}
	for off := int16(0); off < l.keySize; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R1, valPtr, off, asm.DWord),
			asm.LoadMem(asm.R2, asm.RFP, kflowKeySlot+off, asm.DWord),
			asm.JNE.Reg(asm.R1, asm.R2, "kflowdone"),
		)
	}
	return append(insns,
		asm.FnKtimeGetNs.Call(),
		asm.LoadMem(asm.R1, valPtr, l.puntAt, asm.DWord),
		asm.JLT.Reg(asm.R0, asm.R1, "kflowserver"),
		asm.LoadMem(asm.R1, valPtr, l.refresh, asm.DWord), // this one to drlb, the next a refresh on
		asm.Add.Reg(asm.R0, asm.R1),
		asm.StoreMem(valPtr, l.puntAt, asm.R0, asm.DWord),
		asm.Ja.Label("kflowdone"),
	)
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

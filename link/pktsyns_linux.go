package link

import (
	"github.com/cilium/ebpf/asm"
)

// Stateless SYNs on AF_PACKET (Config.KernelSYNs with OpenSplit): while
// the director's table is under pressure, a worker's socket filter hands
// bare TCP SYNs (IPv4 and IPv6) to the tc program that forwards kernel
// flows, through the same per-CPU slot (pktflows_linux.go), instead of
// queueing them for drlb. The filter picks the real server as the XDP program does
// (synMaps: the service's stateless hash onto its bucket table), so a
// never-seen client's SYN no longer waits in the SYN socket's queue with
// the flood's, and the flood's cost stays in the softirq of whoever sends
// it, as with the in-kernel forwarders.
//
//	frame -> fanout program -> worker i's socket (main, SYN or trusted SYN)
//	      -> its socket filter: slot cleared, then
//	           a bare SYN, SYNs on, its bucket a server's: slot =
//	           (flow, server MAC), counted, refused (drlb never reads it)
//	           else: kernel flows, then the VIP filter, as before
//	      -> tc ingress, at the head: the slot's frame leaves through
//	           egress with the server's MAC (tcFlowInstructions)

// Stack slots of the SYN block, below the kernel-flow block's.
const (
	pktSYNSvcKey = -208 // 8 bytes: (VIP, port, 0) as on the wire
	pktSYNAddr   = -216 // u64: the client's address, host order
	pktSYNPort   = -224 // u64: address << 16 ^ port
	pktSYNTabKey = -228 // u32
	// IPv6: the svc6 key (20 bytes), the address's halves and the port.
	pktSYN6SvcKey = -256
	pktSYN6Hi     = -264
	pktSYN6Lo     = -272
	pktSYN6Port   = -280
)

// pktSYNEnd is how much of the frame the SYN block reads: Ethernet, an
// IPv4 header without options, the TCP header through its flags;
// pktSYN6End the same for IPv6 (TCP right after the fixed header).
const (
	pktSYNEnd  = 14 + 20 + 14
	pktSYN6End = kflow6TCPEnd
)

// filterInstructions is the socket filter's SYN block, ctx (R6) the
// skb and slot (R8) this CPU's kflowSlot, cleared. It goes on at
// "syndone" for every frame it leaves to the rest of the filter, with
// R0-R5, R7 and R9 clobbered, and refuses (returns 0) the SYNs it leaves
// to the tc program:
//
//	SYNs off                                              -> syndone
//	a VLAN tag in skb metadata; shorter than pktSYNEnd;
//	  neither IPv4 nor IPv6                               -> syndone
//	IPv4: options (first byte not 0x45); a fragment;
//	  IPv6: shorter than pktSYN6End; not version 6; the next
//	  header not TCP (an extension header)                -> syndone
//	not TCP; the TCP header beyond the packet or the
//	  packet beyond the frame (IPv6: the payload length and the
//	  fixed header); a data offset under 5                -> syndone
//	not a bare SYN (SYN without ACK, FIN or RST)          -> syndone
//	(VIP, port) without a table (svc, svc6); the bucket left to drlb
//	  (IPv6: scheduler.BucketIPv6's)                      -> syndone
//	not to our MAC, or from it                            -> syndone
//	else: the slot holds the flow's key (kflowKey, kflowKey6) and the
//	  bucket's MAC, Valid its IP version, counted, refused
//
// IPv4 options are left to drlb (the XDP program takes them): SYNs that
// carry them are rare, and fixed offsets keep the copy's loads aligned.
// The copy's IP header starts on a 4-byte boundary, not an 8-byte one:
// an IPv6 address is read a word at a time.
func (m *synMaps) filterInstructions(ctx, slot asm.Register) asm.Instructions {
	const (
		eth            = 14
		cfgPtr         = asm.R9
		skbVLANPresent = 20
		tcp            = eth + 20
	)
	insns := switchedOn(m.cfg, kflowZeroSlot, cfgPtr, "syndone")
	insns = append(insns,
		asm.LoadMem(asm.R1, ctx, skbVLANPresent, asm.Word),
		asm.JNE.Imm(asm.R1, 0, "syndone"),
	)
	insns = append(insns, skbBytes(asm.FnSkbLoadBytes, ctx, 0, kflowFrameSlot, pktSYNEnd, "syndone")...) // a shorter frame
	insns = append(insns, pktSYNCopy()...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R4, ethIPv6, "syn6"),
		asm.JNE.Imm(asm.R4, ethIPv4, "syndone"),
		asm.LoadMem(asm.R4, asm.R2, eth, asm.Byte),
		asm.JNE.Imm(asm.R4, 0x45, "syndone"),
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4FragField, asm.Half),
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.JSet.Imm(asm.R4, ipv4FragBits, "syndone"),
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4Proto, asm.Byte),
		asm.JNE.Imm(asm.R4, protoTCP, "syndone"),
		asm.LoadMem(asm.R5, asm.R2, eth+2, asm.Half), // total length
		asm.HostTo(asm.BE, asm.R5, asm.Half),
		asm.And.Imm(asm.R5, 0xffff),
		asm.JLT.Imm(asm.R5, 20+20, "syndone"), // the TCP header beyond the packet
		asm.Add.Imm(asm.R5, eth),
	)
	insns = append(insns, pktBareSYN(ctx, tcp)...)
	insns = append(insns,
		// The hash's inputs and the service's key.
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Src, asm.Word), // source address
		asm.HostTo(asm.BE, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, pktSYNAddr, asm.R1, asm.DWord),
		asm.LSh.Imm(asm.R1, 16),
		asm.Xor.Reg(asm.R1, asm.R4),
		asm.StoreMem(asm.RFP, pktSYNPort, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R2, eth+ipv4Src+4, asm.Word), // (VIP, port, 0) as on the wire
		asm.StoreMem(asm.RFP, pktSYNSvcKey, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, tcp+2, asm.Half),
		asm.StoreMem(asm.RFP, pktSYNSvcKey+4, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, pktSYNSvcKey+6, 0, asm.Half),
	)
	insns = append(insns, m.bucket(pktSYNSvcKey, pktSYNAddr, pktSYNPort, pktSYNTabKey, "syndone")...)
	insns = append(insns, pktSYNSlot(slot, cfgPtr, eth+ipv4Src, 8, tcp, eth+ipv4Proto, kflowLayout4.keySize, 4, "synkey")...)
	insns = append(insns, asm.Ja.Label("syncount"))
	insns = append(insns, m.filter6(ctx, slot)...)
	count := stackLookup(m.count, kflowZeroSlot)
	count[0] = count[0].WithSymbol("syncount")
	insns = append(insns, count...)
	return append(insns,
		asm.JEq.Imm(asm.R0, 0, "synrefuse"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("synrefuse"),
		asm.Return(),
	)
}

// pktBareSYN ends both branches' checks of the frame's copy (R2): with
// R5 the packet's end in the frame, it jumps to syndone for a packet
// beyond the skb, a TCP header at tcp with a data offset under 5, or
// anything but a bare SYN (SYN without ACK, FIN or RST); else it leaves
// the source port in R4. It clobbers R1.
func pktBareSYN(ctx asm.Register, tcp int16) asm.Instructions {
	const (
		skbLen    = 0
		bare      = 0x02                      // SYN
		flagsSeen = 0x01 | 0x02 | 0x04 | 0x10 // FIN, SYN, RST, ACK
	)
	return asm.Instructions{
		asm.LoadMem(asm.R1, ctx, skbLen, asm.Word),
		asm.JGT.Reg(asm.R5, asm.R1, "syndone"), // the packet beyond the frame
		asm.LoadMem(asm.R4, asm.R2, tcp+12, asm.Byte),
		asm.JLT.Imm(asm.R4, 5<<4, "syndone"), // data offset < 5
		asm.LoadMem(asm.R4, asm.R2, tcp+tcpFlags, asm.Byte),
		asm.And.Imm(asm.R4, flagsSeen),
		asm.JNE.Imm(asm.R4, bare, "syndone"),
		asm.LoadMem(asm.R4, asm.R2, tcp, asm.Half), // source port
		asm.HostTo(asm.BE, asm.R4, asm.Half),
		asm.And.Imm(asm.R4, 0xffff),
	}
}

// filter6 is filterInstructions' IPv6 branch, entered at "syn6" with
// pktSYNEnd bytes of an IPv6 frame in the copy and cfg's value in R9. It
// goes on at its end with the slot set (a kflowKey6, Valid 6), or jumps
// to syndone.
func (m *synMaps) filter6(ctx, slot asm.Register) asm.Instructions {
	const (
		eth    = 14
		tcp    = eth + ipv6Len
		cfgPtr = asm.R9
	)
	// The rest of the fixed header and the TCP header (a shorter frame:
	// syndone).
	insns := skbBytes(asm.FnSkbLoadBytes, ctx, pktSYNEnd, kflowFrameSlot+pktSYNEnd, pktSYN6End-pktSYNEnd, "syndone")
	insns[0] = insns[0].WithSymbol("syn6")
	insns = append(insns, pktSYNCopy()...)
	insns = append(insns, ipv6PayloadLength(asm.R2, asm.R4, asm.R5, "syndone")...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Next, asm.Byte),
		asm.JNE.Imm(asm.R4, protoTCP, "syndone"), // no extension header
		asm.JLT.Imm(asm.R5, 20, "syndone"),       // the TCP header beyond the packet
		asm.Add.Imm(asm.R5, tcp),
	)
	insns = append(insns, pktBareSYN(ctx, tcp)...)
	insns = append(insns,
		// The hash's inputs and the service's key.
		asm.StoreMem(asm.RFP, pktSYN6Port, asm.R4, asm.DWord),
	)
	for i, at := range []int16{pktSYN6Hi, pktSYN6Lo} { // the source's halves, a word at a time
		off := eth + ipv6Src + int16(8*i)
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R2, off, asm.Word),
			asm.HostTo(asm.BE, asm.R1, asm.Word),
			asm.LSh.Imm(asm.R1, 32),
			asm.LoadMem(asm.R4, asm.R2, off+4, asm.Word),
			asm.HostTo(asm.BE, asm.R4, asm.Word),
			asm.Or.Reg(asm.R1, asm.R4),
			asm.StoreMem(asm.RFP, at, asm.R1, asm.DWord),
		)
	}
	for i := int16(0); i < 16; i += 4 { // (VIP, port, 0) as on the wire
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R2, eth+ipv6Src+16+i, asm.Word),
			asm.StoreMem(asm.RFP, pktSYN6SvcKey+i, asm.R1, asm.Word),
		)
	}
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R2, tcp+2, asm.Half),
		asm.StoreMem(asm.RFP, pktSYN6SvcKey+16, asm.R1, asm.Half),
		asm.StoreImm(asm.RFP, pktSYN6SvcKey+18, 0, asm.Half),
	)
	insns = append(insns, m.bucket6(pktSYN6SvcKey, pktSYN6Hi, pktSYN6Lo, pktSYN6Port, pktSYNTabKey, "syndone")...)
	return append(insns, pktSYNSlot(slot, cfgPtr, eth+ipv6Src, 32, tcp, eth+ipv6Next, kflowLayout6.keySize, 6, "synkey6")...)
}

// pktSYNCopy points R2 at the socket filter's copy of the frame.
func pktSYNCopy() asm.Instructions {
	return asm.Instructions{asm.Mov.Reg(asm.R2, asm.RFP), asm.Add.Imm(asm.R2, kflowFrameSlot)}
}

// pktSYNSlot ends both branches, R0 pointing at the bucket's MAC: the
// MAC into the slot, then, for a frame to our MAC (cfg's) and not from
// it, the flow's key (addrs bytes of addresses at addr, the ports at
// ports, the protocol byte at proto; keySize bytes of it) and Valid
// version; else syndone, the slot not valid. keyLabel names the key's
// first instruction (a label per branch). It clobbers R1, R2 and R4.
func pktSYNSlot(slot, cfg asm.Register, addr, addrs, ports, proto, keySize int16, version int64, keyLabel string) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord), // the server's MAC (Valid still 0)
		asm.StoreMem(slot, kflowSlotMAC, asm.R1, asm.DWord),
	}
	insns = append(insns, pktSYNCopy()...)
	insns = append(insns, toUsNotFromUs(asm.R2, cfg, asm.R1, asm.R4, "syndone", keyLabel)...)
	key := kflowKeyFrom(addr, addrs, ports, proto)
	key[0] = key[0].WithSymbol(keyLabel)
	insns = append(insns, key...)
	insns = append(insns, slotKey(slot, keySize)...)
	return append(insns, asm.StoreImm(slot, kflowSlotValid, version, asm.Word))
}

// SetStatelessSYNs implements StatelessSYNPort for a worker opened with
// Config.KernelSYNs: its socket filter's tables and switch (the group's
// tc program must be attached with KernelFlowSlots, or the SYNs the
// filter refuses are lost). ErrNoKernelSYNs without.
func (p *splitPort) SetStatelessSYNs(on bool, tables []SYNTable) (int, error) {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if p.kf == nil || p.kf.syn == nil {
		return 0, newError(p.ifname, "tc stateless SYNs", ErrNoKernelSYNs)
	}
	left, err := p.kf.syn.set(on, p.main.HardwareAddr(), tables)
	if err != nil {
		return 0, newError(p.ifname, "tc stateless SYNs", err)
	}
	return left, nil
}

// StatelessSYNsSent implements StatelessSYNPort: the SYNs the worker's
// socket filter left to the tc program.
func (p *splitPort) StatelessSYNsSent() (uint64, error) {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if p.kf == nil || p.kf.syn == nil {
		return 0, newError(p.ifname, "tc stateless SYNs", ErrNoKernelSYNs)
	}
	return p.kf.syn.sent()
}

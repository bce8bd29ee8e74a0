package link

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// xdpObjects are the XDP program and its maps: the VIP sets it matches,
// the clients it trusts and the XSKMAP it redirects into.
type xdpObjects struct {
	prog       *ebpf.Program
	vip4, vip6 *ebpf.Map
	xsks       *ebpf.Map
	trusted    *trustedClients
	syn        synMaps  // stateless SYNs forwarded by the program (xdpstateless_linux.go)
	flows      flowMaps // established flows forwarded by the program (xdpflows_linux.go)
	// queues is how many receive queues have XSKMAP slots; owners, if
	// set, is the hash that gives each client's frames to one queue's
	// sockets (loadQueues).
	queues int
	owners *ClientHash
	// sharedTrusted: trusted is another's (an AF_PACKET split group's
	// lane, loadQueues), which closes it.
	sharedTrusted bool
}

func (o *xdpObjects) close() {
	if o.prog != nil {
		_ = o.prog.Close()
	}
	closeMaps(o.vip4, o.vip6, o.xsks)
	o.syn.close()
	o.flows.close()
	if o.trusted != nil && !o.sharedTrusted {
		o.trusted.close()
	}
}

// The XSKMAP slots of receive queue q: xsksPerQueue*q + lane.
const (
	xskLaneMain    = 0
	xskLaneSYN     = 1 // bare SYNs from sources not trusted
	xskLaneTrusted = 2 // bare SYNs from trusted clients
	xsksPerQueue   = 3
)

// xskSlot is the XSKMAP slot of queue q's socket of the lane.
func xskSlot(q, lane int) uint32 { return uint32(xsksPerQueue*q + lane) }

// loadXDP builds the maps (trusted: the trusted clients' map size) and
// the program. The program, in BPF assembly (no C compiler):
//
//	untagged IPv4 or IPv6 whose destination is in vip4 or vip6:
//	    a kernel flow's (flowMaps.instructions)       -> XDP_TX to its server
//	    a bare TCP SYN, stateless SYNs on, its bucket a server's
//	      (synMaps.instructions, instructions6)       -> XDP_TX to that server
//	    a bare TCP SYN from a client not in trusted  -> XSKMAP[3*rx queue+1] (SYN socket)
//	    a bare TCP SYN from a client in trusted      -> XSKMAP[3*rx queue+2] (trusted-SYN socket)
//	    any other frame                              -> XSKMAP[3*rx queue]   (main socket)
//	everything else (ARP, NDP, the host's own traffic, 802.1Q-tagged
//	frames, frames too short to hold the address) -> XDP_PASS
//
// A bare SYN is what OpenSplit's fanout program sends to its SYN socket
// (ClientHash.splitProgram): TCP with SYN set and ACK clear, for IPv4 not
// a fragment (no MF, no offset; the flags are IHL*4 bytes into the
// header), for IPv6 TCP right after the fixed header. A frame too short
// to tell is not one. The trusted map is keyed as trustKey: the source's
// 16 bytes, IPv4 mapped into IPv6.
//
// A queue with no socket in the XSKMAP passes the frame (the low bits of
// bpf_redirect_map's flags). ARP and NDP stay with the kernel: the host
// needs them for its own addresses, and drlb reads them on its AF_PACKET
// socket, which sees every frame XDP passes.
func loadXDP(queues, trusted int) (*xdpObjects, error) {
	return loadKernelFlows(queues, trusted, maxKernelFlows)
}

// loadKernelFlows is loadXDP with room for flows kernel flows (tests fill a
// small map); with 0 the program has no kernel flows at all.
func loadKernelFlows(queues, trusted, flows int) (o *xdpObjects, err error) {
	return loadQueues(queues, trusted, flows, nil, nil)
}

// loadQueues is loadKernelFlows for queues receive queues each served by
// its own worker's sockets: with owners set and more than one queue, a VIP
// frame goes to its queue's sockets only when its client is that worker's
// (owners.Sum of the client modulo queues is the queue, as in the
// AF_PACKET fanout group of the workers' ports), and is passed otherwise,
// for the owner's AF_PACKET socket to read (xdpPort's doc says why).
// With shared set, the program looks trusted clients up in that map
// (an AF_PACKET split group's, whose fanout program does the same for
// the SYNs passed to the group) instead of a map of its own.
func loadQueues(queues, trusted, flows int, owners *ClientHash, shared *trustedClients) (o *xdpObjects, err error) {
	o = &xdpObjects{queues: max(queues, 1)}
	if owners != nil && queues > 1 {
		o.owners = owners
	}
	o.vip4, o.vip6, err = newVIPMaps()
	if err == nil {
		var mk mapMaker
		o.xsks = mk.make(&ebpf.MapSpec{Name: "drlb_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(xsksPerQueue * max(queues, 1))})
		err = mk.err
	}
	if err == nil {
		if shared != nil {
			o.trusted, o.sharedTrusted = shared, true
		} else {
			o.trusted, err = newTrustedClients(trusted)
		}
	}
	if err == nil {
		err = o.syn.make(maxSYNBuckets)
	}
	if err == nil && flows > 0 {
		err = o.flows.make(flows)
	}
	if err != nil {
		o.close()
		return nil, err
	}
	insns, err := o.instructions()
	if err != nil {
		o.close()
		return nil, err
	}
	o.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_vips", Type: ebpf.XDP, License: "MIT", Instructions: insns})
	if err != nil {
		o.close()
		return nil, fmt.Errorf("XDP program: %w", err)
	}
	return o, nil
}

// instructions is the program over o's maps.
func (o *xdpObjects) instructions() (asm.Instructions, error) {
	const (
		xdpPass = 2
		eth     = 14
		mapped  = 0xffff // bytes 10 and 11 of an IPv4-mapped address
		// Registers kept across the map lookups (r1-r5 are not).
		ctx  = asm.R6
		lane = asm.R8
		// Stack: the VIP keys at -4 and -16, the trusted key at keySlot.
		keySlot = -32
	)
	reload := func(n int32, fail string) asm.Instructions { return packetData(ctx, asm.R4, n, fail) }
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),                  //
		asm.LoadMem(asm.R2, ctx, 0, asm.Word),     // r2 = data
		asm.LoadMem(asm.R3, ctx, 4, asm.Word),     // r3 = data_end
		asm.Mov.Reg(asm.R4, asm.R2),               //
		asm.Add.Imm(asm.R4, eth+20),               // Ethernet + IPv4 through the destination
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),       //
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // ethertype
		asm.JEq.Imm(asm.R5, ethIPv4, "ipv4"),      //
		asm.JEq.Imm(asm.R5, ethIPv6, "ipv6"),      //
		asm.Ja.Label("pass"),                      //

		asm.LoadMem(asm.R7, asm.R2, eth+16, asm.Word).WithSymbol("ipv4"), // IPv4 destination
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),                      //
		asm.LoadMapPtr(asm.R1, o.vip4.FD()),                              //
		asm.Mov.Reg(asm.R2, asm.RFP),                                     //
		asm.Add.Imm(asm.R2, -4),                                          //
		asm.FnMapLookupElem.Call(),                                       //
		asm.JEq.Imm(asm.R0, 0, "pass"),                                   //
		asm.Mov.Imm(lane, xskLaneMain),                                   // a VIP frame: main, unless a bare SYN
	}
	// A frame of a kernel flow leaves here (XDP_TX); any other goes on
	// at kflowdone, data and the destination reloaded, as before. An
	// IPv6 frame to a VIP enters the same block and goes on at
	// kflowdone6.
	if o.flows.cfg != nil {
		insns = append(insns, o.flows.instructions(ctx)...)
	}
	kflowdone := reload(eth+20, "redirect")
	kflowdone[0] = kflowdone[0].WithSymbol("kflowdone")
	insns = append(insns, kflowdone...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R4, ethIPv6, "kflowdone6"),
		asm.LoadMem(asm.R7, asm.R2, eth+16, asm.Word),
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4Proto, asm.Byte),     //
		asm.JNE.Imm(asm.R4, protoTCP, "redirect"),                //
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4FragField, asm.Half), //
		asm.HostTo(asm.BE, asm.R4, asm.Half),                     //
		asm.JSet.Imm(asm.R4, ipv4FragBits, "redirect"),           // a fragment
		asm.LoadMem(asm.R4, asm.R2, eth, asm.Byte),               //
		asm.And.Imm(asm.R4, 0xf),                                 // IHL: the mask bounds the offset for the verifier
		asm.LSh.Imm(asm.R4, 2),                                   //
		asm.Mov.Reg(asm.R5, asm.R2),                              //
		asm.Add.Reg(asm.R5, asm.R4),                              // r5 = data + IHL*4
		asm.Mov.Reg(asm.R4, asm.R5),                              //
		asm.Add.Imm(asm.R4, eth+tcpFlags+1),                      //
		asm.JGT.Reg(asm.R4, asm.R3, "redirect"),                  //
		asm.LoadMem(asm.R4, asm.R5, eth+tcpFlags, asm.Byte),      //
		asm.And.Imm(asm.R4, tcpSYN|tcpACK),                       //
		asm.JNE.Imm(asm.R4, tcpSYN, "redirect"),                  //
	)
	// Under table pressure the program may forward the SYN itself
	// (XDP_TX); if not, it goes on at synlane, data reloaded.
	insns = append(insns, o.syn.instructions(ctx)...)
	synlane := reload(eth+20, "redirect")
	synlane[0] = synlane[0].WithSymbol("synlane")
	insns = append(insns, synlane...)
	insns = append(insns,
		asm.StoreImm(asm.RFP, keySlot, 0, asm.Word),         // ::ffff:a.b.c.d
		asm.StoreImm(asm.RFP, keySlot+4, 0, asm.Word),       //
		asm.StoreImm(asm.RFP, keySlot+8, 0, asm.Half),       //
		asm.StoreImm(asm.RFP, keySlot+10, mapped, asm.Half), //
		asm.LoadMem(asm.R4, asm.R2, eth+ipv4Src, asm.Word),  //
		asm.StoreMem(asm.RFP, keySlot+12, asm.R4, asm.Word), //
		asm.Ja.Label("trusted"),                             //

		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"), //
		asm.Add.Imm(asm.R4, eth+ipv6Len),               // Ethernet + IPv6 through the destination
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),            //
		asm.LoadMem(asm.R7, asm.R2, eth+24, asm.DWord), // IPv6 destination
		asm.StoreMem(asm.RFP, -16, asm.R7, asm.DWord),  //
		asm.LoadMem(asm.R7, asm.R2, eth+32, asm.DWord), //
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.DWord),   //
		asm.LoadMapPtr(asm.R1, o.vip6.FD()),            //
		asm.Mov.Reg(asm.R2, asm.RFP),                   //
		asm.Add.Imm(asm.R2, -16),                       //
		asm.FnMapLookupElem.Call(),                     //
		asm.JEq.Imm(asm.R0, 0, "pass"),                 //
		asm.Mov.Imm(lane, xskLaneMain),                 //
	)
	if o.flows.cfg != nil {
		// (A jump back: the verifier takes it since Linux 5.3,
		// long before tcx and this program's other needs.)
		insns = append(insns, asm.Ja.Label("kflow"))
	}
	kflowdone6 := reload(eth+ipv6Len+tcpFlags+1, "redirect")
	kflowdone6[0] = kflowdone6[0].WithSymbol("kflowdone6")
	insns = append(insns, kflowdone6...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Next, asm.Byte),         // TCP right after the fixed header only
		asm.JNE.Imm(asm.R4, protoTCP, "redirect"),                   //
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Len+tcpFlags, asm.Byte), //
		asm.And.Imm(asm.R4, tcpSYN|tcpACK),                          //
		asm.JNE.Imm(asm.R4, tcpSYN, "redirect"),                     //
	)
	// IPv6 too: forwarded (XDP_TX), or on at synlane6, data reloaded.
	insns = append(insns, o.syn.instructions6(ctx)...)
	synlane6 := reload(eth+ipv6Len+tcpFlags+1, "redirect")
	synlane6[0] = synlane6[0].WithSymbol("synlane6")
	insns = append(insns, synlane6...)
	insns = append(insns,
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Src, asm.DWord),                  // the source, as it is
		asm.StoreMem(asm.RFP, keySlot, asm.R4, asm.DWord),                    //
		asm.LoadMem(asm.R4, asm.R2, eth+ipv6Src+8, asm.DWord),                //
		asm.StoreMem(asm.RFP, keySlot+8, asm.R4, asm.DWord),                  //
		asm.LoadMapPtr(asm.R1, o.trusted.clients.FD()).WithSymbol("trusted"), // a bare SYN: trusted?
		asm.Mov.Reg(asm.R2, asm.RFP),                                         //
		asm.Add.Imm(asm.R2, keySlot),                                         //
		asm.FnMapLookupElem.Call(),                                           //
		asm.JEq.Imm(asm.R0, 0, "untrusted"),                                  //
		asm.Mov.Imm(lane, xskLaneTrusted),                                    // trusted: a queue of their own
		asm.Ja.Label("redirect"),                                             //
		asm.Mov.Imm(lane, xskLaneSYN).WithSymbol("untrusted"),                //
	)
	// A frame longer than a UMEM chunk holds after the kernel's headroom
	// (jumbo frames; a driver that runs XDP on frames up to a page)
	// would be dropped at the socket: it is passed instead, and reaches
	// the AF_PACKET side as any frame the program does not take.
	insns = append(insns,
		asm.LoadMem(asm.R2, ctx, 0, asm.Word).WithSymbol("redirect"), // ctx->data
		asm.LoadMem(asm.R3, ctx, 4, asm.Word),                        // ctx->data_end
		asm.Add.Imm(asm.R2, xskMaxFrame+1),                           //
		asm.JLE.Reg(asm.R2, asm.R3, "pass"),                          // data+max+1 <= data_end: longer than max
	)
	xsk := "fits"
	if o.owners != nil {
		// Is the client this queue's worker's? Not: passed, for the
		// AF_PACKET fanout group to hand to its owner.
		hash, err := clientHashXDP(*o.owners, "owned")
		if err != nil {
			return nil, err
		}
		hash[0] = hash[0].WithSymbol("fits")
		xsk = "xsk"
		insns = append(insns, hash...)
		insns = append(insns,
			asm.Mod.Imm32(asm.R0, int32(o.queues)).WithSymbol("owned"),
			asm.LoadMem(asm.R2, ctx, 16, asm.Word), // ctx->rx_queue_index
			asm.JNE.Reg32(asm.R0, asm.R2, "pass"),
		)
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, o.xsks.FD()).WithSymbol(xsk), //
		asm.LoadMem(asm.R2, ctx, 16, asm.Word),              // ctx->rx_queue_index
		asm.Mul.Imm(asm.R2, xsksPerQueue),                   // xskSlot
		asm.Add.Reg(asm.R2, lane),                           //
		asm.Mov.Imm(asm.R3, xdpPass),                        // no socket in the slot: pass
		asm.FnRedirectMap.Call(),                            //
		asm.Return(),                                        //
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),     //
		asm.Return(),                                        //
	)
	return insns, nil
}

// setVIPs makes the VIP maps hold exactly vips.
func (o *xdpObjects) setVIPs(vips []netip.Addr) error { return setVIPMaps(o.vip4, o.vip6, vips) }

package link

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Kernel flows on AF_PACKET (Config.KernelFlows with OpenSplit): the
// kernel forwards the frames of the flows drlb hands out itself, at the
// interface's tc ingress hook, and drlb's sockets never see them.
//
// Why two programs: the packet taps (drlb's sockets, ETH_P_ALL) run
// before tc ingress (__netif_receive_skb_core delivers to ptype_all, then
// runs tcx), so the socket must refuse the frame for drlb not to read it,
// and only tc can send it (bpf_redirect to the interface's egress, as an
// nftables fwd does). The socket filter decides; it runs exactly once per
// frame, on the socket the fanout program picked, with that worker's
// maps. It leaves its decision in a per-CPU slot (kflowSlot), which the
// tc program (AttachVIPDrop with the group's KernelFlowSlots) reads and
// clears for the same frame: the tap and tc ingress run back to back on
// one CPU in one softirq, with no other frame between them there.
//
//	frame -> fanout program -> worker i's socket filter: slot cleared, then
//	           a kernel flow's frame: slot = (flow, server MAC), count, refuse
//	           else: the VIP filter as before (drlb reads it)
//	      -> tc ingress, at the head: slot holds this frame's flow: slot
//	           cleared, MACs rewritten, bpf_redirect to egress (the frame
//	           leaves, drlb never saw it); else slot cleared, next
//	      -> tc ingress, at the tail: the kernel's copy of a VIP frame
//	           dropped (VIPDrop)

// KernelFlowSlots is an AF_PACKET split group's hand-over from its socket
// filters to the tc program that forwards kernel flows (AttachVIPDrop).
type KernelFlowSlots struct{ m *ebpf.Map }

// TCFlowPort is an AF_PACKET worker's port with kernel flows
// (Config.KernelFlows): its socket filter refuses the frames of the flows
// it is given, and only the tc program AttachVIPDrop attaches with its
// KernelFlowSlots forwards them. Without that program attached, turning
// the forwarding on (SetKernelFlowServers) loses those frames.
type TCFlowPort interface {
	FlowPort
	KernelFlowSlots() *KernelFlowSlots
	// DropKernelFlows frees the port's kernel flows and puts the classic
	// filter back on its sockets, for a director that cannot attach the
	// tc program: frames then cost what they cost without.
	DropKernelFlows(filter []bpf.RawInstruction) error
}

// kflowSlot is the slots map's value: the flow the socket filter left to
// tc (its key, to check the frame against) and where it goes.
type kflowSlot struct {
	Key   [kflowKey6Size]byte // a kflowKey6, or a kflowKey in the first 16 bytes
	MAC   [8]byte             // the server's, 6 bytes used
	Valid uint32              // 0: empty; 4 or 6: the key's IP version
	_     uint32
}

// kflowSlotSize is kflowSlot's size in the map, kflowSlotMAC and
// kflowSlotValid the offsets of its fields.
const (
	kflowSlotSize  = 56
	kflowSlotMAC   = 40
	kflowSlotValid = 48
)

// slotKey copies the first n bytes of kflowKeySlot to the slot in reg.
// It clobbers R1.
func slotKey(slot asm.Register, n int16) asm.Instructions {
	var insns asm.Instructions
	for off := int16(0); off < n; off += 8 {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.RFP, kflowKeySlot+off, asm.DWord),
			asm.StoreMem(slot, off, asm.R1, asm.DWord),
		)
	}
	return insns
}

func newKflowSlots() (*ebpf.Map, error) {
	return ebpf.NewMap(&ebpf.MapSpec{Name: "drlb_kfslot", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: kflowSlotSize, MaxEntries: 1})
}

// pktFlows is one worker's kernel side: the group's slots (its own
// descriptor), its kernel flows' maps (with Config.KernelFlows; maps.cfg
// nil without) and its stateless SYNs' (with Config.KernelSYNs; nil
// without).
type pktFlows struct {
	maps  flowMaps
	syn   *synMaps
	slots *ebpf.Map
}

func (k *pktFlows) close() {
	k.maps.close()
	if k.syn != nil {
		k.syn.close()
		k.syn = nil
	}
	closeMaps(k.slots)
	k.slots = nil
}

// filter is the worker's socket filter: the kernel-flow block in front
// of classic (a VIPFilter; nil accepts every frame), translated.
func (k *pktFlows) filter(classic []bpf.RawInstruction) (*ebpf.Program, error) {
	insns, err := k.filterInstructions(classic)
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_kfsock", Type: ebpf.SocketFilter, License: "MIT", Instructions: insns})
	if err != nil {
		return nil, fmt.Errorf("socket filter: %w", err)
	}
	return prog, nil
}

// filterInstructions is the socket filter:
//
//	a frame this host sends (PACKET_OUTGOING)  -> refused (outgoingPrefix's rule)
//	the slot cleared
//	with stateless SYNs: a bare SYN (IPv4 or IPv6) the SYN block leaves to tc
//	  (pktsyns_linux.go)                        -> refused (0)
//	without kernel flows                        -> classic
//	a VLAN tag in skb metadata                  -> classic
//	a frame kflowBlock leaves alone             -> classic
//	  (a super-frame, GSO, past the MTU check: GRO on the interface, or
//	  a local sender's TSO; the kernel segments it on the way out)
//	a kernel flow's frame: the slot holds its key and its server's MAC,
//	  counted                                   -> refused (0)
//	classic: the VIP filter's verdict
//
// The frame is read with bpf_skb_load_bytes into the stack (a socket
// filter has no direct packet access), at most kflow6TCPEnd bytes.
func (k *pktFlows) filterInstructions(classic []bpf.RawInstruction) (asm.Instructions, error) {
	const (
		ctx            = asm.R6
		slot           = asm.R8
		skbLen         = 0
		skbPktType     = 4
		skbVLANPresent = 20
		skbGSOSize     = 176
	)
	if len(classic) == 0 {
		accept, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: FilterAccept}})
		if err != nil {
			return nil, err
		}
		classic = accept
	}
	rest, err := cbpfToEBPF(classic, "")
	if err != nil {
		return nil, err
	}
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		asm.LoadMem(asm.R2, ctx, skbPktType, asm.Word),
		asm.JNE.Imm(asm.R2, packetOutgoing, "kflowslot"),
		asm.Mov.Imm(asm.R0, 0),
		asm.Return(),
		// The slot is cleared for every frame, kernel flows on or
		// off: a slot a frame left behind (its tc program did not run)
		// is never taken for the next.
		asm.StoreImm(asm.RFP, kflowZeroSlot, 0, asm.Word).WithSymbol("kflowslot"),
	}
	insns = append(insns, stackLookup(k.slots, kflowZeroSlot)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "classic"),
		asm.Mov.Reg(slot, asm.R0),
		asm.StoreImm(slot, kflowSlotValid, 0, asm.Word),
	)
	if k.syn != nil {
		insns = append(insns, k.syn.filterInstructions(ctx, slot)...)
		insns = append(insns, asm.Mov.Reg(asm.R1, ctx).WithSymbol("syndone"))
	}
	if k.maps.cfg == nil {
		insns = append(insns, asm.Mov.Reg(asm.R1, ctx).WithSymbol("classic"))
		return append(insns, rest...), nil
	}
	insns = append(insns, k.maps.kflowBlock(kflowAccess{
		prologue: asm.Instructions{
			asm.LoadMem(asm.R1, ctx, skbVLANPresent, asm.Word),
			asm.JNE.Imm(asm.R1, 0, "kflowdone"),
		},
		read: func(from, n int32) asm.Instructions {
			insns := skbBytes(asm.FnSkbLoadBytes, ctx, from, kflowFrameSlot+int16(from), n-from, "kflowdone") // a shorter frame
			return append(insns,
				asm.Mov.Reg(asm.R2, asm.RFP),
				asm.Add.Imm(asm.R2, kflowFrameSlot),
			)
		},
		within: asm.Instructions{
			asm.LoadMem(asm.R1, ctx, skbLen, asm.Word),
			asm.Mov.Reg(asm.R4, asm.R5),
			asm.Add.Imm(asm.R4, 14),
			asm.JGT.Reg(asm.R4, asm.R1, "kflowdone"),
		},
		superOK: func(past string) asm.Instructions {
			return asm.Instructions{
				asm.LoadMem(asm.R4, ctx, skbGSOSize, asm.Word),
				asm.JNE.Imm(asm.R4, 0, past),
			}
		},
	})...)
	insns = append(insns,
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord), // the server's MAC
		asm.StoreMem(slot, kflowSlotMAC, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, kflowFrameSlot+12, asm.Half),
		asm.JEq.Imm(asm.R1, ethIPv6, "kflowslot6"),
	)
	insns = append(insns, slotKey(slot, kflowLayout4.keySize)...)
	insns = append(insns,
		asm.StoreImm(slot, kflowSlotValid, 4, asm.Word),
		asm.Ja.Label("kflowcount"),
	)
	key6 := slotKey(slot, kflowLayout6.keySize)
	key6[0] = key6[0].WithSymbol("kflowslot6")
	insns = append(insns, key6...)
	insns = append(insns, asm.StoreImm(slot, kflowSlotValid, 6, asm.Word))
	counted := kflowCounted(k.maps.counts, "kflowrefuse")
	counted[0] = counted[0].WithSymbol("kflowcount")
	insns = append(insns, counted...)
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol("kflowrefuse"),
		asm.Return(),
		asm.Mov.Reg(asm.R1, ctx).WithSymbol("kflowdone"),
		asm.Mov.Reg(asm.R1, ctx).WithSymbol("classic"), // (one label per instruction)
	)
	return append(insns, rest...), nil
}

// tcFlowInstructions is the tc program that forwards kernel flows,
// attached at the head of tcx ingress (before any other program, which
// could otherwise end the frame's way before it; AttachVIPDrop): a
// frame whose flow the socket filter left in this CPU's slot gets the
// slot's server MAC as destination and mac as source, and leaves
// through ifindex's egress (bpf_redirect); the slot is cleared either
// way, and every other frame goes on to the next program (TCX_NEXT).
//
// The frame is read with bpf_skb_load_bytes and written with
// bpf_skb_store_bytes, not through direct packet access: the headers of
// a frame need not be in the skb's linear part (a large frame written
// through a packet socket, jumbo frames), which the filter reads all the
// same, and a program that writes the packet directly gets a prologue
// that unclones every cloned skb it sees (every frame drlb's socket
// read, every frame while tcpdump runs) before it runs.
func tcFlowInstructions(slots *ebpf.Map, mac [6]byte, ifindex int) asm.Instructions {
	const (
		ctx  = asm.R6
		slot = asm.R8
		eth  = 14
		n    = eth + 20 + 4 // IPv4 through the ports
		n6   = eth + ipv6Len + 4
		key  = -4
		// n6 bytes (n for IPv4), 2 off a 4-byte boundary: the
		// addresses load aligned.
		frame = -74
		macs  = -88 // 12 bytes: the new destination and source
	)
	insns := asm.Instructions{
		asm.Mov.Reg(ctx, asm.R1),
		asm.StoreImm(asm.RFP, key, 0, asm.Word),
	}
	insns = append(insns, stackLookup(slots, key)...)
	insns = append(insns,
		asm.JEq.Imm(asm.R0, 0, "noflow"),
		asm.Mov.Reg(slot, asm.R0),
		asm.LoadMem(asm.R7, slot, kflowSlotValid, asm.Word),
		asm.JEq.Imm(asm.R7, 0, "noflow"),
		asm.StoreImm(slot, kflowSlotValid, 0, asm.Word), // taken
		asm.JEq.Imm(asm.R7, 6, "tcflow6"),
	)
	// This frame's flow? (The slot holds its kflowKey or kflowKey6.)
	type field struct {
		at, inKey int16
		size      asm.Size
	}
	compare := func(fields []field) asm.Instructions {
		var insns asm.Instructions
		for _, f := range fields {
			insns = append(insns,
				asm.LoadMem(asm.R1, asm.RFP, frame+f.at, f.size),
				asm.LoadMem(asm.R2, slot, f.inKey, f.size),
				asm.JNE.Reg(asm.R1, asm.R2, "noflow"),
			)
		}
		return insns
	}
	// The frame's own version first: a slot a frame of the other family
	// left (its tc program never ran) must not match bytes at the same
	// offsets.
	sameVersion := func(ethertype int32) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(asm.R1, asm.RFP, frame+12, asm.Half),
			asm.JNE.Imm(asm.R1, ethertype, "noflow"),
		}
	}
	insns = append(insns, skbBytes(asm.FnSkbLoadBytes, ctx, 0, frame, n, "noflow")...)
	insns = append(insns, sameVersion(ethIPv4)...)
	insns = append(insns, compare([]field{{eth + ipv4Src, 0, asm.Word}, {eth + ipv4Src + 4, 4, asm.Word}, {eth + 20, 8, asm.Word}, {eth + ipv4Proto, 12, asm.Byte}})...)
	insns = append(insns, asm.Ja.Label("tcrewrite"))
	load6 := skbBytes(asm.FnSkbLoadBytes, ctx, 0, frame, n6, "noflow")
	load6[0] = load6[0].WithSymbol("tcflow6")
	insns = append(insns, load6...)
	insns = append(insns, sameVersion(ethIPv6)...)
	var fields6 []field
	for i := int16(0); i < 32; i += 4 { // source and destination
		fields6 = append(fields6, field{eth + ipv6Src + i, i, asm.Word})
	}
	insns = append(insns, compare(append(fields6, field{eth + ipv6Len, 32, asm.Word}, field{eth + ipv6Next, 36, asm.Byte}))...)
	insns = append(insns,
		asm.LoadMem(asm.R1, slot, kflowSlotMAC, asm.Word).WithSymbol("tcrewrite"), // destination: the server
		asm.StoreMem(asm.RFP, macs, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, slot, kflowSlotMAC+4, asm.Half),
		asm.StoreMem(asm.RFP, macs+4, asm.R1, asm.Half),
	)
	for i := 0; i < 6; i += 2 { // source: us
		insns = append(insns, asm.StoreImm(asm.RFP, macs+6+int16(i), int64(mac[i])|int64(mac[i+1])<<8, asm.Half))
	}
	// (store fails without memory for a private copy: noflow)
	insns = append(insns, skbBytes(asm.FnSkbStoreBytes, ctx, 0, macs, 12, "noflow")...)
	return append(insns,
		asm.Mov.Imm(asm.R1, int32(ifindex)),
		asm.Mov.Imm(asm.R2, 0),
		asm.FnRedirect.Call(), // TC_ACT_REDIRECT
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("noflow"),
		asm.Return(),
	)
}

// skbBytes calls bpf_skb_load_bytes or bpf_skb_store_bytes (fn) for the
// n bytes at offset off of the skb in ctx and the stack at the frame
// pointer's offset stack (store: flags 0), and jumps to fail when the
// helper does. It clobbers R0-R5.
func skbBytes(fn asm.BuiltinFunc, ctx asm.Register, off int32, stack int16, n int32, fail string) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, ctx),
		asm.Mov.Imm(asm.R2, off),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(stack)),
		asm.Mov.Imm(asm.R4, n),
		asm.Mov.Imm(asm.R5, 0), // store's flags; load ignores R5
		fn.Call(),
		asm.JNE.Imm(asm.R0, 0, fail),
	}
}

// attachBPF replaces the socket's filter with prog (SO_ATTACH_BPF); the
// socket keeps its own reference.
func (p *afpacket) attachBPF(prog *ebpf.Program) error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := setsockoptInt(p.rc, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, prog.FD()); err != nil {
		return newError(p.ifname, "setsockopt SO_ATTACH_BPF", err)
	}
	return nil
}

// minWorkerKernelFlows is the least room a worker's flows map gets when
// many workers share maxKernelFlows (more than 64 workers only).
const minWorkerKernelFlows = 1 << 12

// openKernelFlows gives the worker its kernel side: a descriptor of the
// group's slots, maps with room for flows kernel flows (none for 0: the
// FlowPort methods then fail with ErrNoKernelFlows), the stateless SYNs'
// maps with room for synBuckets buckets (none for 0: ErrNoKernelSYNs),
// and the eBPF filter around classic on its sockets.
func (p *splitPort) openKernelFlows(slots *ebpf.Map, flows, synBuckets int, classic []bpf.RawInstruction) error {
	kf := &pktFlows{}
	var err error
	if kf.slots, err = slots.Clone(); err != nil {
		return newError(p.ifname, "kernel flows", err)
	}
	if flows > 0 {
		if err := kf.maps.make(flows); err != nil {
			kf.close()
			return newError(p.ifname, "kernel flows", err)
		}
	}
	if synBuckets > 0 {
		kf.syn = &synMaps{}
		if err := kf.syn.make(synBuckets); err != nil {
			kf.close()
			return newError(p.ifname, "tc stateless SYNs", err)
		}
	}
	p.kmu.Lock()
	p.kflows, p.kf = flows > 0, kf
	p.kmu.Unlock()
	if flows > 0 {
		p.bind(p.ifname, "tc kernel flows", p.main.HardwareAddr(), &p.kmu, &p.closed, &kf.maps)
	}
	return p.setKernelFlowFilter(classic)
}

// closeKernelFlows frees the worker's maps (the sockets' filters keep
// what they reference until the sockets close).
func (p *splitPort) closeKernelFlows() {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	if p.kf != nil {
		p.kf.close()
		p.kf = nil
	}
}

// setKernelFlowFilter builds the worker's filter around classic and
// attaches it to each of its sockets.
func (p *splitPort) setKernelFlowFilter(classic []bpf.RawInstruction) error {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	return p.setKernelFlowFilterLocked(classic)
}

// setKernelFlowFilterLocked is setKernelFlowFilter with kmu held.
func (p *splitPort) setKernelFlowFilterLocked(classic []bpf.RawInstruction) error {
	if p.kf == nil || p.closed.Load() {
		return ErrClosed
	}
	prog, err := p.kf.filter(classic)
	if err != nil {
		return &Error{Interface: p.ifname, Op: "kernel-flow socket filter", Err: err, sentinel: ErrBadConfig}
	}
	defer prog.Close() // the sockets hold theirs
	for _, ap := range p.sockets() {
		if err := ap.attachBPF(prog); err != nil {
			return err
		}
	}
	return nil
}

// DropKernelFlows implements TCFlowPort; it drops the stateless SYNs'
// maps too (they need the same tc program).
func (p *splitPort) DropKernelFlows(filter []bpf.RawInstruction) error {
	p.kmu.Lock()
	if p.kf == nil {
		p.kmu.Unlock()
		return nil
	}
	p.kflows = false
	if p.kf != nil {
		p.kf.close()
		p.kf = nil
	}
	p.kmu.Unlock()
	return p.SetFilter(filter)
}

// KernelFlowSlots implements TCFlowPort: the group's slots on a
// descriptor of their own, which the caller closes once AttachVIPDrop
// has them (the program keeps the map); nil without kernel flows and
// stateless SYNs, or after Close.
func (p *splitPort) KernelFlowSlots() *KernelFlowSlots {
	p.kmu.Lock()
	defer p.kmu.Unlock()
	if p.kf == nil {
		return nil
	}
	m, err := p.kf.slots.Clone()
	if err != nil {
		return nil
	}
	return &KernelFlowSlots{m: m}
}

// Close releases the slots' descriptor.
func (s *KernelFlowSlots) Close() error { return s.m.Close() }

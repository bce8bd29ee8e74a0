package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	ebpflink "github.com/cilium/ebpf/link"
)

// VIPDrop drops the kernel's own copy of the frames the director handles,
// at the interface's tc ingress hook, after drlb's packet sockets got
// theirs.
//
// Why: an AF_PACKET socket bound to ETH_P_ALL receives a clone of each
// frame; the frame itself goes on up the director's IP stack, which does
// not own the VIP and throws it away only after a route lookup (with IP
// forwarding off, a dst entry made and freed per frame). The in-kernel
// forwarders (IPVS, an nftables netdev fwd) never pay that, nor the
// AF_XDP port for the frames its XDP program redirects; the VIP frames
// the program passes (over 1792 bytes, other queues' workers', all once
// detached) reach its AF_PACKET socket and the stack as here, and tc
// ingress sees only those. The packet taps run before tc ingress
// (__netif_receive_skb_core delivers to ptype_all, then runs tcx, then
// netfilter ingress, then ip_rcv), so a tc program can drop the frame
// once the taps have it.
// Measured in the lab (`CPUCost`, trafgen at 30k frames/s in bursts, an
// nftables drop rule standing in): busy CPU per forwarded frame 18.0 /
// 18.3 µs without, 16.7 / 16.2 with.
//
// What it drops: untagged IPv4 and IPv6 frames addressed to the director's
// MAC and to a VIP: exactly the frames drlb forwards or drops itself (a
// frame to a VIP at another MAC, for another director, is passed by drlb
// and left to the kernel here too; the doctor refuses a VIP the host owns).
// Everything else goes on (TCX_NEXT: other tc programs still run).
type VIPDrop struct {
	mu         sync.Mutex // SetVIPs against Close
	prog       *ebpf.Program
	vip4, vip6 *ebpf.Map
	attach     ebpflink.Link
	// With AttachVIPDrop's slots: the program that forwards kernel
	// flows, at the head of tcx ingress.
	flowProg   *ebpf.Program
	flowAttach ebpflink.Link
	flowID     ebpf.ProgramID // flowProg's, to find it in the tcx list
	ifindex    int
}

// ErrVIPDropClosed is returned by SetVIPs after Close.
var ErrVIPDropClosed = errors.New("link: VIP drop closed")

// AttachVIPDrop attaches the drop to the tc ingress of ifname (tcx: Linux
// 6.6 or later) for frames to mac and vips. The caller logs a failure and
// runs without it: only CPU is lost.
//
// With flows (an AF_PACKET split group's, TCFlowPort; nil: none) a
// second program forwards the kernel flows' frames the group's socket
// filters left to it: a frame whose flow is in this CPU's slot leaves
// through ifname's egress, its destination MAC the server's and its
// source mac. It goes at the head of tcx ingress, the drop at the tail:
// a program before it that ended a frame's way (TC_ACT_OK, what most tc
// programs return, is a verdict) would lose the frames it must send,
// which the socket filter already kept from drlb. A program attached at
// the head later still can.
func AttachVIPDrop(ifname string, mac net.HardwareAddr, vips []netip.Addr, flows *KernelFlowSlots) (*VIPDrop, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, newError(ifname, "interface", err)
	}
	if len(mac) != 6 {
		return nil, newError(ifname, "VIP drop", fmt.Errorf("MAC %v is not a 6-byte Ethernet address", mac))
	}
	d, err := loadVIPDrop(mac, vips, flows, ifi.Index)
	if err != nil {
		return nil, newError(ifname, "VIP drop", err)
	}
	d.attach, err = ebpflink.AttachTCX(ebpflink.TCXOptions{Interface: ifi.Index, Program: d.prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		d.close()
		return nil, newError(ifname, "attach tc ingress", err)
	}
	if d.flowProg != nil {
		d.flowAttach, err = ebpflink.AttachTCX(ebpflink.TCXOptions{Interface: ifi.Index, Program: d.flowProg, Attach: ebpf.AttachTCXIngress, Anchor: ebpflink.Head()})
		if err == nil {
			d.flowID, err = programID(d.flowProg)
		}
		if err != nil {
			if d.flowAttach != nil {
				_ = d.flowAttach.Close()
			}
			_ = d.attach.Close()
			d.close()
			return nil, newError(ifname, "attach the kernel-flow program at tc ingress", err)
		}
	}
	d.ifindex = ifi.Index
	return d, nil
}

// loadVIPDrop builds the maps and the program, not attached; kernel
// flows (flows, nil: none) leave through ifindex.
func loadVIPDrop(mac net.HardwareAddr, vips []netip.Addr, flows *KernelFlowSlots, ifindex int) (*VIPDrop, error) {
	d := &VIPDrop{}
	var err error
	if d.vip4, d.vip6, err = newVIPMaps(); err != nil {
		return nil, err
	}
	if err := setVIPMaps(d.vip4, d.vip6, vips); err != nil {
		d.close()
		return nil, err
	}
	d.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_vipdrop", Type: ebpf.SchedCLS, License: "MIT",
		Instructions: vipDropInstructions(mac, d.vip4, d.vip6)})
	if err != nil {
		d.close()
		return nil, fmt.Errorf("tc program: %w", err)
	}
	if flows != nil {
		d.flowProg, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_kftc", Type: ebpf.SchedCLS, License: "MIT",
			Instructions: tcFlowInstructions(flows.m, [6]byte(mac), ifindex)})
		if err != nil {
			d.close()
			return nil, fmt.Errorf("tc kernel-flow program: %w", err)
		}
	}
	return d, nil
}

// SetVIPs changes the VIPs whose frames are dropped (a reload).
func (d *VIPDrop) SetVIPs(vips []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prog == nil {
		return ErrVIPDropClosed
	}
	return setVIPMaps(d.vip4, d.vip6, vips)
}

// Close detaches the program: the kernel sees every frame again.
func (d *VIPDrop) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var err error
	if d.flowAttach != nil {
		err = d.flowAttach.Close()
	}
	if d.attach != nil {
		if e := d.attach.Close(); err == nil {
			err = e
		}
	}
	d.close()
	return err
}

func (d *VIPDrop) close() {
	for _, p := range []*ebpf.Program{d.prog, d.flowProg} {
		if p != nil {
			_ = p.Close()
		}
	}
	closeMaps(d.vip4, d.vip6)
	d.prog, d.flowProg, d.vip4, d.vip6, d.attach, d.flowAttach = nil, nil, nil, nil, nil, nil
	d.flowID = 0
}

// tcx verdicts (include/uapi/linux/bpf.h; the same numbers as
// TC_ACT_UNSPEC and TC_ACT_SHOT for a cls_bpf in direct-action mode).
const (
	tcxNext = -1
	tcxDrop = 2
)

// vipDropInstructions is the program, in BPF assembly (no C compiler):
//
//	a frame with a VLAN tag in skb metadata               -> next
//	destination MAC != mac                                -> next
//	IPv4 whose destination is in vip4 (14+20 bytes held)  -> drop
//	IPv6 whose destination is in vip6 (14+40 bytes held)  -> drop
//	anything else (ARP, NDP, tagged frames, short ones)   -> next
func vipDropInstructions(mac net.HardwareAddr, vip4, vip6 *ebpf.Map) asm.Instructions {
	const (
		eth = 14
		// struct __sk_buff offsets.
		skbVLANPresent = 20
		skbData        = 76
		skbDataEnd     = 80
	)
	// The MAC's first 4 and last 2 bytes as little-endian loads of the
	// wire bytes would give them.
	mac4 := int32(binary.LittleEndian.Uint32(mac[0:4]))
	mac2 := int32(binary.LittleEndian.Uint16(mac[4:6]))
	return asm.Instructions{
		asm.LoadMem(asm.R7, asm.R1, skbVLANPresent, asm.Word),
		asm.JNE.Imm(asm.R7, 0, "next"),
		asm.LoadMem(asm.R2, asm.R1, skbData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, skbDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, eth+20), // Ethernet + IPv4 through the destination
		asm.JGT.Reg(asm.R4, asm.R3, "next"),
		asm.LoadMem(asm.R5, asm.R2, 0, asm.Word),
		asm.JNE.Imm32(asm.R5, mac4, "next"),
		asm.LoadMem(asm.R5, asm.R2, 4, asm.Half),
		asm.JNE.Imm(asm.R5, mac2, "next"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R5, ethIPv4, "ipv4"),
		asm.JNE.Imm(asm.R5, ethIPv6, "next"),

		asm.Mov.Reg(asm.R4, asm.R2), // IPv6
		asm.Add.Imm(asm.R4, eth+40),
		asm.JGT.Reg(asm.R4, asm.R3, "next"),
		asm.LoadMem(asm.R7, asm.R2, eth+24, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R7, asm.DWord),
		asm.LoadMem(asm.R7, asm.R2, eth+32, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.DWord),
		asm.LoadMapPtr(asm.R1, vip6.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Ja.Label("lookup"),

		asm.LoadMem(asm.R7, asm.R2, eth+16, asm.Word).WithSymbol("ipv4"),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, vip4.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),

		asm.FnMapLookupElem.Call().WithSymbol("lookup"),
		asm.JEq.Imm(asm.R0, 0, "next"),
		asm.Mov.Imm(asm.R0, tcxDrop),
		asm.Return(),
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("next"),
		asm.Return(),
	}
}

// ForwardsKernelFlows reports whether AttachVIPDrop attached the program
// that forwards kernel flows (it was given slots) and Close has not run.
// Whether the program still runs first is KernelFlowOrder's question.
func (d *VIPDrop) ForwardsKernelFlows() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flowProg != nil
}

// TCXOrder is where the kernel-flow program stands in its interface's tcx
// ingress list, which the kernel runs in order.
type TCXOrder struct {
	Attached bool             // the program is in the list
	Ahead    []ebpf.ProgramID // the programs that run before it (all of them if not Attached)
}

// First reports whether the program is attached and runs first: no other
// program can end a frame's way (TC_ACT_OK, a drop, a redirect) before it
// sends the frames the socket filters kept from drlb.
func (o TCXOrder) First() bool { return o.Attached && len(o.Ahead) == 0 }

// KernelFlowOrder reads the interface's tcx ingress list (BPF_PROG_QUERY)
// and reports where the kernel-flow program stands. AttachVIPDrop puts
// it at the head, but a program attached at the head later (another
// tool's, "bpftool ... head") runs before it, and a link detached from
// outside (bpftool link detach) takes it out: in both cases a frame of a
// kernel flow, refused by drlb's socket filter, may be lost. The caller
// polls this and holds kernel flows while !First. It allocates: control
// work, not the data path. ErrNoKernelFlows without the program.
//
// Call it from the interface's network namespace, where AttachVIPDrop
// ran (the director's own): the query names the interface by index.
func (d *VIPDrop) KernelFlowOrder() (TCXOrder, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.flowProg == nil {
		return TCXOrder{}, ErrNoKernelFlows
	}
	q, err := ebpflink.QueryPrograms(ebpflink.QueryOptions{Target: d.ifindex, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return TCXOrder{}, fmt.Errorf("link: tcx ingress of interface %d: %w", d.ifindex, err)
	}
	var o TCXOrder
	for _, p := range q.Programs {
		if p.ID == d.flowID {
			o.Attached = true
			break
		}
		o.Ahead = append(o.Ahead, p.ID)
	}
	return o, nil
}

// programID is p's kernel ID.
func programID(p *ebpf.Program) (ebpf.ProgramID, error) {
	info, err := p.Info()
	if err != nil {
		return 0, err
	}
	id, ok := info.ID()
	if !ok {
		return 0, errors.New("the kernel gives no program ID")
	}
	return id, nil
}

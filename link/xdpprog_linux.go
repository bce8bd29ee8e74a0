package link

import (
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// maxXDPVIPs bounds each VIP map (IPv4 and IPv6): far more than a
// director's configuration names.
const maxXDPVIPs = 1024

// xdpObjects are the XDP program and its maps: the VIP sets it matches and
// the XSKMAP it redirects into.
type xdpObjects struct {
	prog       *ebpf.Program
	vip4, vip6 *ebpf.Map
	xsks       *ebpf.Map
}

func (o *xdpObjects) close() {
	if o.prog != nil {
		_ = o.prog.Close()
	}
	for _, m := range []*ebpf.Map{o.vip4, o.vip6, o.xsks} {
		if m != nil {
			_ = m.Close()
		}
	}
}

// loadXDP builds the maps and the program. The program, in BPF assembly
// (no C compiler):
//
//	untagged IPv4 whose destination is in vip4  -> XSKMAP[rx queue]
//	untagged IPv6 whose destination is in vip6  -> XSKMAP[rx queue]
//	everything else (ARP, NDP, the host's own traffic, 802.1Q-tagged
//	frames, frames too short to hold the address) -> XDP_PASS
//
// A queue with no socket in the XSKMAP passes the frame (the low bits of
// bpf_redirect_map's flags). ARP and NDP stay with the kernel: the host
// needs them for its own addresses, and drlb reads them on its AF_PACKET
// socket, which sees every frame XDP passes.
func loadXDP(queues int) (*xdpObjects, error) {
	o := &xdpObjects{}
	var err error
	mk := func(name string, t ebpf.MapType, k, v, n uint32) *ebpf.Map {
		if err != nil {
			return nil
		}
		var m *ebpf.Map
		m, err = ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: t, KeySize: k, ValueSize: v, MaxEntries: n})
		if err != nil {
			err = fmt.Errorf("map %s: %w", name, err)
		}
		return m
	}
	o.vip4 = mk("drlb_vip4", ebpf.Hash, 4, 1, maxXDPVIPs)
	o.vip6 = mk("drlb_vip6", ebpf.Hash, 16, 1, maxXDPVIPs)
	o.xsks = mk("drlb_xsks", ebpf.XSKMap, 4, 4, uint32(max(queues, 1)))
	if err != nil {
		o.close()
		return nil, err
	}
	const (
		xdpPass = 2
		ethIPv4 = 0x0008 // 0x0800 as a little-endian load of the wire bytes
		ethIPv6 = 0xdd86 // 0x86dd
	)
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),                                  // r6 = ctx
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),                     // r2 = data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),                     // r3 = data_end
		asm.Mov.Reg(asm.R4, asm.R2),                                  //
		asm.Add.Imm(asm.R4, 34),                                      // Ethernet + IPv4 through the destination
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),                          //
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),                    // ethertype
		asm.JEq.Imm(asm.R5, ethIPv4, "ipv4"),                         //
		asm.JEq.Imm(asm.R5, ethIPv6, "ipv6"),                         //
		asm.Ja.Label("pass"),                                         //
		asm.LoadMem(asm.R7, asm.R2, 30, asm.Word).WithSymbol("ipv4"), // IPv4 destination
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),                  //
		asm.LoadMapPtr(asm.R1, o.vip4.FD()),                          //
		asm.Mov.Reg(asm.R2, asm.RFP),                                 //
		asm.Add.Imm(asm.R2, -4),                                      //
		asm.FnMapLookupElem.Call(),                                   //
		asm.JEq.Imm(asm.R0, 0, "pass"),                               //
		asm.Ja.Label("redirect"),                                     //
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"),               //
		asm.Add.Imm(asm.R4, 54),                                      // Ethernet + IPv6 through the destination
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),                          //
		asm.LoadMem(asm.R7, asm.R2, 38, asm.DWord),                   // IPv6 destination
		asm.StoreMem(asm.RFP, -16, asm.R7, asm.DWord),                //
		asm.LoadMem(asm.R7, asm.R2, 46, asm.DWord),                   //
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.DWord),                 //
		asm.LoadMapPtr(asm.R1, o.vip6.FD()),                          //
		asm.Mov.Reg(asm.R2, asm.RFP),                                 //
		asm.Add.Imm(asm.R2, -16),                                     //
		asm.FnMapLookupElem.Call(),                                   //
		asm.JEq.Imm(asm.R0, 0, "pass"),                               //
		asm.LoadMapPtr(asm.R1, o.xsks.FD()).WithSymbol("redirect"),   //
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word),                    // ctx->rx_queue_index
		asm.Mov.Imm(asm.R3, xdpPass),                                 // no socket on the queue: pass
		asm.FnRedirectMap.Call(),                                     //
		asm.Return(),                                                 //
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),              //
		asm.Return(), //
	}
	o.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "drlb_vips", Type: ebpf.XDP, License: "MIT", Instructions: insns})
	if err != nil {
		o.close()
		return nil, fmt.Errorf("XDP program: %w", err)
	}
	return o, nil
}

// setVIPs makes the VIP maps hold exactly vips.
func (o *xdpObjects) setVIPs(vips []netip.Addr) error {
	want4, want6 := map[[4]byte]bool{}, map[[16]byte]bool{}
	for _, v := range vips {
		if v.Unmap().Is4() {
			want4[v.Unmap().As4()] = true
		} else {
			want6[v.As16()] = true
		}
	}
	if len(want4) > maxXDPVIPs || len(want6) > maxXDPVIPs {
		return fmt.Errorf("more than %d VIPs of one family", maxXDPVIPs)
	}
	one := uint8(1)
	for k := range want4 {
		if err := o.vip4.Put(k, one); err != nil {
			return fmt.Errorf("VIP map: %w", err)
		}
	}
	for k := range want6 {
		if err := o.vip6.Put(k, one); err != nil {
			return fmt.Errorf("VIP map: %w", err)
		}
	}
	// Then remove what is no longer a VIP (collect first: deleting while
	// iterating restarts the walk).
	var k4, del4 [4]byte
	var dels4 [][4]byte
	it := o.vip4.Iterate()
	var v uint8
	for it.Next(&k4, &v) {
		if !want4[k4] {
			dels4 = append(dels4, k4)
		}
	}
	for _, del4 = range dels4 {
		_ = o.vip4.Delete(del4)
	}
	var k6 [16]byte
	var dels6 [][16]byte
	it = o.vip6.Iterate()
	for it.Next(&k6, &v) {
		if !want6[k6] {
			dels6 = append(dels6, k6)
		}
	}
	for _, d := range dels6 {
		_ = o.vip6.Delete(d)
	}
	return nil
}

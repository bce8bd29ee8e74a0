package link

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
)

var _ StatelessSYNPort = (*splitPort)(nil)

// newSockSYNs loads the AF_PACKET kernel side with stateless SYNs (and
// kernel flows with room for flows, none for 0): the worker's socket
// filter around the VIP filter and the tc programs, not attached, for
// director MAC ours.
func newSockSYNs(t testing.TB, flows int) (kf *pktFlows, filter *ebpf.Program, tc *VIPDrop, ours net.HardwareAddr) {
	t.Helper()
	testutil.NeedRoot(t)
	kf = &pktFlows{syn: &synMaps{}}
	t.Cleanup(kf.close)
	var err error
	if kf.slots, err = newKflowSlots(); err != nil {
		t.Fatal(err)
	}
	if err := kf.syn.make(minWorkerSYNBuckets); err != nil {
		t.Fatal(err)
	}
	if flows > 0 {
		if err := kf.maps.make(flows); err != nil {
			t.Fatal(err)
		}
	}
	classic, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	if filter, err = kf.filter(classic); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filter.Close() })
	ours = net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	if tc, err = loadVIPDrop(ours, splitVIPs, &KernelFlowSlots{m: kf.slots}, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.close)
	return kf, filter, tc, ours
}

// sockSYNRun runs frame f through the socket filter and then the tc
// kernel-flow program on this CPU, as the kernel does: it returns
// whether the filter left it to tc (its slot set, the frame refused),
// and what tc sent. A frame the filter takes must leave the slot empty,
// one left to tc must be sent, and tc must empty the slot whatever it
// did.
func sockSYNRun(t testing.TB, kf *pktFlows, filter *ebpf.Program, tc *VIPDrop, f []byte) (refused bool, sent []byte) {
	t.Helper()
	cpu := pinCPU(t)
	slots := make([]kflowSlot, ebpf.MustPossibleCPU())
	ret := runSocketFilter(t, filter, f)
	if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
		t.Fatal(err)
	}
	left := slots[cpu].Valid != 0
	if ret != 0 && left {
		t.Fatalf("socket filter took the frame (%d) and left the slot set: %+v", ret, slots[cpu])
	}
	tret, out, err := tc.flowProg.Test(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
		t.Fatal(err)
	}
	if slots[cpu].Valid != 0 {
		t.Fatalf("tc left the slot set: %+v", slots[cpu])
	}
	switch {
	case left && tret == tcxRedirect:
		return true, out
	case left:
		t.Fatalf("socket filter left the frame to tc, which did not send it (%d): lost", int32(tret))
	case tret != tcxNextRet:
		t.Fatalf("tc: %d for a frame the filter did not leave to it, want next", int32(tret))
	}
	return false, nil
}

// TestSocketStatelessSYNs runs testStatelessSYNs through the AF_PACKET
// side, with kernel flows off and on: a forwarded SYN is refused by the
// socket filter and sent by the tc program (sockSYNRun), and a SYN with
// IPv4 options is left to drlb.
func TestSocketStatelessSYNs(t *testing.T) {
	for i, flows := range []int{0, 64} {
		kf, filter, tc, ours := newSockSYNs(t, flows)
		testStatelessSYNs(t, synLab{
			ours: ours,
			set:  func(on bool, tables []SYNTable) error { _, err := kf.syn.set(on, ours, tables); return err },
			run:  func(f []byte) (bool, []byte) { t.Helper(); return sockSYNRun(t, kf, filter, tc, f) },
			sent: kf.syn.sent,
		}, uint64(11+i))
		// A VIP frame drlb reads is still taken by the VIP filter.
		c := netip.MustParseAddrPort("198.18.1.10:40000")
		l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: ours}
		if ret := runSocketFilter(t, filter, framegen.TCP(l2, c, netip.AddrPortFrom(splitVIPs[0], 80), "A", 1, 1, nil)); ret != FilterAccept {
			t.Errorf("flows %d: an ACK to the VIP: filter %d, want %d (to drlb)", flows, ret, FilterAccept)
		}
	}
}

// TestSplitPortStatelessSYNs: a worker opened with Config.KernelSYNs
// implements StatelessSYNPort and hands the group's slots out (the tc
// program needs them); one opened without fails with ErrNoKernelSYNs and
// has no slots unless it has kernel flows; DropKernelFlows drops the
// SYNs too.
func TestSplitPortStatelessSYNs(t *testing.T) {
	l := newPairLab(t)
	for _, c := range []struct {
		name         string
		flows, syns  bool
		wantSYNs     bool
		wantSlots    bool
		wantFlowPort bool
	}{
		{"syns", false, true, true, true, false},
		{"flows and syns", true, true, true, true, true},
		{"flows", true, false, false, true, true},
		{"neither", false, false, false, false, false},
	} {
		ports := openSplitIn(t, l.nsD, "d0", Config{KernelFlows: c.flows, KernelSYNs: c.syns}, 2, ClientHash{})
		for i, p := range ports {
			sp := p.(StatelessSYNPort)
			tp := p.(TCFlowPort)
			_, err := sp.SetStatelessSYNs(true, nil)
			if c.wantSYNs != (err == nil) || !c.wantSYNs && !errors.Is(err, ErrNoKernelSYNs) {
				t.Errorf("%s, worker %d: SetStatelessSYNs: %v", c.name, i, err)
			}
			if _, err := sp.StatelessSYNsSent(); c.wantSYNs != (err == nil) {
				t.Errorf("%s, worker %d: StatelessSYNsSent: %v", c.name, i, err)
			}
			slots := tp.KernelFlowSlots()
			if (slots != nil) != c.wantSlots {
				t.Errorf("%s, worker %d: slots %v, want %v", c.name, i, slots != nil, c.wantSlots)
			}
			if slots != nil {
				slots.Close()
			}
			if err := tp.SetKernelFlowServers(false, 0, nil); (err == nil) != c.wantFlowPort {
				t.Errorf("%s, worker %d: SetKernelFlowServers: %v", c.name, i, err)
			}
			classic, err := VIPFilter(splitVIPs)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp.DropKernelFlows(classic); err != nil {
				t.Fatal(err)
			}
			if _, err := sp.SetStatelessSYNs(false, nil); !errors.Is(err, ErrNoKernelSYNs) {
				t.Errorf("%s, worker %d: after DropKernelFlows, SetStatelessSYNs: %v", c.name, i, err)
			}
			if s := tp.KernelFlowSlots(); s != nil {
				s.Close()
				t.Errorf("%s, worker %d: slots after DropKernelFlows", c.name, i)
			}
		}
		for _, p := range ports {
			p.Close()
		}
	}
}

// fuzzSYNTables are the fuzz targets' services: splitVIPs[0]:80 and
// splitVIPs[1]:80 (the IPv6 one hashing the port too), some buckets left
// to drlb.
func fuzzSYNTables() []SYNTable {
	tbs := []SYNTable{
		{VIP: splitVIPs[0], Port: 80, Seed: 0x1234_5678_9abc_def0, MACs: make([][6]byte, 61)},
		{VIP: splitVIPs[1], Port: 80, Seed: 0x0fed_cba9_8765_4321, HashPort: true, MACs: make([][6]byte, 53)},
	}
	for j, tb := range tbs {
		for i := range tb.MACs {
			if i%5 != 2 {
				tb.MACs[i] = [6]byte{0x02, 0x99, 0, 0, byte(j), byte(i + 1)}
			}
		}
	}
	return tbs
}

// addSYNSeeds gives a stateless-SYN fuzz target frames to director MAC
// ours near each of its edges.
func addSYNSeeds(f *testing.F, ours net.HardwareAddr) {
	vip := splitVIPs[0]
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: ours}
	c := netip.MustParseAddrPort("198.18.200.7:40000")
	syn := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
	opts := append(append(append([]byte(nil), syn[:14+20]...), 1, 1, 1, 0), syn[14+20:]...)
	opts[14] = 0x46
	f.Add(syn)
	f.Add(setTotal(opts, len(opts)-14))
	f.Add(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, []byte("fast open")))
	f.Add(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil))
	f.Add(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 443), "S", 1, 0, nil))
	f.Add(framegen.UDP(l2, c, netip.AddrPortFrom(vip, 80), nil))
	f.Add(framegen.ARPRequest(l2, c.Addr(), vip))
	// IPv6: SYNs whose buckets name a server and one whose does not,
	// from an IPv4-mapped client too, a SYN to a port without a table,
	// an ACK, UDP.
	vip6 := splitVIPs[1]
	tb6 := fuzzSYNTables()[1]
	zero, forwarded := false, 0
	for _, a := range []string{"[2001:2::10]:5", "[2001:2::10]:6", "[2001:2::10]:7", "[::ffff:198.18.200.7]:40000", "[::ffff:198.18.200.7]:40001"} {
		c6 := netip.MustParseAddrPort(a)
		if tb6.MACs[synBucket(tb6, c6.Addr(), c6.Port())] == ([6]byte{}) {
			zero = true
		}
		syn6 := framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil)
		if _, ok := wantStatelessSYN(syn6, ours, fuzzSYNTables(), false); ok {
			forwarded++
		}
		f.Add(syn6)
	}
	if forwarded == 0 {
		f.Fatal("no IPv6 seed is a SYN the kernel forwards")
	}
	for p := uint16(8); !zero; p++ {
		c6 := netip.AddrPortFrom(netip.MustParseAddr("2001:2::10"), p)
		if zero = tb6.MACs[synBucket(tb6, c6.Addr(), c6.Port())] == ([6]byte{}); zero {
			f.Add(framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil))
		}
	}
	c6 := netip.MustParseAddrPort("[2001:2::10]:5")
	f.Add(framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 443), "S", 1, 0, nil))
	f.Add(framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "A", 1, 1, nil))
	f.Add(framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, []byte("fast open")))
	f.Add(framegen.UDP(l2, c6, netip.AddrPortFrom(vip6, 80), nil))
}

// FuzzSocketStatelessSYNs runs any frame through the AF_PACKET kernel
// side with stateless SYNs on (the socket filter, then the tc program, as
// the kernel does): no frame is lost (left to tc and not sent), and the
// kernel forwards exactly the frames wantStatelessSYN says, each to its
// bucket's server, with only the MACs changed.
func FuzzSocketStatelessSYNs(f *testing.F) {
	kf, filter, tc, ours := newSockSYNs(f, 64)
	tbs := fuzzSYNTables()
	if _, err := kf.syn.set(true, ours, tbs); err != nil {
		f.Fatal(err)
	}
	addSYNSeeds(f, ours)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !socketTestRunnable(frame, 1500) { // (the lab's MTU)
			return
		}
		fwd, out := sockSYNRun(t, kf, filter, tc, frame)
		checkStatelessSYN(t, frame, ours, tbs, false, fwd, out)
	})
}

// checkStatelessSYN fails t unless the kernel side forwarded frame (fwd,
// as out) exactly as wantStatelessSYN says.
func checkStatelessSYN(t *testing.T, frame []byte, ours net.HardwareAddr, tbs []SYNTable, options, fwd bool, out []byte) {
	t.Helper()
	mac, want := wantStatelessSYN(frame, ours, tbs, options)
	if fwd != want {
		t.Fatalf("forwarded %v, want %v: % x", fwd, want, frame)
	}
	if fwd && (!bytes.Equal(out[0:6], mac[:]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], frame[12:])) {
		t.Fatalf("forwarded as % x, want destination % x, source %v, the rest unchanged", out[:14], mac, ours)
	}
}

// wantStatelessSYN is the kernel side's SYN block written plainly: a
// bare TCP SYN to our MAC, not from it, to the service of one of tbs
// (its VIP of the frame's family: an IPv4-mapped VIP is IPv4's), whose
// bucket names a server, goes to that server's MAC. IPv4: no fragment,
// whole in the frame, a data offset of 5 or more; IPv4 options only with
// options, as the XDP program takes them. IPv6: version 6, TCP right after
// the fixed header, the packet (payload length and fixed header) whole in
// the frame, a data offset of 5 or more.
func wantStatelessSYN(f []byte, ours net.HardwareAddr, tbs []SYNTable, options bool) ([6]byte, bool) {
	const eth = 14
	be16 := func(b []byte) int { return int(b[0])<<8 | int(b[1]) }
	if len(f) < eth+20 || !bytes.Equal(f[0:6], ours) || bytes.Equal(f[6:12], ours) {
		return [6]byte{}, false
	}
	var src, dst netip.Addr
	var tcp int
	switch be16(f[12:]) {
	case 0x0800:
		if f[eth] != 0x45 && (!options || f[eth] < 0x45 || f[eth] > 0x4f) {
			return [6]byte{}, false
		}
		ihl := int(f[eth]&0xf) * 4
		tcp = eth + ihl
		switch {
		case len(f) < tcp+14,
			be16(f[eth+6:])&0x3fff != 0, f[eth+9] != protoTCP,
			be16(f[eth+2:]) < ihl+20, eth+be16(f[eth+2:]) > len(f):
			return [6]byte{}, false
		}
		src, _ = netip.AddrFromSlice(f[eth+12 : eth+16])
		dst, _ = netip.AddrFromSlice(f[eth+16 : eth+20])
	case 0x86dd:
		tcp = eth + 40
		switch {
		case len(f) < tcp+14,
			f[eth]>>4 != 6, f[eth+6] != protoTCP,
			be16(f[eth+4:]) < 20, tcp+be16(f[eth+4:]) > len(f):
			return [6]byte{}, false
		}
		src, _ = netip.AddrFromSlice(f[eth+8 : eth+24])
		dst, _ = netip.AddrFromSlice(f[eth+24 : eth+40])
	default:
		return [6]byte{}, false
	}
	if f[tcp+12] < 5<<4 || f[tcp+13]&0x17 != 0x02 {
		return [6]byte{}, false
	}
	for _, tb := range tbs {
		if tb.VIP.Unmap() == dst && be16(f[tcp+2:]) == int(tb.Port) {
			mac := tb.MACs[synBucket(tb, src, uint16(be16(f[tcp:])))]
			return mac, mac != [6]byte{}
		}
	}
	return [6]byte{}, false
}

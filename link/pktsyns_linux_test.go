package link

import (
	"bytes"
	"errors"
	"math/rand/v2"
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
func newSockSYNs(t *testing.T, flows int) (kf *pktFlows, filter *ebpf.Program, tc *VIPDrop, ours net.HardwareAddr) {
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
func sockSYNRun(t *testing.T, kf *pktFlows, filter *ebpf.Program, tc *VIPDrop, f []byte) (refused bool, sent []byte) {
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

// TestSocketStatelessSYNs is TestXDPStatelessSYNs through the AF_PACKET
// side: while on, a bare SYN to our MAC whose bucket names a server is
// refused by the socket filter and sent by the tc program with the
// bucket's MAC as destination and ours as source, and counted;
// everything else (off, a zero bucket, another MAC, another port, an
// ACK, IPv6, what the forwarder drops as malformed, IP options) reaches
// drlb's socket as before.
func TestSocketStatelessSYNs(t *testing.T) {
	for _, flows := range []int{0, 64} {
		kf, filter, tc, ours := newSockSYNs(t, flows)
		vip := splitVIPs[0]
		rng := rand.New(rand.NewPCG(11, uint64(flows)))
		mkTable := func(port uint16, n int, hashPort bool) SYNTable {
			tb := SYNTable{VIP: vip, Port: port, Seed: rng.Uint64(), HashPort: hashPort, MACs: make([][6]byte, n)}
			for i := range tb.MACs {
				if i%7 != 3 { // every seventh bucket left to drlb
					tb.MACs[i] = [6]byte{0x02, 0x99, byte(i >> 8), byte(i), 0xaa, byte(rng.Uint32())}
				}
			}
			return tb
		}
		tables := []SYNTable{mkTable(80, 256, false), mkTable(443, 65537, true)}
		run := func(f []byte) (bool, []byte) { t.Helper(); return sockSYNRun(t, kf, filter, tc, f) }
		l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: ours}
		client := func() netip.AddrPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + rng.IntN(128)), byte(rng.Uint32())}), uint16(rng.Uint32()))
		}
		if err := kf.syn.set(false, ours, tables); err != nil {
			t.Fatal(err)
		}
		if refused, _ := run(framegen.TCP(l2, client(), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)); refused {
			t.Fatal("forwarded while off")
		}
		if err := kf.syn.set(true, ours, tables); err != nil {
			t.Fatal(err)
		}
		sent := 0
		for i := range 2000 {
			tb := tables[i%2]
			c := client()
			f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, tb.Port), "S", 1, 0, nil)
			refused, out := run(f)
			want := tb.MACs[synBucket(tb, c.Addr(), c.Port())]
			if want == ([6]byte{}) {
				if refused {
					t.Fatalf("%v: forwarded a SYN whose bucket is drlb's", c)
				}
				continue
			}
			if !refused {
				t.Fatalf("flows %d, %v to port %d: not forwarded", flows, c, tb.Port)
			}
			if !bytes.Equal(out[0:6], want[:]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], f[12:]) {
				t.Fatalf("%v: forwarded as % x, want destination % x, source %v, the rest unchanged", c, out[:14], want, ours)
			}
			sent++
		}
		if n, err := kf.syn.sent(); err != nil || n != uint64(sent) {
			t.Fatalf("count %d (%v), want %d", n, err, sent)
		}
		c := client()
		for tables[0].MACs[synBucket(tables[0], c.Addr(), c.Port())] == ([6]byte{}) {
			c = client()
		}
		syn := func() []byte { return framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil) }
		with := func(f []byte, edit func([]byte)) []byte { edit(f); return f }
		opts := func() []byte {
			f := syn()
			o := append(append(append([]byte(nil), f[:14+20]...), 1, 1, 1, 0), f[14+20:]...)
			o[14] = 0x46
			return setTotal(o, len(o)-14)
		}()
		others := map[string][]byte{
			"another MAC":                  framegen.TCP(framegen.L2{Src: l2.Src, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
			"another port":                 framegen.TCP(l2, c, netip.AddrPortFrom(vip, 8080), "S", 1, 0, nil),
			"an ACK":                       framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil),
			"a SYN-ACK":                    framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SA", 1, 1, nil),
			"SYN-FIN":                      framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SF", 1, 0, nil),
			"SYN-RST":                      framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SR", 1, 0, nil),
			"IPv6":                         framegen.TCP(l2, netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.AddrPortFrom(splitVIPs[1], 80), "S", 1, 0, nil),
			"not a VIP":                    framegen.TCP(l2, c, netip.MustParseAddrPort("198.18.0.77:80"), "S", 1, 0, nil),
			"from our MAC":                 framegen.TCP(framegen.L2{Src: ours, Dst: ours}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
			"UDP":                          framegen.UDP(l2, c, netip.AddrPortFrom(vip, 80), nil),
			"packet beyond the frame":      with(syn(), func(f []byte) { setTotal(f, len(f)-14+1) }),
			"TCP header beyond the packet": with(syn(), func(f []byte) { setTotal(f, 20+19) }),
			"TCP data offset 4":            with(syn(), func(f []byte) { f[14+20+12] = 4 << 4 }),
			"a fragment":                   with(syn(), func(f []byte) { f[14+6] = 0x20 }), // MF
			"IP options":                   opts,
			"shorter than its headers":     syn()[:14+20+13],
		}
		for name, f := range others {
			if refused, _ := run(f); refused {
				t.Errorf("flows %d, %s: forwarded", flows, name)
			}
		}
		// A VIP frame drlb reads is still taken by the VIP filter.
		if ret := runSocketFilter(t, filter, framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil)); ret != FilterAccept {
			t.Errorf("flows %d: an ACK to the VIP: filter %d, want %d (to drlb)", flows, ret, FilterAccept)
		}
		// Tables change: a removed service's SYNs go to drlb again.
		if err := kf.syn.set(true, ours, tables[1:]); err != nil {
			t.Fatal(err)
		}
		for range 50 {
			if refused, _ := run(framegen.TCP(l2, client(), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)); refused {
				t.Fatal("a removed table still forwards")
			}
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
			err := sp.SetStatelessSYNs(true, nil)
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
			if err := sp.SetStatelessSYNs(false, nil); !errors.Is(err, ErrNoKernelSYNs) {
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

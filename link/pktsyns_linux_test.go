package link

import (
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

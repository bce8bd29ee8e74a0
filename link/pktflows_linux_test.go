package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	ebpflink "github.com/cilium/ebpf/link"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// tcxRedirect is TC_ACT_REDIRECT, what bpf_redirect returns.
const tcxRedirect = 7

// newSockKflowLab is the AF_PACKET kernel side over fresh maps: the
// worker's socket filter (around the VIP filter) and the tc program with
// the group's slots, not attached. A frame the filter refuses with this
// CPU's slot set goes on through the tc program, on the same CPU, as the
// kernel does.
func newSockKflowLab(t testing.TB, flows int) *kflowLab {
	t.Helper()
	kf, filter, tc, ours := newSockKflow(t, flows)
	ncpu := len(kf.maps.zero)
	return &kflowLab{t: t, flows: &kf.maps, ours: ours, notVIP: kfTX,
		runFn: func(t testing.TB, f []byte) (uint32, []byte) {
			t.Helper()
			cpu := pinCPU(t)
			if err := kf.slots.Put(uint32(0), make([]kflowSlot, ncpu)); err != nil {
				t.Fatal(err)
			}
			ret := runSocketFilter(t, filter, f)
			slots := make([]kflowSlot, ncpu)
			if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
				t.Fatal(err)
			}
			if ret != 0 && ret != FilterAccept || ret == FilterAccept && slots[cpu].Valid != 0 {
				t.Fatalf("socket filter: %d, slot %+v", ret, slots[cpu])
			}
			tret, out, err := tc.flowProg.Test(f)
			if err != nil {
				t.Fatalf("tc test run (%d bytes): %v", len(f), err)
			}
			if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
				t.Fatal(err)
			}
			if slots[cpu].Valid != 0 {
				t.Fatalf("tc left the slot set: %+v", slots[cpu])
			}
			if ret == 0 && tret == tcxRedirect {
				return kfTX, out
			}
			if tret != tcxNextRet {
				t.Fatalf("tc kernel-flow program: %d, want %d (next) for a frame the socket filter did not leave to it", int32(tret), tcxNext)
			}
			// The drop after it takes the kernel's copy of what drlb
			// reads, as without kernel flows.
			dret, _, err := tc.prog.Test(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := wantVIPDrop(f, ours, splitVIPs); (dret == tcxDrop) != want {
				t.Fatalf("tc drop: %d, want drop %v", dret, want)
			}
			if ret == 0 {
				return kfPass, f
			}
			return kfDrlb, f
		}}
}

// newSockKflow loads the AF_PACKET kernel side over fresh maps with
// room for flows: a worker's flows and the group's slots, the worker's
// socket filter around the VIP filter, and the tc programs (not
// attached) for director MAC ours.
func newSockKflow(t testing.TB, flows int) (kf *pktFlows, filter *ebpf.Program, tc *VIPDrop, ours net.HardwareAddr) {
	t.Helper()
	testutil.NeedRoot(t)
	kf = &pktFlows{}
	t.Cleanup(kf.close)
	var err error
	if kf.slots, err = newKflowSlots(); err != nil {
		t.Fatal(err)
	}
	if err := kf.maps.make(flows); err != nil {
		t.Fatal(err)
	}
	classic, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	filter, err = kf.filter(classic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filter.Close() })
	ours = net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	tc, err = loadVIPDrop(ours, splitVIPs, &KernelFlowSlots{m: kf.slots}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.close)
	return kf, filter, tc, ours
}

// tcxNextRet is TCX_NEXT as a test run returns it.
const tcxNextRet = uint32(0xffffffff)

// runSocketFilter runs a socket filter on frame f in the kernel. The test
// run takes the first 14 bytes of its input for the link header and
// starts the skb after them, where a packet socket's filter sees the
// frame's own: so f goes in behind 14 bytes of its own.
func runSocketFilter(t testing.TB, filter *ebpf.Program, f []byte) uint32 {
	t.Helper()
	in := append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0}, f...)
	ret, _, err := filter.Test(in)
	if err != nil {
		t.Fatalf("socket filter test run (%d bytes): %v", len(f), err)
	}
	return ret
}

// socketTestRunnable reports whether the socket filter's and the tc
// program's test runs take frame as the kernel would, and it is at most
// max bytes long. They refuse what the kernel would take: under 20 bytes
// for the socket filter (runSocketFilter's IPv4 link header wants an
// IPv4 header behind it; the filter reads the frame's own ethertype,
// never skb->protocol, so an IPv6 frame behind it runs as the kernel runs
// it), and for tc a frame shorter than its own type's network header.
func socketTestRunnable(frame []byte, max int) bool {
	need := 20
	if len(frame) >= 14 {
		switch uint16(frame[12])<<8 | uint16(frame[13]) {
		case 0x0800:
			need = 14 + 20
		case 0x86dd:
			need = 14 + 40
		}
	}
	return len(frame) >= need && len(frame) <= max
}

// pinCPU keeps the calling goroutine on one thread on one CPU until the
// test ends, and returns the CPU: per-CPU map values written by one test
// run are then read by the next.
func pinCPU(t testing.TB) int {
	t.Helper()
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	cpu := 0
	for !old.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
	return cpu
}

// TestSocketKernelFlows runs TestXDPKernelFlows' frames through the
// AF_PACKET side: the socket filter leaves a kernel flow's frame to the
// tc program, which sends it with the same MACs as XDP_TX would, and
// lets drlb read every frame the XDP program would give it.
func TestSocketKernelFlows(t *testing.T) {
	testKernelFlows(t, newSockKflowLab(t, maxKernelFlows))
}

// TestSocketKernelFlowReusedElement is TestXDPKernelFlowReusedElement
// through the socket filter and the tc program.
func TestSocketKernelFlowReusedElement(t *testing.T) {
	testReusedElement(t, newSockKflowLab(t, 16))
}

// TestSplitPortKernelFlows: through a live veth, a kernel flow's frames
// sent to a split port with kernel flows and the tc program attached
// come straight back out with the server's MAC, counted, and the port
// never reads them; a SYN of the same flow, and every frame once the
// forwarding is off, reach the port instead. A filter replaced (a
// reload) keeps the kernel flows.
func TestSplitPortKernelFlows(t *testing.T) {
	l, pa, pd, filter := kernelFlowPair(t)
	fp, ok := pd.(TCFlowPort)
	var slots *KernelFlowSlots
	if ok {
		slots = fp.KernelFlowSlots()
	}
	if slots == nil {
		t.Fatalf("%T: no kernel-flow slots", pd)
	}
	defer slots.Close()
	// Another tc program that lets every frame through (TC_ACT_OK ends
	// tcx's run), attached first: the kernel-flow program goes before
	// it, or the frames the socket filter kept from drlb would be lost.
	testutil.TCXPassAll(t, l.nsD, "d0", false)
	attachFlowDrop(t, l, slots)
	if err := pd.(FilterSetter).SetFilter(filter); err != nil {
		t.Fatal(err)
	}
	server := KernelServer{ID: 5, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 5}}
	const n = 5
	out := liveKernelFlow(t, pa, fp, server, n)
	c, web := liveFlowClient, liveFlowVIP
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	// The port read none of them: the next frame it reads is the SYN.
	write(t, pa, Frame{Data: framegen.TCP(l2, c, web, "S", 9, 0, []byte("kflow-syn"))})
	readUntil(t, pd, hasMarker("kflow-syn"), func(f Frame) {
		if bytes.Contains(f.Data, []byte("kflow")) {
			t.Errorf("the port read a kernel flow's frame: % x", f.Data)
		}
	})
	counts, err := fp.KernelFlowCounts()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counts[server.ID], (KernelCount{Packets: n, Bytes: n * ipTotal(out[0].Data)}); got != want {
		t.Errorf("counts %v, want %+v for server %d", counts, want, server.ID)
	}
	// A super-frame (the router's TSO, or GRO on the interface) over the
	// MTU: forwarded whole, the kernel segments it if the way out needs
	// it.
	sf := tcpSuperFrame(-1, 8, 1400)
	superFlow := KernelFlow{Client: netip.AddrPortFrom(ipA0, 40000), VIP: netip.AddrPortFrom(vip4, 7777), Proto: protoTCP, Server: server.ID, Refresh: time.Hour}
	if err := fp.UpdateKernelFlows([]KernelFlow{superFlow}, nil); err != nil {
		t.Fatal(err)
	}
	copy(sf.Data[6:12], macA0)
	copy(sf.Data[0:6], macD0)
	write(t, pa, sf)
	payload := 0
	readUntil(t, pa, func(f Frame) bool {
		if bytes.Equal(f.Data[0:6], server.MAC[:]) {
			if n, ok := tcpPayload(f.Data, 7777); ok {
				payload += n
			}
		}
		return payload >= 8*1400
	}, nil)
	write(t, pa, Frame{Data: framegen.TCP(l2, c, web, "S", 9, 0, []byte("kflow-syn2"))})
	readUntil(t, pd, hasMarker("kflow-syn2"), func(f Frame) {
		if bytes.Contains(f.Data, []byte("ssssssss")) {
			t.Errorf("the port read the super-frame (%d bytes)", len(f.Data))
		}
	})
	// A jumbo frame whose headers are not in the skb's linear part (a
	// packet socket's write puts only the Ethernet header there): the
	// tc program reads it as the filter did, and sends it.
	for _, ns := range []netns.NsHandle{l.nsA, l.nsD} {
		if err := testutil.Do(ns, func() error {
			lk, err := netlink.LinkByName(map[bool]string{true: "a0", false: "d0"}[ns == l.nsA])
			if err != nil {
				return err
			}
			return netlink.LinkSetMTU(lk, 9000)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := fp.SetKernelFlowServers(true, 9000, []KernelServer{server}); err != nil {
		t.Fatal(err)
	}
	write(t, pa, Frame{Data: framegen.TCP(l2, c, web, "A", 11, 1, append([]byte("kflow-jumbo"), make([]byte, 6000)...))})
	readUntil(t, pa, func(f Frame) bool {
		return bytes.Equal(f.Data[0:6], server.MAC[:]) && bytes.Contains(f.Data, []byte("kflow-jumbo"))
	}, nil)
	write(t, pa, Frame{Data: framegen.TCP(l2, c, web, "S", 9, 0, []byte("kflow-syn3"))})
	readUntil(t, pd, hasMarker("kflow-syn3"), func(f Frame) {
		if bytes.Contains(f.Data, []byte("kflow-jumbo")) {
			t.Error("the port read the jumbo frame")
		}
	})
	// Off: the flow's frames reach the port.
	if err := fp.SetKernelFlowServers(false, 0, nil); err != nil {
		t.Fatal(err)
	}
	write(t, pa, Frame{Data: framegen.TCP(l2, c, web, "A", 10, 1, []byte("kflow-off"))})
	readUntil(t, pd, hasMarker("kflow-off"), nil)
	pd.Close()
	if err := fp.UpdateKernelFlows(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateKernelFlows after Close: %v", err)
	}
}

// TestSplitPortNoKernelFlows: without Config.KernelFlows a split port
// has no slots, and its FlowPort methods say so.
func TestSplitPortNoKernelFlows(t *testing.T) {
	l := newPairLab(t)
	pd := openSplitIn(t, l.nsD, "d0", Config{}, 1, ClientHash{})[0]
	fp := pd.(TCFlowPort)
	if fp.KernelFlowSlots() != nil {
		t.Error("slots without Config.KernelFlows")
	}
	if err := fp.SetKernelFlowServers(true, 0, nil); !errors.Is(err, ErrNoKernelFlows) {
		t.Errorf("SetKernelFlowServers: %v, want ErrNoKernelFlows", err)
	}
}

// TestKernelFlowSlots: a slot a frame left behind (its tc program never
// ran) is never taken for another frame. The socket filter clears it for
// every frame it sees, kernel flows on or off, and the tc program sends a
// frame only if the slot names its own flow, and takes the slot either
// way.
func TestKernelFlowSlots(t *testing.T) {
	kf, filter, tc, ours := newSockKflow(t, 16)
	cpu := pinCPU(t)
	ncpu := len(kf.maps.zero)
	web := netip.AddrPortFrom(splitVIPs[0], 80)
	x, y := netip.MustParseAddrPort("198.18.1.10:40000"), netip.MustParseAddrPort("198.18.1.11:40000")
	key, _ := kflowKeyOf(x, web, protoTCP)
	server := [8]byte{0x02, 0x99, 0, 0, 0, 5}
	web6 := netip.AddrPortFrom(splitVIPs[1], 80)
	x6, y6 := netip.MustParseAddrPort("[2001:2::10]:40000"), netip.MustParseAddrPort("[2001:2::11]:40000")
	key6, _ := kflowKey6Of(x6, web6, protoTCP)
	slot4 := kflowSlot{Key: slotKeyOf(key), MAC: server, Valid: 4}
	slot6 := kflowSlot{Key: slotKeyOf(key6), MAC: server, Valid: 6}
	leave := func(s kflowSlot) {
		t.Helper()
		all := make([]kflowSlot, ncpu)
		for i := range all {
			all[i] = s
		}
		if err := kf.slots.Put(uint32(0), all); err != nil {
			t.Fatal(err)
		}
	}
	left := func() { t.Helper(); leave(slot4) }
	taken := func(what string) {
		t.Helper()
		slots := make([]kflowSlot, ncpu)
		if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
			t.Fatal(err)
		}
		if slots[cpu].Valid != 0 {
			t.Errorf("%s: the slot is still set", what)
		}
	}
	l2 := framegen.L2{Src: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}, Dst: ours}
	frameX := framegen.TCP(l2, x, web, "A", 1, 1, nil)
	frameY := framegen.TCP(l2, y, web, "A", 1, 1, nil)

	// Kernel flows were never turned on.
	for name, f := range map[string][]byte{"the same flow": frameX, "another flow": frameY, "ARP": framegen.ARPRequest(l2, netip.MustParseAddr("198.18.1.10"), splitVIPs[0])} {
		left()
		if ret := runSocketFilter(t, filter, f); ret != FilterAccept {
			t.Errorf("socket filter, %s: %d, want %d (to drlb)", name, ret, FilterAccept)
		}
		taken("socket filter, " + name)
	}
	// Frames that differ from the slot's flow in one field each, and
	// an IPv6 frame whose bytes at the IPv4 fields' offsets are the
	// slot's flow's.
	var lookalike [16]byte
	lookalike[0], lookalike[1] = 0x20, protoTCP // byte 1: where IPv4 has its protocol
	copy(lookalike[4:8], x.Addr().AsSlice())
	copy(lookalike[8:12], web.Addr().AsSlice())
	lookalike[12], lookalike[13], lookalike[14], lookalike[15] = byte(x.Port()>>8), byte(x.Port()), 0, 80
	for name, f := range map[string][]byte{
		"another client":      frameY,
		"another client port": framegen.TCP(l2, netip.AddrPortFrom(x.Addr(), x.Port()+1), web, "A", 1, 1, nil),
		"another VIP port":    framegen.TCP(l2, x, netip.AddrPortFrom(web.Addr(), 81), "A", 1, 1, nil),
		"UDP":                 framegen.UDP(l2, x, web, nil),
		"an IPv6 lookalike":   framegen.TCP(l2, netip.AddrPortFrom(netip.AddrFrom16(lookalike), 1), web6, "A", 1, 1, nil),
	} {
		left()
		if ret, _, err := tc.flowProg.Test(f); err != nil || ret != tcxNextRet {
			t.Errorf("tc, another flow's slot, %s: %d (%v), want next", name, int32(ret), err)
		}
		taken("tc, another flow's slot, " + name)
	}
	left()
	ret, out, err := tc.flowProg.Test(frameX)
	if err != nil || ret != tcxRedirect {
		t.Fatalf("tc, the frame's own slot: %d (%v), want redirect", int32(ret), err)
	}
	taken("tc, the frame's own slot")
	if !bytes.Equal(out[0:6], server[:6]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], frameX[12:]) {
		t.Errorf("sent as\n% x", out)
	}
	// An IPv6 flow's slot: taken for that flow's frame only, not for
	// another IPv6 flow's nor for an IPv4 frame.
	frame6X := framegen.TCP(l2, x6, web6, "A", 1, 1, nil)
	for name, f := range map[string][]byte{
		"another client":      framegen.TCP(l2, y6, web6, "A", 1, 1, nil),
		"another client port": framegen.TCP(l2, netip.AddrPortFrom(x6.Addr(), x6.Port()+1), web6, "A", 1, 1, nil),
		"another VIP":         framegen.TCP(l2, x6, netip.AddrPortFrom(netip.MustParseAddr("2001:2::101"), 80), "A", 1, 1, nil),
		"another VIP port":    framegen.TCP(l2, x6, netip.AddrPortFrom(web6.Addr(), 81), "A", 1, 1, nil),
		"UDP":                 framegen.UDP(l2, x6, web6, nil),
		"an IPv4 frame":       frameX,
	} {
		leave(slot6)
		if ret, _, err := tc.flowProg.Test(f); err != nil || ret != tcxNextRet {
			t.Errorf("tc, an IPv6 flow's slot, %s: %d (%v), want next", name, int32(ret), err)
		}
		taken("tc, an IPv6 flow's slot, " + name)
	}
	leave(slot6)
	ret, out, err = tc.flowProg.Test(frame6X)
	if err != nil || ret != tcxRedirect {
		t.Fatalf("tc, the IPv6 frame's own slot: %d (%v), want redirect", int32(ret), err)
	}
	taken("tc, the IPv6 frame's own slot")
	if !bytes.Equal(out[0:6], server[:6]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], frame6X[12:]) {
		t.Errorf("sent as\n% x", out)
	}
}

// TestSplitPortDropKernelFlows: a port whose kernel flows are dropped
// (the director could not attach the tc program) has no slots, refuses
// the FlowPort calls, and reads VIP frames through the classic filter.
func TestSplitPortDropKernelFlows(t *testing.T) {
	_, pa, pd, filter := kernelFlowPair(t)
	fp := pd.(TCFlowPort)
	if err := fp.DropKernelFlows(filter); err != nil {
		t.Fatal(err)
	}
	if s := fp.KernelFlowSlots(); s != nil {
		s.Close()
		t.Error("slots after DropKernelFlows")
	}
	if err := fp.SetKernelFlowServers(true, 0, nil); !errors.Is(err, ErrNoKernelFlows) {
		t.Errorf("SetKernelFlowServers after DropKernelFlows: %v, want ErrNoKernelFlows", err)
	}
	write(t, pa, Frame{Data: udpFrame(-1, splitVIPs[0], "after-drop")}, Frame{Data: udpFrame(-1, netip.MustParseAddr("198.18.0.77"), "not-a-vip")})
	readUntil(t, pd, hasMarker("after-drop"), nil)
	if err := pd.(FilterSetter).SetFilter(filter); err != nil {
		t.Errorf("SetFilter after DropKernelFlows: %v", err)
	}
}

// slotKeyOf is k (a kflowKey or a kflowKey6) as a slot holds it: its
// bytes as the maps hold them, zero-padded to a kflowKey6's size.
func slotKeyOf(k any) (b [kflowKey6Size]byte) {
	if _, err := binary.Encode(b[:], binary.NativeEndian, k); err != nil {
		panic(err)
	}
	return b
}

// attachFlowDrop attaches the VIP drop with the kernel-flow program for
// slots to d0 (closed at the test's end).
func attachFlowDrop(t *testing.T, l pairLab, slots *KernelFlowSlots) *VIPDrop {
	t.Helper()
	var drop *VIPDrop
	if err := testutil.Do(l.nsD, func() (err error) {
		drop, err = AttachVIPDrop("d0", macD0, splitVIPs, slots)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { drop.Close() })
	return drop
}

// kernelFlowPair is a veth pair with a plain port on a0 and a split
// port of one worker with kernel flows on d0, and the VIP filter it
// opened with.
func kernelFlowPair(t *testing.T) (l pairLab, pa, pd Port, filter []bpf.RawInstruction) {
	t.Helper()
	l = newPairLab(t)
	pa = openIn(t, l.nsA, "a0", Config{})
	filter, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	pd = openSplitIn(t, l.nsD, "d0", Config{Filter: filter, KernelFlows: true}, 1, ClientHash{})[0]
	return l, pa, pd, filter
}

// TestVIPDropKernelFlowOrder: KernelFlowOrder sees the kernel-flow
// program first at tcx ingress after AttachVIPDrop, also with another
// program attached at the tail; behind a program attached at the head
// later, and first again once that one is gone; and not attached at
// all once its link is detached from outside, as bpftool would.
func TestVIPDropKernelFlowOrder(t *testing.T) {
	l, _, pd, _ := kernelFlowPair(t)
	slots := pd.(TCFlowPort).KernelFlowSlots()
	defer slots.Close()
	drop := attachFlowDrop(t, l, slots)
	order := func() (o TCXOrder) {
		t.Helper()
		if err := testutil.Do(l.nsD, func() (err error) { // the ifindex is d0's there
			o, err = drop.KernelFlowOrder()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	testutil.TCXPassAll(t, l.nsD, "d0", false)
	if o := order(); !o.First() {
		t.Errorf("after attaching: %+v, want first", o)
	}
	id, detach := testutil.TCXPassAll(t, l.nsD, "d0", true)
	if o := order(); o.First() || !o.Attached || !slices.Equal(o.Ahead, []ebpf.ProgramID{id}) {
		t.Errorf("behind program %d: %+v", id, o)
	}
	detach()
	if o := order(); !o.First() {
		t.Errorf("after the program ahead left: %+v, want first", o)
	}
	info, err := drop.flowAttach.Info()
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ebpflink.NewFromID(info.ID)
	if err != nil {
		t.Fatalf("the kernel-flow program's link %d: %v", info.ID, err)
	}
	defer ours.Close()
	if err := ours.Detach(); err != nil {
		t.Fatal(err)
	}
	if o := order(); o.Attached || len(o.Ahead) != 2 {
		t.Errorf("after its link was detached: %+v, want not attached, 2 programs in the list", o)
	}
	drop.Close()
	if _, err := drop.KernelFlowOrder(); !errors.Is(err, ErrNoKernelFlows) {
		t.Errorf("after Close: %v, want ErrNoKernelFlows", err)
	}
}

// BenchmarkKernelFlowFilter runs the AF_PACKET socket filter in the
// kernel (BPF_PROG_TEST_RUN, caches hot) on a frame of a kernel flow,
// IPv4 and IPv6 (looked up, counted, left in the slot, refused), and on a
// VIP frame of no flow (looked up, then the VIP filter): what kernel
// flows add to each frame's tap.
func BenchmarkKernelFlowFilter(b *testing.B) {
	kf, filter, _, ours := newSockKflow(b, 1024)
	srv := KernelServer{ID: 1, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 1}}
	if err := kf.maps.setServers(true, ours, 0, []KernelServer{srv}); err != nil {
		b.Fatal(err)
	}
	c, c6 := netip.MustParseAddrPort("198.18.1.10:40000"), netip.MustParseAddrPort("[2001:2::10]:40000")
	web, web6 := netip.AddrPortFrom(splitVIPs[0], 80), netip.AddrPortFrom(splitVIPs[1], 80)
	flows := []KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: srv.ID, Refresh: time.Hour}, {Client: c6, VIP: web6, Proto: protoTCP, Server: srv.ID, Refresh: time.Hour}}
	now, err := monotonicNow()
	if err != nil {
		b.Fatal(err)
	}
	if full, err := kf.maps.update(flows, nil, now); err != nil || full != 0 {
		b.Fatalf("update: %d full, %v", full, err)
	}
	l2 := framegen.L2{Src: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}, Dst: ours}
	for _, bc := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"IPv4 flow", framegen.TCP(l2, c, web, "A", 1, 1, nil), 0},
		{"IPv6 flow", framegen.TCP(l2, c6, web6, "A", 1, 1, nil), 0},
		{"IPv4 no flow", framegen.TCP(l2, netip.MustParseAddrPort("198.18.1.11:40000"), web, "A", 1, 1, nil), FilterAccept},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := append(make([]byte, 14), bc.frame...)
			in[12] = 0x08
			ret, _, err := filter.Benchmark(in, b.N, nil)
			if err != nil || ret != bc.want {
				b.Fatalf("%d (%v), want %d", ret, err, bc.want)
			}
		})
	}
}

// FuzzSocketKernelFlows is FuzzXDPKernelFlows through the AF_PACKET side
// (the socket filter, then the tc program, as the kernel does; the lab
// fails on a frame left to tc and not sent): the kernel forwards exactly
// the frames wantKernelFlow says, each to its flow's server with only
// the MACs changed.
func FuzzSocketKernelFlows(f *testing.F) {
	l := newSockKflowLab(f, 64)
	flows, srv := fuzzKflows(l)
	addKflowSeeds(f, l.ours)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if !socketTestRunnable(frame, fuzzKflowMax) {
			return
		}
		l.t = t
		in := append([]byte(nil), frame...)
		ret, out := l.run(frame)
		checkKernelFlow(t, in, l.ours, flows, srv, ret == kfTX, out)
	})
}

package link

import (
	"bytes"
	"context"
	"fmt"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/sys/unix"
)

// The lanes of a frame through the AF_XDP port: its AF_PACKET side (the
// frames XDP passes), the main AF_XDP socket or the SYN socket.
const (
	lanePacket = "packet"
	laneMain   = "main"
	laneSYN    = "syn"
	laneTrust  = "trusted"
)

// xdpLane is the lane the XDP program must pick for frame f, with vips
// and trusted clients: a frame to a VIP goes to an AF_XDP socket, the SYN
// socket when the classic split program (vm, one worker) calls it a bare
// SYN and its source is not trusted; everything else passes.
func xdpLane(t *testing.T, f []byte, vm func([]byte) (int, error), vips []netip.Addr, trusted map[netip.Addr]bool) string {
	t.Helper()
	var dst, src netip.Addr
	switch {
	case len(f) >= 14+20 && f[12] == 0x08 && f[13] == 0x00:
		dst, src = netip.AddrFrom4([4]byte(f[14+16:])), netip.AddrFrom4([4]byte(f[14+12:]))
	case len(f) >= 14+40 && f[12] == 0x86 && f[13] == 0xdd:
		dst, src = netip.AddrFrom16([16]byte(f[14+24:])), netip.AddrFrom16([16]byte(f[14+8:]))
	}
	if !slices.Contains(vips, dst) {
		return lanePacket
	}
	m, err := vm(f)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case m == 1 && trusted[src]:
		return laneTrust
	case m == 1:
		return laneSYN
	}
	return laneMain
}

// TestXDPProgramSplitsSYNs runs the XDP program in the kernel
// (BPF_PROG_TEST_RUN) on splitCases and on thousands of truncated and
// corrupted copies of them, and checks each lane it picks against the
// classic split program's decision in bpf.VM (OpenSplit's definition of a
// bare SYN): the same frames must reach the SYN socket on both paths, and
// no bounds check may be missing or off by one. Then trusted clients'
// bare SYNs move to the trusted-SYN socket and nothing else moves.
func TestXDPProgramSplitsSYNs(t *testing.T) {
	testutil.NeedRoot(t)
	// The XDP test run wants an Ethernet header, nothing more.
	cases, frames := mutatedSplitCases(rand.New(rand.NewPCG(3, 4)), 60, func([]byte) int { return 14 })
	c4, c6 := splitTestClients()
	o, err := loadXDP(1, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	if err := o.setVIPs(splitVIPs); err != nil {
		t.Fatal(err)
	}
	// An AF_XDP socket in one slot of the XSKMAP: bpf_redirect_map
	// returns XDP_REDIRECT for that slot and its flags (XDP_PASS) for the
	// empty one, so each run tells whether the program picked the slot.
	// The test run redirects nothing: the socket need not be bound.
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	lane := func(f []byte) string { return redirectLane(t, o, fd, f) }
	vm := vmSplitProgram(t, ClientHash{}, 1)
	run := func(f []byte) (int, error) { return vm.Run(f) }
	counts := map[string]int{}
	for i, f := range frames {
		want := xdpLane(t, f, run, splitVIPs, nil)
		if got := lane(f); got != want {
			t.Fatalf("frame %d (%d bytes) % x: lane %s, want %s", i, len(f), f, got, want)
		}
		counts[want]++
	}
	t.Logf("%d frames by lane: %v", len(frames), counts)
	trusted := map[netip.Addr]bool{c4[1]: true, c6[0]: true}
	if err := o.trusted.trust([]netip.Addr{c4[1], c6[0]}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		want := xdpLane(t, c.frame, run, splitVIPs, trusted)
		if c.bareSYN && trusted[c.client] && want != laneTrust {
			t.Fatalf("%s: a trusted client's SYN wants lane %s", c.name, want)
		}
		if got := lane(c.frame); got != want {
			t.Errorf("trusted %s: lane %s, want %s", c.name, got, want)
		}
	}
}

// xdpWhoRead writes out from pa and reads p's three lanes apart until
// every frame of out (marked "xdplane-<i>" at its end) has arrived, and
// returns the lane of each.
func xdpWhoRead(t *testing.T, pa Port, p *xdpPort, out []Frame) []string {
	t.Helper()
	write(t, pa, out...)
	got := make([]string, len(out))
	seen := 0
	fs := make([]Frame, 16)
	mark := func(lane string, frames []Frame) {
		for _, f := range frames {
			k := bytes.LastIndex(f.Data, []byte("xdplane-"))
			if k < 0 {
				continue // the kernel's own NDP or ARP
			}
			var i int
			if _, err := fmt.Sscanf(string(f.Data[k+len("xdplane-"):]), "%d", &i); err != nil || i >= len(got) || got[i] != "" {
				t.Fatalf("frame %q read twice or unknown (%v)", f.Data[k:], err)
			}
			got[i] = lane
			seen++
		}
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); seen < len(out); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames arrived: %v", seen, len(out), got)
		}
		n := p.x.receive(&p.x.rx, fs, p.bufs)
		mark(laneMain, fs[:n])
		n = p.x.receive(&p.syn.rx, fs, p.bufs)
		mark(laneSYN, fs[:n])
		n = p.x.receive(&p.tsyn.rx, fs, p.bufs)
		mark(laneTrust, fs[:n])
		n, err := p.ap.TryReadBatch(fs)
		if err != nil {
			t.Fatal(err)
		}
		mark(lanePacket, fs[:n])
		if err := pollReadable(p.ifname, p.pfds, pollWaitMillis); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// TestXDPPortSorts sends splitCases through a veth to an AF_XDP port and
// checks, reading each of its sockets on its own, that bare SYNs to a VIP
// reach the SYN socket, every other frame to a VIP the main AF_XDP socket
// and the rest (ARP, NDP) the AF_PACKET side; with trust, the trusted
// clients' bare SYNs reach the trusted-SYN socket.
func TestXDPPortSorts(t *testing.T) {
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	var c4, c6 []netip.Addr
	for i := range 4 {
		c4 = append(c4, netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}))
		c6 = append(c6, netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(10 + i)}))
	}
	cases := splitCases(l2, c4, c6)
	vm := vmSplitProgram(t, ClientHash{}, 1)
	run := func(f []byte) (int, error) { return vm.Run(f) }
	for _, tc := range []struct {
		name    string
		trusted map[netip.Addr]bool
	}{
		{"no trusted clients", nil},
		{"trusted clients", map[netip.Addr]bool{c4[0]: true, c4[3]: true, c6[1]: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			pd := openXDPIn(t, l.nsD, "d0", splitVIPs)
			if len(tc.trusted) > 0 {
				var addrs []netip.Addr
				for a := range tc.trusted {
					addrs = append(addrs, a)
				}
				if err := Port(pd).(ClientTruster).TrustClients(addrs); err != nil {
					t.Fatal(err)
				}
			}
			out := make([]Frame, len(cases))
			for i, c := range cases {
				out[i].Data = append(append([]byte(nil), c.frame...), fmt.Sprintf("xdplane-%03d", i)...)
			}
			got := xdpWhoRead(t, pa, pd, out)
			counts := map[string]int{}
			for i, c := range cases {
				want := xdpLane(t, c.frame, run, splitVIPs, tc.trusted)
				if got[i] != want {
					t.Errorf("%s reached lane %s, want %s", c.name, got[i], want)
				}
				counts[got[i]]++
			}
			if counts[laneSYN] == 0 || counts[laneMain] == 0 || counts[lanePacket] == 0 || (len(tc.trusted) > 0) != (counts[laneTrust] > 0) {
				t.Errorf("a lane got nothing, or trusted SYNs without trust: %v", counts)
			}
			t.Logf("%d frames by lane: %v", len(out), counts)
		})
	}
}

// TestXDPPortReadsBoth: ReadBatch returns the frames of both AF_XDP
// sockets, SYNs first in a batch; with both backlogged a batch takes at
// most 3/4 from main, and either socket alone fills a batch.
func TestXDPPortReadsBoth(t *testing.T) {
	const batch = 16
	for _, tc := range []struct {
		syns, acks int
		first      [2]int // SYNs and ACKs in the first batch
	}{
		{32, 32, [2]int{4, 12}},
		{2, 32, [2]int{2, 14}},
		{32, 2, [2]int{14, 2}},
		{32, 0, [2]int{16, 0}},
		{0, 32, [2]int{0, 16}},
	} {
		t.Run(fmt.Sprintf("%d SYNs %d ACKs", tc.syns, tc.acks), func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			pd := openXDPIn(t, l.nsD, "d0", splitVIPs)
			l2 := framegen.L2{Src: macA0, Dst: macD0}
			c := netip.MustParseAddr("198.18.1.10")
			var out []Frame
			for i := range max(tc.syns, tc.acks) {
				from, to := netip.AddrPortFrom(c, uint16(40000+i)), netip.AddrPortFrom(splitVIPs[0], 80)
				if i < tc.syns {
					out = append(out, Frame{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)})
				}
				if i < tc.acks {
					out = append(out, Frame{Data: framegen.TCP(l2, from, to, "A", 2, 2, nil)})
				}
			}
			write(t, pa, out...)
			// Until both rings hold what was sent, the first batch says
			// nothing about the shares.
			for deadline := time.Now().Add(10 * time.Second); int(pd.syn.rx.avail()) < tc.syns || int(pd.x.rx.avail()) < tc.acks; {
				if time.Now().After(deadline) {
					t.Fatalf("rings hold %d SYNs and %d ACKs, want %d and %d", pd.syn.rx.avail(), pd.x.rx.avail(), tc.syns, tc.acks)
				}
				time.Sleep(time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			fs := make([]Frame, batch)
			var syns, acks []int // per ReadBatch
			for sum(syns)+sum(acks) < tc.syns+tc.acks {
				n, err := pd.ReadBatch(ctx, fs)
				if err != nil {
					t.Fatalf("ReadBatch after %d SYNs and %d ACKs: %v", sum(syns), sum(acks), err)
				}
				s, a := classifyBatch(t, fs[:n], nil)
				syns, acks = append(syns, s), append(acks, a)
			}
			if sum(syns) != tc.syns || sum(acks) != tc.acks {
				t.Fatalf("read %d SYNs and %d ACKs, want %d and %d", sum(syns), sum(acks), tc.syns, tc.acks)
			}
			if syns[0] != tc.first[0] || acks[0] != tc.first[1] {
				t.Errorf("first batch: %d SYNs and %d ACKs, want %d and %d (per batch %v / %v)", syns[0], acks[0], tc.first[0], tc.first[1], syns, acks)
			}
			if got := pd.rxSYN.Load(); got != uint64(tc.syns) {
				t.Errorf("%d frames through the SYN socket, want %d", got, tc.syns)
			}
			t.Logf("SYNs per batch %v, ACKs per batch %v", syns, acks)
		})
	}
}

// TestXDPPortSYNFlood: more bare SYNs than the SYN socket's ring holds,
// unread, overflow that ring only: the drops are SYNRxDropped, and the
// ACKs sent after them all reach the main socket.
func TestXDPPortSYNFlood(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", splitVIPs)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	to := netip.AddrPortFrom(splitVIPs[0], 80)
	const flood, acks = 2 * xskSYNRing, 256
	var out []Frame
	floodSYNs(t, l, pa, l2, flood)
	c := netip.MustParseAddr("198.18.1.10")
	for i := range acks {
		out = append(out, Frame{Data: framegen.TCP(l2, netip.AddrPortFrom(c, uint16(40000+i)), to, "A", 2, 2, nil)})
	}
	for len(out) > 0 {
		write(t, pa, out[:64]...)
		out = out[64:]
	}
	isACK := func(f Frame) bool {
		d := f.Data
		return len(d) >= 14+20+20 && d[12] == 0x08 && d[13] == 0x00 && d[14+9] == 6 && d[14+20+13]&0x12 == 0x10
	}
	readN(t, pd, isACK, acks)
	st, err := pd.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SYNRxDropped == 0 || st.SYNRxDropped > flood-xskSYNRing {
		t.Errorf("SYNRxDropped %d, want 1..%d (%d SYNs into a ring of %d)", st.SYNRxDropped, flood-xskSYNRing, flood, xskSYNRing)
	}
	if st.XDPRxDropped != 0 {
		t.Errorf("XDPRxDropped %d: the main socket lost frames to a SYN flood", st.XDPRxDropped)
	}
	t.Logf("stats %+v", st)
}

// TestXDPPortZeroAllocLanes: a round trip through both AF_XDP sockets
// allocates nothing.
func TestXDPPortZeroAllocLanes(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{Filter: mustFilter(t, splitVIPs...)})
	pd := openXDPIn(t, l.nsD, "d0", splitVIPs)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	from, to := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), 40000), netip.AddrPortFrom(splitVIPs[0], 80)
	out := []Frame{{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)}, {Data: framegen.TCP(l2, from, to, "A", 2, 2, nil)}}
	expectZeroAllocRoundTrip(t, pa, pd, out)
	if pd.rxSYN.Load() == 0 {
		t.Fatal("no frame came through the SYN socket")
	}
}

// TestXDPPortARPUnderFlood: while the SYN ring stays full (a flood), the
// AF_PACKET side's frames (here ARP requests for the VIP, which the
// director must answer) are still read within a few batches, not only
// once the rings run dry.
func TestXDPPortARPUnderFlood(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", splitVIPs)
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	var out []Frame
	floodSYNs(t, l, pa, l2, 2*xskSYNRing)
	const arps = 4
	for range arps {
		out = append(out, Frame{Data: framegen.ARPRequest(framegen.L2{Src: macA0, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, netip.MustParseAddr("198.18.0.1"), splitVIPs[0])})
	}
	write(t, pa, out...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch := NewFrames(64)
	seen, batches, syns := 0, 0, 0
	for seen < arps {
		n, err := pd.ReadBatch(ctx, batch)
		if err != nil {
			t.Fatalf("after %d batches, %d ARP requests: %v", batches, seen, err)
		}
		batches++
		for _, f := range batch[:n] {
			if len(f.Data) > 13 && f.Data[12] == 0x08 && f.Data[13] == 0x06 {
				seen++
			} else {
				syns++
			}
		}
	}
	// The SYN ring held 1024 SYNs, 16 batches' worth: the ARP requests
	// must not wait for it to drain (apEvery is 8).
	const most = 9
	if batches > most {
		t.Errorf("the ARP requests took %d batches (%d SYNs before them), want at most %d", batches, syns, most)
	}
	t.Logf("%d ARP requests read within %d batches, beside %d SYNs", seen, batches, syns)
}

// TestXSKConstructorsFail: a failing step after the socket is open returns
// the error and closes the socket (the cleanup used to run on the nil
// result and panic).
func TestXSKConstructorsFail(t *testing.T) {
	testutil.NeedRoot(t)
	// 3 entries: not a power of two, the kernel refuses the ring.
	if s, err := newSharedXSK(nil, 1, 0, 3); err == nil || s != nil {
		t.Fatalf("newSharedXSK with a 3-entry ring: %v, %v", s, err)
	}
	// No such interface: the bind fails after the UMEM and rings are set.
	if x, err := newXSK(1<<30, 0, true, xskOnePort); err == nil || x != nil {
		t.Fatalf("newXSK on a missing interface: %v, %v", x, err)
	}
}

// floodSYNs writes n bare SYNs to splitVIPs[0]:80 from pa, each from
// another address in 198.19.0.0/16, 64 per write, and waits until d0 in
// l's nsD has taken in what it will: a flood outruns a loaded receiver,
// whose veth then refuses frames (ENOBUFS, dropped: WriteBatch counts
// them neither sent nor failed), and the frames a test sends next must
// not meet a full queue. It fails t unless more than a SYN ring's worth
// went out (the tests overflow that ring).
func floodSYNs(t *testing.T, l pairLab, pa Port, l2 framegen.L2, n int) {
	t.Helper()
	to := netip.AddrPortFrom(splitVIPs[0], 80)
	var out []Frame
	for i := range n {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
		out = append(out, Frame{Data: framegen.TCP(l2, from, to, "S", 1, 0, nil)})
	}
	sent := 0
	for len(out) > 0 {
		k := min(len(out), 64)
		m, err := pa.WriteBatch(out[:k])
		if err != nil {
			t.Fatalf("WriteBatch: %v", err)
		}
		sent += m
		out = out[k:]
	}
	if sent <= xskSYNRing {
		t.Fatalf("%d of %d SYNs went out: not enough to overflow a ring of %d", sent, n, xskSYNRing)
	}
	settled(t, l.nsD, "d0")
}

// settled waits until ifname in ns stops taking in frames: its received
// and dropped counts the same over 20 ms, for at most 5 s.
func settled(t *testing.T, ns netns.NsHandle, ifname string) {
	t.Helper()
	count := func() uint64 {
		var lk netlink.Link
		if err := testutil.Do(ns, func() (err error) { lk, err = netlink.LinkByName(ifname); return err }); err != nil {
			t.Fatal(err)
		}
		s := lk.Attrs().Statistics
		return s.RxPackets + s.RxDropped
	}
	last := count()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		now := count()
		if now == last {
			return
		}
		last = now
	}
	t.Fatalf("%s still receiving after 5 s", ifname)
}

// redirectLane runs o's program on f once with fd in each of queue 0's XSKMAP
// slots (main, SYN, trusted SYN) and names the lane that redirected it,
// or lanePacket when none did (passed); any other action fails t. fd
// need not be bound: a test run redirects nothing.
func redirectLane(t *testing.T, o *xdpObjects, fd int, f []byte) string {
	t.Helper()
	const xdpPass, xdpRedirect = 2, 4
	got := lanePacket
	for _, l := range []struct {
		slot int
		name string
	}{{xskLaneMain, laneMain}, {xskLaneSYN, laneSYN}, {xskLaneTrusted, laneTrust}} {
		if err := o.xsks.Put(xskSlot(0, l.slot), uint32(fd)); err != nil {
			t.Fatal(err)
		}
		ret, _, err := o.prog.Test(f)
		if err != nil {
			t.Fatalf("test run (%d bytes): %v", len(f), err)
		}
		if err := o.xsks.Delete(xskSlot(0, l.slot)); err != nil {
			t.Fatal(err)
		}
		switch ret {
		case xdpRedirect:
			if got != lanePacket {
				t.Fatalf("% x: both slots picked", f)
			}
			got = l.name
		case xdpPass:
		default:
			t.Fatalf("% x: XDP action %d", f, ret)
		}
	}
	return got
}

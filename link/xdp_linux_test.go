package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ebpflink "github.com/cilium/ebpf/link"
	"github.com/drlb/drlb/internal/monotime"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// openXDPIn opens an AF_XDP port on ifname inside ns for vips.
func openXDPIn(t testing.TB, ns netns.NsHandle, ifname string, vips []netip.Addr) *xdpPort {
	t.Helper()
	filter, err := VIPFilter(vips)
	if err != nil {
		t.Fatal(err)
	}
	var p Port
	err = testutil.Do(ns, func() error {
		var err error
		p, err = OpenXDP(ifname, Config{Filter: filter}, vips)
		return err
	})
	if err != nil {
		t.Fatalf("OpenXDP %s: %v", ifname, err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*xdpPort)
}

// xdpAttached reports whether an XDP program is attached to ifname in ns.
func xdpAttached(t testing.TB, ns netns.NsHandle, ifname string) bool {
	t.Helper()
	var attached bool
	err := testutil.Do(ns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		attached = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return attached
}

// TestXDPDetachedFromOutside: XDPAttached says yes while the port's link
// holds the program and no once the link was detached from outside drlb
// (as "bpftool link detach" does); VIP frames then reach the port
// through its AF_PACKET side, and Close still succeeds.
func TestXDPDetachedFromOutside(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	if ok, err := pd.XDPAttached(); !ok || err != nil {
		t.Fatalf("XDPAttached after OpenXDP = %v, %v; want true", ok, err)
	}
	info, err := pd.attach.Info()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ebpflink.NewFromID(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	if err := foreign.Detach(); err != nil {
		t.Fatalf("detach the port's XDP link from outside: %v", err)
	}
	if ok, err := pd.XDPAttached(); ok || err != nil {
		t.Fatalf("XDPAttached after the link was detached = %v, %v; want false", ok, err)
	}
	if xdpAttached(t, l.nsD, "d0") {
		t.Fatal("d0 still has an XDP program after the link was detached")
	}
	before := pd.rxXDP.Load()
	write(t, pa, Frame{Data: udpFrame(-1, vip4, "after-detach")})
	readUntil(t, pd, hasMarker("after-detach"), nil)
	if pd.rxXDP.Load() != before {
		t.Fatal("a VIP frame came through the AF_XDP socket with no XDP program attached")
	}
	// In copy mode the AF_XDP socket still sends: the kernel's transmit
	// path needs no program (a zero-copy driver's does, and the port
	// then sends through AF_PACKET: txOffUntil).
	if pd.txOffUntil.Load() != 0 {
		t.Fatal("a copy-mode port stopped sending through AF_XDP when its program was detached")
	}
	sentXDP := pd.txXDP.Load()
	write(t, pd, Frame{Data: udpFrame(-1, ipA0, "sent-after-detach")})
	readUntil(t, pa, hasMarker("sent-after-detach"), nil)
	if pd.txXDP.Load() == sentXDP {
		t.Error("the frame did not leave through the AF_XDP socket")
	}
	// After a send the kernel refused: AF_PACKET until the retry time,
	// AF_XDP again after it.
	pd.txOffUntil.Store(monotime.Now() + int64(time.Hour))
	sentXDP = pd.txXDP.Load()
	write(t, pd, Frame{Data: udpFrame(-1, ipA0, "sent-through-af-packet")})
	readUntil(t, pa, hasMarker("sent-through-af-packet"), nil)
	if pd.txXDP.Load() != sentXDP {
		t.Error("with AF_XDP transmit off, a frame still went through the AF_XDP socket")
	}
	pd.txOffUntil.Store(monotime.Now() - int64(time.Millisecond))
	write(t, pd, Frame{Data: udpFrame(-1, ipA0, "sent-after-retry")})
	readUntil(t, pa, hasMarker("sent-after-retry"), nil)
	if pd.txXDP.Load() == sentXDP || pd.txOffUntil.Load() != 0 {
		t.Error("past the retry time, the frame did not go through the AF_XDP socket again")
	}
	if err := pd.Close(); err != nil {
		t.Fatalf("Close after the link was detached: %v", err)
	}
	if _, err := pd.XDPAttached(); !errors.Is(err, ErrClosed) {
		t.Fatalf("XDPAttached after Close: %v, want ErrClosed", err)
	}
}

// TestXSKBindFlags: a socket let take zero-copy binds with no mode flag
// (the kernel tries zero-copy, then copy mode); one that may not, with
// XDP_COPY (the kernel never tries). Nothing here has a zero-copy driver:
// TestXSKMode cannot tell the two apart on a veth.
func TestXSKBindFlags(t *testing.T) {
	if got := xskBindFlags(true); got&(unix.XDP_COPY|unix.XDP_ZEROCOPY) != 0 {
		t.Errorf("zero-copy allowed: bind flags %#x, want no mode flag", got)
	}
	if got := xskBindFlags(false); got != unix.XDP_COPY {
		t.Errorf("copy mode forced: bind flags %#x, want XDP_COPY", got)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		mode string // the program's
		want bool
	}{
		{"default, driver mode", Config{}, "driver", true},
		{"-xdp-copy", Config{XDPCopy: true}, "driver", false},
		{"generic mode", Config{}, "generic", false},
	} {
		p := &xdpPort{mode: tc.mode, copyOnly: tc.cfg.XDPCopy}
		if got := p.zeroCopyAllowed(); got != tc.want {
			t.Errorf("%s: zero-copy allowed %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestXSKMode: the AF_XDP sockets are bound in copy mode with
// Config.XDPCopy and with a generic-mode program whatever the driver
// has, and without either on a veth too (it has no zero-copy: the bind
// without a mode flag falls back); a port of each forwards a VIP frame.
func TestXSKMode(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default", Config{}},
		{"copy", Config{XDPCopy: true}},
		{"generic", Config{XDPGeneric: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			filter, err := VIPFilter([]netip.Addr{vip4})
			if err != nil {
				t.Fatal(err)
			}
			cfg := tc.cfg
			cfg.Filter = filter
			var p Port
			if err := testutil.Do(l.nsD, func() (err error) { p, err = OpenXDP("d0", cfg, []netip.Addr{vip4}); return err }); err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			pd := p.(*xdpPort)
			t.Logf("XDP %s, AF_XDP sockets %s", pd.XDPMode(), pd.XSKMode())
			if pd.XSKMode() != "copy" {
				t.Errorf("AF_XDP sockets in %s mode on a veth, want copy", pd.XSKMode())
			}
			write(t, pa, Frame{Data: udpFrame(-1, vip4, "to-the-vip")})
			readUntil(t, pd, hasMarker("to-the-vip"), nil)
			if pd.rxXDP.Load() == 0 {
				t.Error("the VIP frame did not come through the AF_XDP socket")
			}
		})
	}
}

// TestXDPPort: VIP frames arrive through the AF_XDP socket, ARP through
// the AF_PACKET side, other frames not at all; frames written go out
// through the AF_XDP socket; a VIP added by SetVIPs is redirected; Close
// detaches the program.
func TestXDPPort(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	if !xdpAttached(t, l.nsD, "d0") {
		t.Fatal("no XDP program on d0 after OpenXDP")
	}
	t.Logf("XDP attached in %s mode, AF_XDP sockets in %s mode", pd.XDPMode(), pd.XSKMode())
	// Opened without Config.KernelFlows: no kernel flows, said so.
	if err := pd.SetKernelFlowServers(true, 0, nil); !errors.Is(err, ErrNoKernelFlows) {
		t.Errorf("SetKernelFlowServers on a port without kernel flows: %v, want ErrNoKernelFlows", err)
	}
	if pd.objs.flows.flows != nil {
		t.Error("the kernel flows' maps were made without Config.KernelFlows")
	}
	arp := ether(-1, etherTypeARP, arpRequest(ipA0, vip4))
	write(t, pa,
		Frame{Data: udpFrame(-1, ipD0, "not-a-vip")},
		Frame{Data: arp},
		Frame{Data: udpFrame(-1, vip4, "to-the-vip")})
	// The two may come in either order (AF_XDP frames first in a batch),
	// so read until both have arrived.
	var got Frame
	sawARP := false
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs := make([]Frame, 16)
	for !sawARP || got.Data == nil {
		n, err := pd.ReadBatch(ctx, fs)
		if err != nil {
			t.Fatalf("ReadBatch (ARP seen %v, VIP frame seen %v): %v", sawARP, got.Data != nil, err)
		}
		for _, f := range fs[:n] {
			switch {
			case hasMarker("not-a-vip")(f):
				t.Fatalf("a non-VIP frame reached the port: % x", f.Data)
			case hasMarker("to-the-vip")(f):
				got = Frame{Data: bytes.Clone(f.Data), Offload: f.Offload}
			case bytes.Equal(f.Data, arp):
				sawARP = true
			}
		}
	}
	if pd.rxXDP.Load() == 0 {
		t.Fatal("the VIP frame did not come through the AF_XDP socket")
	}
	if got.Offload != (Offload{}) {
		t.Fatalf("offload %+v on an AF_XDP frame", got.Offload)
	}

	write(t, pd, Frame{Data: udpFrame(-1, ipA0, "sent-back")})
	readUntil(t, pa, hasMarker("sent-back"), nil)
	if pd.txXDP.Load() == 0 {
		t.Fatal("the frame did not leave through the AF_XDP socket")
	}

	other := netip.MustParseAddr("198.18.0.101")
	if err := pd.SetVIPs([]netip.Addr{other}); err != nil {
		t.Fatal(err)
	}
	if err := pd.SetFilter(mustFilter(t, other)); err != nil {
		t.Fatal(err)
	}
	before := pd.rxXDP.Load()
	write(t, pa, Frame{Data: udpFrame(-1, other, "new-vip")})
	readUntil(t, pd, hasMarker("new-vip"), nil)
	if pd.rxXDP.Load() == before {
		t.Fatal("the new VIP's frame did not come through the AF_XDP socket")
	}

	if err := pd.Close(); err != nil {
		t.Fatal(err)
	}
	if xdpAttached(t, l.nsD, "d0") {
		t.Fatal("XDP program still attached to d0 after Close")
	}
	if _, err := pd.ReadBatch(ctx, make([]Frame, 4)); err != ErrClosed {
		t.Fatalf("ReadBatch after Close: %v, want ErrClosed", err)
	}
}

func mustFilter(t testing.TB, vips ...netip.Addr) []bpf.RawInstruction {
	t.Helper()
	f, err := VIPFilter(vips)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestXDPPortZeroAlloc: read and write batches through the AF_XDP port
// allocate nothing.
func TestXDPPortZeroAlloc(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	out := []Frame{{Data: udpFrame(-1, vip4, "alloc")}}
	expectZeroAllocRoundTrip(t, pa, pd, out)
}

// TestXDPPortWholeBatch: a batch larger than what one sendto sends in copy
// mode (32 frames) leaves whole with that WriteBatch, not with the next.
func TestXDPPortWholeBatch(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	const n = 64
	out := make([]Frame, n)
	for i := range out {
		out[i].Data = udpFrame(-1, ipA0, fmt.Sprintf("batch-%02d", i))
	}
	before := pd.x.sendtos
	write(t, pd, out...)
	if got := pd.txXDP.Load(); got != n {
		t.Fatalf("%d of %d frames left through the AF_XDP socket", got, n)
	}
	// One system call for the batch where the kernel takes a budget
	// (6.17 on), two (TX_BATCH_SIZE 32) before.
	if want := uint64((n + pd.x.txBudget - 1) / pd.x.txBudget); pd.x.sendtos-before != want {
		t.Errorf("the batch took %d sendto calls, want %d (budget %d)", pd.x.sendtos-before, want, pd.x.txBudget)
	}
	if pd.x.txBudget != xskTxBudget {
		t.Logf("the kernel refused XDP_MAX_TX_SKB_BUDGET (before 6.17): %d frames per sendto", pd.x.txBudget)
	}
	seen := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fs := make([]Frame, 16)
	for len(seen) < n {
		k, err := pa.ReadBatch(ctx, fs)
		if err != nil {
			t.Fatalf("%d of %d frames of one WriteBatch arrived: %v", len(seen), n, err)
		}
		for _, f := range fs[:k] {
			if i := bytes.Index(f.Data, []byte("batch-")); i >= 0 {
				seen[string(f.Data[i:])] = true
			}
		}
	}
}

// TestXDPPortLargeFrame: a VIP frame longer than a UMEM chunk receives
// (xskMaxFrame: 2048 bytes less XDP_PACKET_HEADROOM) is passed by the
// program and read through the AF_PACKET side; redirected, the kernel
// would drop it at the socket (on an MTU over 1778 every full-size VIP
// frame, and TCP connections whose MSS follows the MTU would stall).
func TestXDPPortLargeFrame(t *testing.T) {
	l := newPairLab(t)
	for _, e := range []struct {
		ns   netns.NsHandle
		name string
	}{{l.nsA, "a0"}, {l.nsD, "d0"}} {
		if err := testutil.Do(e.ns, func() error {
			lk, err := netlink.LinkByName(e.name)
			if err != nil {
				return err
			}
			return netlink.LinkSetMTU(lk, 3000)
		}); err != nil {
			t.Fatalf("MTU 3000 on %s: %v", e.name, err)
		}
	}
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	t.Logf("XDP in %s mode, AF_XDP sockets in %s mode", pd.XDPMode(), pd.XSKMode())
	small := udpFrame(-1, vip4, "small-one")
	big := udpFrame(-1, vip4, "large-one-"+strings.Repeat("x", 2400))
	write(t, pa, Frame{Data: small}, Frame{Data: big})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	fs := make([]Frame, 16)
	sawSmall, sawBig := false, false
	for !sawBig {
		n, err := pd.ReadBatch(ctx, fs)
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs[:n] {
			sawSmall = sawSmall || hasMarker("small-one")(f)
			sawBig = sawBig || hasMarker("large-one-")(f)
		}
	}
	if !sawBig {
		s, _ := pd.Stats()
		t.Fatalf("a %d-byte VIP frame never reached the port (small one seen: %v; XDPRxDropped %d)", len(big), sawSmall, s.XDPRxDropped)
	}
}

// TestXDPPortKicksPendingTX: frames a send left in the TX ring (its kick
// gave up: the device was busy) leave when the reader next waits in
// poll, not with the next frame the director forwards: the kernel's
// xsk_poll drives a copy-mode socket's transmit (its pool starts with
// XDP_WAKEUP_TX cached, with or without XDP_USE_NEED_WAKEUP), and the
// reader polls the main socket at least every pollWaitMillis.
func TestXDPPortKicksPendingTX(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4})
	frame := udpFrame(-1, vip4, "left-in-the-ring")
	// What a send whose kick returned at once (EBUSY) leaves behind.
	pd.wmu.Lock()
	x := pd.x
	x.reclaim()
	a := x.free[len(x.free)-1]
	x.free = x.free[:len(x.free)-1]
	copy(x.umem[a:a+xskChunk], frame)
	prod := atomic.LoadUint32(x.tx.producer)
	d := x.tx.desc(prod)
	d.Addr, d.Len, d.Options = a, uint32(len(frame)), 0
	atomic.StoreUint32(x.tx.producer, prod+1)
	pd.wmu.Unlock()
	// The director's reader, with nothing to read, waits in poll.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := pd.ReadBatch(ctx, make([]Frame, 8)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ReadBatch with nothing to read: %v", err)
	}
	readUntil(t, pa, hasMarker("left-in-the-ring"), func(Frame) {})
	if atomic.LoadUint32(x.tx.consumer) != atomic.LoadUint32(x.tx.producer) {
		t.Error("the TX ring still holds the frame")
	}
}

// TestXDPPortCloseUnblocksWriter: Close returns while a WriteBatch waits
// in the AF_PACKET side for room in a send buffer that does not drain (a
// transmit queue that holds its frames: a stalled NIC, PAUSE frames), and
// the writer gets ErrClosed, as Port's Close promises. Close once took the
// write lock first, which the writer held until the AF_PACKET side closed,
// which Close did only under that lock: both waited forever.
func TestXDPPortCloseUnblocksWriter(t *testing.T) {
	l := newPairLab(t)
	var p Port
	if err := testutil.Do(l.nsD, func() (err error) {
		p, err = OpenXDP("d0", Config{Filter: mustFilter(t, vip4), WriteBuffer: 4096}, []netip.Addr{vip4})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pd := p.(*xdpPort)
	h := testutil.NetlinkHandle(t, l.nsD)
	lk, err := h.LinkByName("d0")
	if err != nil {
		t.Fatal(err)
	}
	// 100 bytes/s (2 of these frames a second) after a first burst of
	// 429 (a bucket of 2^26 ticks of 64 ns): the frames wait in the
	// qdisc, charged to the send buffer.
	tbf := &netlink.Tbf{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lk.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT},
		Rate: 100, Limit: 1 << 20, Buffer: 1 << 26}
	if err := h.QdiscAdd(tbf); err != nil {
		t.Fatalf("tbf on d0: %v", err)
	}
	pd.txOffUntil.Store(txOffForever) // every frame through AF_PACKET
	// Far more than the send buffer holds: the writer waits inside.
	out := make([]Frame, 1000)
	for i := range out {
		out[i].Data = udpFrame(-1, ipA0, "stall")
	}
	wrote := make(chan error, 1)
	go func() { _, err := pd.WriteBatch(out); wrote <- err }()
	for pd.wmu.TryLock() { // until the writer is in
		pd.wmu.Unlock()
		select {
		case err := <-wrote:
			t.Fatalf("WriteBatch returned (%v) with the transmit queue stalled", err)
		case <-time.After(time.Millisecond):
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- pd.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		_ = h.QdiscDel(tbf) // the frames leave, the writer and Close with them
		<-closed
		t.Fatal("Close did not return while a WriteBatch waited for room in the AF_PACKET side's send buffer")
	}
	if err := <-wrote; !errors.Is(err, ErrClosed) {
		t.Errorf("the waiting WriteBatch returned %v, want ErrClosed", err)
	}
}

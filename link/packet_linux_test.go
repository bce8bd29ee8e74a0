package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

var (
	macA0 = net.HardwareAddr(testSrc) // client side of the pair
	macD0 = net.HardwareAddr(testDst) // director side
	macD1 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd1}
	macB0 = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb0}
	ipA0  = netip.MustParseAddr("198.18.0.1")
	ipD0  = netip.MustParseAddr("198.18.0.2")
)

// pairLab is two namespaces joined by a veth: a0 (198.18.0.1) in nsA,
// d0 (198.18.0.2) in nsD; offloads at the veth defaults.
type pairLab struct{ nsA, nsD netns.NsHandle }

func newPairLab(t testing.TB) pairLab {
	t.Helper()
	testutil.NeedRoot(t)
	l := pairLab{nsA: testutil.NewNS(t), nsD: testutil.NewNS(t)}
	testutil.Veth(t,
		testutil.End{NS: l.nsA, Name: "a0", MAC: macA0, Addr: netip.PrefixFrom(ipA0, 24)},
		testutil.End{NS: l.nsD, Name: "d0", MAC: macD0, Addr: netip.PrefixFrom(ipD0, 24)})
	return l
}

// openIn opens a Port on ifname inside ns, closed at cleanup.
func openIn(t testing.TB, ns netns.NsHandle, ifname string, cfg Config) Port {
	t.Helper()
	var p Port
	err := testutil.Do(ns, func() error {
		var err error
		p, err = Open(ifname, cfg)
		return err
	})
	if err != nil {
		t.Fatalf("Open %s: %v", ifname, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// udpFrame is a UDP frame a0 -> d0 addressed to dst carrying marker.
func udpFrame(tci int, dst netip.Addr, marker string) []byte {
	udp := make([]byte, 8, 8+len(marker))
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(marker)))
	udp = append(udp, marker...)
	return ether(tci, etherTypeIPv4, ipv4(17, ipA0, dst, udp))
}

func hasMarker(m string) func(Frame) bool {
	return func(f Frame) bool { return bytes.Contains(f.Data, []byte(m)) }
}

// readUntil reads p until a frame matches, calling seen for the frames
// before it, and returns a copy of the match. The timeout only guards
// against a hang.
func readUntil(t testing.TB, p Port, match func(Frame) bool, seen func(Frame)) Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs := make([]Frame, 16)
	for {
		n, err := p.ReadBatch(ctx, fs)
		if err != nil {
			t.Fatalf("ReadBatch before the expected frame arrived: %v", err)
		}
		for _, f := range fs[:n] {
			if match(f) {
				return Frame{Data: bytes.Clone(f.Data), Offload: f.Offload}
			}
			if seen != nil {
				seen(f)
			}
		}
	}
}

// readN reads p until n frames matched and returns copies of them.
func readN(t testing.TB, p Port, match func(Frame) bool, n int) []Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []Frame
	fs := make([]Frame, 16)
	for len(got) < n {
		m, err := p.ReadBatch(ctx, fs)
		if err != nil {
			t.Fatalf("ReadBatch after %d of %d frames: %v", len(got), n, err)
		}
		for _, f := range fs[:m] {
			if match(f) {
				got = append(got, Frame{Data: bytes.Clone(f.Data), Offload: f.Offload})
			}
		}
	}
	return got
}

func write(t testing.TB, p Port, frames ...Frame) {
	t.Helper()
	if n, err := p.WriteBatch(frames); n != len(frames) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(frames))
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open("drlb-nosuch0", Config{})
	if !errors.Is(err, ErrNoInterface) || err.Error() != "link: drlb-nosuch0: no such network interface" {
		t.Fatalf("missing interface: %v", err)
	}
	_, err = Open("lo", Config{BatchSize: MaxBatchSize + 1})
	if !errors.Is(err, ErrBadConfig) || err.Error() != "link: lo: Config.BatchSize 1025: must be 0 (default 64) to 1024" {
		t.Fatalf("bad batch size: %v", err)
	}
	if _, err = Open("lo", Config{ReadBuffer: -1}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("negative buffer: %v", err)
	}
}

func TestPortReadsMetadata(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{})

	t.Run("plain frame arrives byte-identical", func(t *testing.T) {
		f := Frame{Data: udpFrame(-1, vip4, "plain")}
		write(t, pa, f)
		got := readUntil(t, pd, hasMarker("plain"), nil)
		if !bytes.Equal(got.Data, f.Data) || got.Offload != (Offload{}) {
			t.Fatalf("got % x %+v\nwant % x", got.Data, got.Offload, f.Data)
		}
	})
	t.Run("partial checksum crosses the veth", func(t *testing.T) {
		f := Frame{Data: udpFrame(-1, vip4, "partial"), Offload: Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 6}}
		write(t, pa, f)
		got := readUntil(t, pd, hasMarker("partial"), nil)
		if got.Offload != f.Offload {
			t.Fatalf("offload %+v, want %+v", got.Offload, f.Offload)
		}
	})
	t.Run("local UDP sender leaves the checksum to offload", func(t *testing.T) {
		// ARCHITECTURE.md#partial-checksums-and-virtio-net-headers: TP_STATUS_CSUMNOTREADY.
		err := testutil.Do(l.nsA, func() error {
			c, err := net.Dial("udp4", "198.18.0.2:9")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("kernel-udp"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got := readUntil(t, pd, hasMarker("kernel-udp"), nil)
		t.Logf("kernel UDP frame: %d bytes, offload %+v", len(got.Data), got.Offload)
		want := Offload{CsumPartial: true, CsumStart: 14 + 20, CsumOffset: 6}
		if got.Offload != want {
			t.Fatalf("offload %+v, want %+v", got.Offload, want)
		}
	})
}

func TestPortIgnoresOwnFrames(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
	}{{"default", Config{}}, {"qdisc bypass", Config{QdiscBypass: true}}, {"batch of 1", Config{BatchSize: 1}},
		{"outside the poller", Config{outsidePoller: true}},
		// The group's hook sees outgoing frames unless the group says
		// otherwise; frames leave through the send-only socket, outside
		// the group.
		{"in a fanout group", Config{Fanout: &Fanout{New: true}}},
		{"in a client-hash fanout group", Config{Fanout: &Fanout{New: true, Hash: &ClientHash{}}}},
		// Kernels before 6.2 ignore the group flag: the socket filter's
		// outgoing test (outgoingPrefix) must do the job alone.
		{"in a fanout group without the group flag", Config{Fanout: &Fanout{New: true, noIgnoreOutgoing: true}}}} {
		cfg := c.cfg
		t.Run(c.name, func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			pd := openIn(t, l.nsD, "d0", cfg)
			write(t, pd, Frame{Data: udpFrame(-1, vip4, "outbound")})
			readUntil(t, pa, hasMarker("outbound"), nil) // it was sent
			write(t, pa, Frame{Data: udpFrame(-1, vip4, "inbound")})
			readUntil(t, pd, hasMarker("inbound"), func(f Frame) {
				if hasMarker("outbound")(f) {
					t.Fatal("the port read its own transmission")
				}
			})
		})
	}
}

func TestPortVLAN(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{})

	check := func(t *testing.T, from, to Port, f Frame, marker string) {
		t.Helper()
		write(t, from, f)
		got := readUntil(t, to, hasMarker(marker), nil)
		if !bytes.Equal(got.Data, f.Data) {
			t.Fatalf("tagged frame changed:\n got % x\nwant % x", got.Data, f.Data)
		}
		if got.Offload != f.Offload {
			t.Fatalf("offload %+v, want %+v", got.Offload, f.Offload)
		}
	}
	t.Run("tag stripped by the kernel is re-inserted", func(t *testing.T) {
		check(t, pa, pd, Frame{Data: udpFrame(0x6064, vip4, "tag100")}, "tag100")
	})
	t.Run("checksum offsets follow the re-inserted tag", func(t *testing.T) {
		f := Frame{Data: udpFrame(0x0064, vip4, "tagcsum"), Offload: Offload{CsumPartial: true, CsumStart: 38, CsumOffset: 6}}
		check(t, pa, pd, f, "tagcsum")
	})
	t.Run("written tagged frame leaves tagged", func(t *testing.T) {
		check(t, pd, pa, Frame{Data: udpFrame(0x0fff, vip4, "tagout")}, "tagout")
	})
	t.Run("with a VLAN device on the interface", func(t *testing.T) {
		h := testutil.NetlinkHandle(t, l.nsD)
		d0, err := h.LinkByName("d0")
		if err != nil {
			t.Fatal(err)
		}
		la := netlink.NewLinkAttrs()
		la.Name, la.ParentIndex = "d0.100", d0.Attrs().Index
		vl := &netlink.Vlan{LinkAttrs: la, VlanId: 100}
		if err := h.LinkAdd(vl); errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("this kernel has no 802.1Q devices: %v", err)
		} else if err != nil {
			t.Fatalf("add vlan: %v", err)
		}
		if err := h.LinkSetUp(vl); err != nil {
			t.Fatal(err)
		}
		check(t, pa, pd, Frame{Data: udpFrame(100, vip4, "vlandev")}, "vlandev")
	})
}

func TestPortFilter(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	filter, err := VIPFilter([]netip.Addr{vip4})
	if err != nil {
		t.Fatal(err)
	}
	pd := openIn(t, l.nsD, "d0", Config{Filter: filter})
	arp := ether(-1, etherTypeARP, arpRequest(ipA0, vip4))
	write(t, pa,
		Frame{Data: udpFrame(-1, ipD0, "not-a-vip")},
		Frame{Data: udpFrame(7, netip.MustParseAddr("198.18.0.99"), "tagged-not-a-vip")},
		Frame{Data: arp},
		Frame{Data: udpFrame(-1, vip4, "to-the-vip")})
	sawARP := false
	readUntil(t, pd, hasMarker("to-the-vip"), func(f Frame) {
		if hasMarker("not-a-vip")(f) {
			t.Fatalf("the filter let a non-VIP frame through: % x", f.Data)
		}
		sawARP = sawARP || bytes.Equal(f.Data, arp)
	})
	if !sawARP {
		t.Fatal("the ARP request written before the VIP frame did not arrive")
	}
}

// TestPortSetFilter: a running port admits a VIP added to its filter, and
// no longer the one removed, without being reopened.
func TestPortSetFilter(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("outside the poller %v", raw), func(t *testing.T) { testPortSetFilter(t, raw) })
	}
}

func testPortSetFilter(t *testing.T, raw bool) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	vipB := netip.MustParseAddr("198.18.0.101")
	only := func(vips ...netip.Addr) []bpf.RawInstruction {
		f, err := VIPFilter(vips)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	pd := openIn(t, l.nsD, "d0", Config{Filter: only(vip4), outsidePoller: raw})
	write(t, pa, Frame{Data: udpFrame(-1, vipB, "b-before")}, Frame{Data: udpFrame(-1, vip4, "a-before")})
	readUntil(t, pd, hasMarker("a-before"), func(f Frame) {
		if hasMarker("b-before")(f) {
			t.Fatal("a VIP not yet in the filter got through")
		}
	})
	fs, ok := pd.(FilterSetter)
	if !ok {
		t.Fatal("an AF_PACKET port is not a FilterSetter")
	}
	if err := fs.SetFilter(only(vipB)); err != nil {
		t.Fatal(err)
	}
	write(t, pa, Frame{Data: udpFrame(-1, vip4, "a-after")}, Frame{Data: udpFrame(-1, vipB, "b-after")})
	readUntil(t, pd, hasMarker("b-after"), func(f Frame) {
		if hasMarker("a-after")(f) {
			t.Fatal("a VIP removed from the filter still got through")
		}
	})
	if err := fs.SetFilter(nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("SetFilter(nil) = %v, want ErrBadConfig", err)
	}
	pd.Close()
	if err := fs.SetFilter(only(vip4)); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetFilter after Close = %v, want ErrClosed", err)
	}
}

// TestPortCloseAndContext, for a socket in the Go runtime's poller and
// one outside it (rawPacketConn, whose ReadBatch waits in poll(2)).
func TestPortCloseAndContext(t *testing.T) {
	for _, raw := range []bool{false, true} {
		t.Run(fmt.Sprintf("outside the poller %v", raw), func(t *testing.T) { testPortCloseAndContext(t, raw) })
	}
}

func testPortCloseAndContext(t *testing.T, raw bool) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{outsidePoller: raw})
	fs := make([]Frame, 4)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := pd.ReadBatch(ctx, fs); err != nil {
				errc <- err
				return
			}
		}
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadBatch after cancel: %v", err)
	}
	// A new context after a cancelled one must not inherit its deadline.
	write(t, pa, Frame{Data: udpFrame(-1, vip4, "after-cancel")})
	readUntil(t, pd, hasMarker("after-cancel"), nil)

	go func() {
		for {
			if _, err := pd.ReadBatch(context.Background(), fs); err != nil {
				errc <- err
				return
			}
		}
	}()
	if err := pd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	if _, err := pd.WriteBatch(fs[:1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
}

func TestPortLinkFlap(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{})
	h := testutil.NetlinkHandle(t, l.nsD)
	d0, err := h.LinkByName("d0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(d0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = pd.ReadBatch(ctx, make([]Frame, 4))
	if !errors.Is(err, ErrLinkDown) {
		t.Fatalf("ReadBatch on a downed interface: %v, want ErrLinkDown", err)
	}
	t.Logf("interface down: %v", err)
	if _, err := pd.WriteBatch([]Frame{{Data: udpFrame(-1, vip4, "while-down")}}); !errors.Is(err, ErrLinkDown) {
		t.Fatalf("WriteBatch on a downed interface: %v, want ErrLinkDown", err)
	}
	if err := h.LinkSetUp(d0); err != nil {
		t.Fatal(err)
	}
	testutil.WaitOperUp(t, h, "d0")
	testutil.WaitOperUp(t, testutil.NetlinkHandle(t, l.nsA), "a0")
	write(t, pa, Frame{Data: udpFrame(-1, vip4, "after-flap")})
	readUntil(t, pd, hasMarker("after-flap"), nil)
}

func TestPortWriteBadFrames(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd := openIn(t, l.nsD, "d0", Config{})
	frames := []Frame{
		{Data: []byte{1, 2, 3}},
		{Data: udpFrame(-1, vip4, "good-1")},
		// NEEDS_CSUM pointing past the frame: the kernel refuses it.
		{Data: udpFrame(-1, vip4, "refused"), Offload: Offload{CsumPartial: true, CsumStart: 4000, CsumOffset: 6}},
		{Data: udpFrame(-1, vip4, "good-2")},
	}
	n, err := pd.WriteBatch(frames)
	t.Logf("WriteBatch = %d, %v", n, err)
	if n != 2 || !errors.Is(err, ErrBadFrame) {
		t.Fatalf("WriteBatch = %d, %v; want 2 frames sent and ErrBadFrame first", n, err)
	}
	readUntil(t, pa, hasMarker("good-2"), func(f Frame) {
		if hasMarker("refused")(f) {
			t.Fatal("a refused frame arrived")
		}
	})
}

func TestPortFanout(t *testing.T) {
	const flows = 64
	out := make([]Frame, flows)
	for i := range out {
		out[i].Data = udpFrame(-1, vip4, fmt.Sprintf("fanout-%02d", i))
		binary.BigEndian.PutUint16(out[i].Data[14+20:], uint16(30000+i)) // one flow each
	}
	got := fanoutSplit(t, Config{Fanout: &Fanout{Group: 7}}, out)
	counts := make([]int, 2)
	for _, m := range got {
		counts[m]++
	}
	t.Logf("fanout split %d flows as %v", flows, counts)
}

// TestPortFanoutByClient: with ClientHash the kernel sorts frames by
// client as ClientHash.Index says: a client's flows, its fragments and an
// ICMP error about a packet to it all reach the same member.
func TestPortFanoutByClient(t *testing.T) {
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	router := netip.MustParseAddr("198.18.0.1")
	var out []Frame
	var clients []netip.Addr
	add := func(c netip.Addr, frame []byte) {
		out = append(out, Frame{Data: append(frame, fmt.Sprintf("fanout-%03d", len(out))...)})
		clients = append(clients, c)
	}
	for i := range 24 {
		c := netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)})
		add(c, framegen.TCP(l2, netip.AddrPortFrom(c, uint16(40000+i)), netip.AddrPortFrom(vip4, 80), "S", 1, 0, nil))
		add(c, framegen.TCP(l2, netip.AddrPortFrom(c, uint16(50000+i)), netip.AddrPortFrom(vip4, 80), "S", 1, 0, nil))
		reply := framegen.TCP(l2, netip.AddrPortFrom(vip4, 80), netip.AddrPortFrom(c, uint16(40000+i)), "SA", 1, 2, nil)
		add(c, framegen.ICMPFragNeeded(l2, router, vip4, framegen.IPPacket(reply), 1400))
		for _, fr := range framegen.IPv4Fragments(l2, netip.AddrPortFrom(c, 5000), netip.AddrPortFrom(vip4, 53), make([]byte, 2000), 1000, uint16(i)) {
			add(c, fr)
		}
	}
	h := ClientHash{}
	got := fanoutSplit(t, Config{Fanout: &Fanout{New: true, Hash: &h}}, out)
	counts := make([]int, 2)
	for i, m := range got {
		counts[m]++
		if want := h.Index(clients[i], 2); m != want {
			t.Errorf("frame %d (client %v) reached member %d, want %d", i, clients[i], m, want)
		}
	}
	t.Logf("client hash split %d frames of 24 clients as %v", len(out), counts)
}

// fanoutSplit sends out (each frame ending in a unique marker) to a
// two-member fanout group made with cfg and the VIP filter, and returns
// which member read each frame.
func fanoutSplit(t *testing.T, cfg Config, out []Frame) []int {
	t.Helper()
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	filter, err := VIPFilter([]netip.Addr{vip4})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Filter = filter
	first := openIn(t, l.nsD, "d0", cfg)
	if cfg.Fanout.New {
		id, err := first.(FanoutMember).FanoutGroup()
		if err != nil {
			t.Fatalf("FanoutGroup of a new group: %v", err)
		}
		fo := *cfg.Fanout
		fo.New, fo.Group = false, id
		cfg.Fanout = &fo
	}
	return whoRead(t, pa, []Port{first, openIn(t, l.nsD, "d0", cfg)}, out)
}

// whoRead writes out (each frame ending in a unique marker "fanout-N")
// through pa and returns which of members read each frame.
func whoRead(t *testing.T, pa Port, members []Port, out []Frame) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type arrival struct{ frame, member int }
	arrived := make(chan arrival, 2*len(out))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs := make([]Frame, 16)
			for {
				n, err := m.ReadBatch(ctx, fs)
				if err != nil {
					return
				}
				for _, f := range fs[:n] {
					d := f.Data
					if k := bytes.LastIndex(d, []byte("fanout-")); k >= 0 {
						var j int
						if _, err := fmt.Sscanf(string(d[k+len("fanout-"):]), "%d", &j); err == nil {
							arrived <- arrival{j, i}
						}
					}
				}
			}
		}()
	}
	write(t, pa, out...)
	got := make([]int, len(out))
	for i := range got {
		got[i] = -1
	}
	for range out {
		select {
		case a := <-arrived:
			if a.frame >= len(got) || got[a.frame] >= 0 {
				t.Fatalf("frame %d read twice or unknown", a.frame)
			}
			got[a.frame] = a.member
		case <-ctx.Done():
			t.Fatalf("not every frame reached the fanout group: %v", got)
		}
	}
	cancel()
	wg.Wait()
	return got
}

// newForwardLab adds to a pairLab a second veth d1 (in nsD) <-> b0 (in a
// third namespace), where d1 segments every super-frame in software: its
// GSO size limit is below any super-frame.
func newForwardLab(t testing.TB) (pairLab, netns.NsHandle) {
	t.Helper()
	l := newPairLab(t)
	nsB := testutil.NewNS(t)
	testutil.Veth(t, testutil.End{NS: l.nsD, Name: "d1", MAC: macD1}, testutil.End{NS: nsB, Name: "b0", MAC: macB0})
	hd := testutil.NetlinkHandle(t, l.nsD)
	d1, err := hd.LinkByName("d1")
	if err == nil {
		err = hd.LinkSetGSOMaxSize(d1, 1514)
	}
	if err != nil {
		t.Fatalf("d1 gso_max_size: %v", err)
	}
	return l, nsB
}

// tcpSuperFrame builds a TCP/IPv4 super-frame a0 -> d0 with segs segments
// of mss payload bytes, its checksum left to offload, optionally tagged.
func tcpSuperFrame(tci int, segs, mss int) Frame {
	payload := bytes.Repeat([]byte("s"), segs*mss)
	tcp := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 7777)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12], tcp[13] = 5<<4, 0x18 // data offset 5, PSH|ACK
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	tcp = append(tcp, payload...)
	ip := ipv4(6, ipA0, vip4, tcp)
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	l2 := 14
	if tci >= 0 {
		l2 = 18
	}
	return Frame{
		Data: ether(tci, etherTypeIPv4, ip),
		Offload: Offload{CsumPartial: true, CsumStart: uint16(l2 + 20), CsumOffset: 16,
			GSOType: GSOTCPv4, GSOSize: uint16(mss), HdrLen: uint16(l2 + 40)},
	}
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// TestPortVLANSuperFrame: a tagged super-frame is read with its tag and
// offsets that count the tag, and written out it is segmented into tagged
// frames.
func TestPortVLANSuperFrame(t *testing.T) {
	l, nsB := newForwardLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	pd0 := openIn(t, l.nsD, "d0", Config{})
	pd1 := openIn(t, l.nsD, "d1", Config{})
	pb0 := openIn(t, nsB, "b0", Config{})
	const segs, mss = 3, 1000
	sent := tcpSuperFrame(0x0064, segs, mss)
	write(t, pa, sent)
	isOurs := func(f Frame) bool {
		return len(f.Data) > 18+20+4 && binary.BigEndian.Uint16(f.Data[12:]) == etherTypeVLAN &&
			binary.BigEndian.Uint16(f.Data[18+20+2:]) == 7777
	}
	got := readUntil(t, pd0, isOurs, nil)
	// HdrLen is the kernel's linear length (a hint): here the whole frame.
	want := sent.Offload
	want.HdrLen = got.Offload.HdrLen
	if !bytes.Equal(got.Data, sent.Data) || got.Offload != want {
		t.Fatalf("tagged super-frame read as %d bytes %+v, want %d bytes %+v", len(got.Data), got.Offload, len(sent.Data), sent.Offload)
	}
	copy(got.Data[0:6], macB0)
	copy(got.Data[6:12], macD1)
	write(t, pd1, got)
	for i, seg := range readN(t, pb0, isOurs, segs) {
		if len(seg.Data) != 18+20+20+mss || seg.Offload.IsSuperFrame() {
			t.Fatalf("segment %d: %d bytes, offload %+v; want %d bytes, no GSO", i, len(seg.Data), seg.Offload, 18+20+20+mss)
		}
		if tci := binary.BigEndian.Uint16(seg.Data[14:]); tci != 0x0064 {
			t.Fatalf("segment %d: TCI %#x, want 0x0064", i, tci)
		}
	}
}

// tcpPayload returns the TCP payload length of an untagged IPv4 frame sent
// to port.
func tcpPayload(f []byte, port int) (int, bool) {
	if len(f) < 14+20+20 || binary.BigEndian.Uint16(f[12:]) != etherTypeIPv4 || f[14+9] != 6 {
		return 0, false
	}
	ihl := int(f[14]&0xf) * 4
	tcp := f[14+ihl:]
	if len(tcp) < 20 || int(binary.BigEndian.Uint16(tcp[2:])) != port {
		return 0, false
	}
	tot := int(binary.BigEndian.Uint16(f[16:]))
	return min(tot, len(f)-14) - ihl - int(tcp[12]>>4)*4, true
}

// TestPortSuperFrames is ARCHITECTURE.md#super-frames: bulk TCP crosses
// the socket as super-frames with GSO info, and written back with that info
// they leave segmented.
func TestPortSuperFrames(t *testing.T) {
	l, nsB := newForwardLab(t)
	filter, err := VIPFilter([]netip.Addr{ipD0})
	if err != nil {
		t.Fatal(err)
	}
	pd0 := openIn(t, l.nsD, "d0", Config{Filter: filter})
	pd1 := openIn(t, l.nsD, "d1", Config{})
	pb0 := openIn(t, nsB, "b0", Config{Filter: filter})

	var ln net.Listener
	if err := testutil.Do(l.nsD, func() (err error) { ln, err = net.Listen("tcp4", "198.18.0.2:0"); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	var conn net.Conn
	if err := testutil.Do(l.nsA, func() (err error) { conn, err = net.Dial("tcp4", ln.Addr().String()); return }); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		buf := make([]byte, 256<<10)
		for {
			select {
			case <-stop:
				return
			default:
			}
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write(buf); err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
				return
			}
		}
	}()
	t.Cleanup(func() { close(stop); conn.Close(); sender.Wait() })

	// Collect data frames of the stream as the director's socket sees them.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []Frame
	supers, largest := 0, 0
	fs := make([]Frame, 64)
	for len(got) < 4000 && !(supers >= 16 && len(got) >= 64) {
		n, err := pd0.ReadBatch(ctx, fs)
		if err != nil {
			t.Fatalf("ReadBatch after %d frames (%d super-frames): %v", len(got), supers, err)
		}
		for _, f := range fs[:n] {
			if pl, ok := tcpPayload(f.Data, port); !ok || pl == 0 {
				continue
			}
			got = append(got, Frame{Data: bytes.Clone(f.Data), Offload: f.Offload})
			if len(f.Data) <= 1514 {
				continue
			}
			supers++
			largest = max(largest, len(f.Data))
			o := f.Offload
			if o.GSOType&^GSOECN != GSOTCPv4 || o.GSOSize == 0 || !o.CsumPartial || o.CsumStart != 34 || o.CsumOffset != 16 {
				t.Fatalf("super-frame of %d bytes with offload %+v, want TCPv4 GSO and a partial checksum at 34+16", len(f.Data), o)
			}
			if supers == 1 {
				t.Logf("first super-frame: %d bytes, offload %+v", len(f.Data), o)
			}
		}
	}
	if supers == 0 {
		t.Fatalf("%d TCP data frames and none larger than 1514 bytes: no super-frames on veth", len(got))
	}

	// Forward them out of d1 (MACs rewritten, IP packet untouched).
	want := 0
	for _, f := range got {
		copy(f.Data[0:6], macB0)
		copy(f.Data[6:12], macD1)
		pl, _ := tcpPayload(f.Data, port)
		want += pl
	}
	// In pieces of about 64 KB, each read before the next is written:
	// thousands of frames at once overflowed b0's receive buffer on a
	// busy machine, and the bytes it dropped never came.
	segs, bytesIn, sent := 0, 0, 0
	for i := 0; i < len(got); {
		j, size := i, 0
		for j < len(got) && (j == i || size+len(got[j].Data) <= 64<<10) {
			pl, _ := tcpPayload(got[j].Data, port)
			size += len(got[j].Data)
			sent += pl
			j++
		}
		write(t, pd1, got[i:j]...)
		i = j
		for bytesIn < sent {
			n, err := pb0.ReadBatch(ctx, fs)
			if err != nil {
				t.Fatalf("b0 got %d of %d payload bytes in %d segments: %v", bytesIn, want, segs, err)
			}
			for _, f := range fs[:n] {
				pl, ok := tcpPayload(f.Data, port)
				if !ok {
					continue
				}
				if len(f.Data) > 1514 || f.Offload.IsSuperFrame() {
					t.Fatalf("b0 got a %d-byte frame, offload %+v: not segmented", len(f.Data), f.Offload)
				}
				segs++
				bytesIn += pl
			}
		}
	}
	t.Logf("read %d data frames, %d super-frames (largest %d bytes); written out of d1 they arrived as %d segments, %d payload bytes",
		len(got), supers, largest, segs, bytesIn)
	if bytesIn != want {
		t.Fatalf("b0 got %d payload bytes, want %d", bytesIn, want)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// expectZeroAllocRoundTrip fails t unless a round trip allocates nothing:
// pa writes out, the port under test pd reads the batch and writes it
// back, pa reads it (after a warm-up of 10 round trips).
func expectZeroAllocRoundTrip(t *testing.T, pa, pd Port, out []Frame) {
	t.Helper()
	in, back := make([]Frame, 8), make([]Frame, 8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	step := func() {
		if _, err := pa.WriteBatch(out); err != nil {
			t.Fatal(err)
		}
		n, err := pd.ReadBatch(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pd.WriteBatch(in[:n]); err != nil {
			t.Fatal(err)
		}
		if _, err := pa.ReadBatch(ctx, back); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		step()
	}
	if allocs := testing.AllocsPerRun(500, step); allocs != 0 {
		t.Fatalf("%v allocations per read+write batch, want 0", allocs)
	}
}

// TestPortZeroAlloc proves the forwarding steady state allocates nothing:
// read a batch, write it back, with a cancellable context.
func TestPortZeroAlloc(t *testing.T) {
	l := newPairLab(t)
	filter, err := VIPFilter([]netip.Addr{vip4})
	if err != nil {
		t.Fatal(err)
	}
	pa := openIn(t, l.nsA, "a0", Config{Filter: filter})
	pd := openIn(t, l.nsD, "d0", Config{Filter: filter})
	out := []Frame{{Data: udpFrame(-1, vip4, "alloc"), Offload: Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 6}}}
	expectZeroAllocRoundTrip(t, pa, pd, out)
}

// BenchmarkAFPacketPingPong: a0 sends batches of 64-byte frames, the port on
// d0 reads and writes them back, a0 reads them. frames/s counts frames
// through the director port (each read once and written once).
func BenchmarkAFPacketPingPong(b *testing.B) {
	for _, cfg := range []Config{{}, {QdiscBypass: true}} {
		b.Run(fmt.Sprintf("bypass=%v", cfg.QdiscBypass), func(b *testing.B) {
			l := newPairLab(b)
			filter, err := VIPFilter([]netip.Addr{vip4})
			if err != nil {
				b.Fatal(err)
			}
			cfg.Filter = filter
			pa := openIn(b, l.nsA, "a0", Config{Filter: filter})
			pd := openIn(b, l.nsD, "d0", cfg)
			const batch = 64
			out := make([]Frame, batch)
			for i := range out {
				out[i].Data = udpFrame(-1, vip4, "0123456789abcdef12")[:64]
			}
			in, back := make([]Frame, batch), make([]Frame, batch)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := pa.WriteBatch(out); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < batch; {
					n, err := pd.ReadBatch(ctx, in)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := pd.WriteBatch(in[:n]); err != nil {
						b.Fatal(err)
					}
					got += n
				}
				for got := 0; got < batch; {
					n, err := pa.ReadBatch(ctx, back)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// BenchmarkAFPacketThroughput: a generator on a0 writes 64-byte frames as
// fast as it can; the port on d0 forwards (reads a batch, writes it back).
// frames/s is what the director port moved; an op is one batch.
func BenchmarkAFPacketThroughput(b *testing.B) {
	for _, cfg := range []Config{{}, {QdiscBypass: true}} {
		b.Run(fmt.Sprintf("bypass=%v", cfg.QdiscBypass), func(b *testing.B) {
			l := newPairLab(b)
			filter, err := VIPFilter([]netip.Addr{vip4})
			if err != nil {
				b.Fatal(err)
			}
			cfg.Filter = filter
			pa := openIn(b, l.nsA, "a0", Config{QdiscBypass: true})
			pd := openIn(b, l.nsD, "d0", cfg)
			out := make([]Frame, 64)
			for i := range out {
				out[i].Data = udpFrame(-1, vip4, "0123456789abcdef12")[:64]
			}
			ctx, cancel := context.WithCancel(context.Background())
			var gen sync.WaitGroup
			gen.Add(1)
			go func() {
				defer gen.Done()
				for ctx.Err() == nil {
					if _, err := pa.WriteBatch(out); err != nil {
						return
					}
				}
			}()
			defer func() { cancel(); gen.Wait() }()
			in := make([]Frame, DefaultBatchSize)
			total := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				n, err := pd.ReadBatch(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := pd.WriteBatch(in[:n]); err != nil {
					b.Fatal(err)
				}
				total += n
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(total)/float64(b.N), "frames/batch")
		})
	}
}

// TestOpenNotPermitted drops CAP_NET_RAW on a throw-away thread and checks
// that Open says what failed and maps EPERM to ErrNotPermitted.
func TestOpenNotPermitted(t *testing.T) {
	l := newPairLab(t)
	err := testutil.Do(l.nsD, func() error {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return err
		}
		_, err := Open("d0", Config{})
		if err == nil {
			return errors.New("Open without CAP_NET_RAW succeeded")
		}
		if !errors.Is(err, ErrNotPermitted) || !errors.Is(err, unix.EPERM) || err.Error() != "link: d0: socket: operation not permitted" {
			return fmt.Errorf("Open without CAP_NET_RAW: %q, want ErrNotPermitted naming the socket call", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadFilter(t *testing.T) {
	l := newPairLab(t)
	// A jump past the end: the kernel's checker refuses the program.
	bad := []bpf.RawInstruction{{Op: 0x05, K: 10}, {Op: 0x06, K: 0}}
	err := testutil.Do(l.nsD, func() error {
		p, err := Open("d0", Config{Filter: bad})
		if err == nil {
			p.Close()
		}
		return err
	})
	if !errors.Is(err, unix.EINVAL) || err.Error() != "link: d0: setsockopt SO_ATTACH_FILTER: invalid argument" {
		t.Fatalf("Open with a broken filter: %v", err)
	}
	p := openIn(t, l.nsD, "d0", Config{ReadBuffer: 1 << 20, WriteBuffer: 1 << 20, BatchSize: MaxBatchSize})
	st, err := p.(StatsReporter).Stats()
	if err != nil || st != (Stats{}) {
		t.Fatalf("Stats of a fresh port = %+v, %v", st, err)
	}
}

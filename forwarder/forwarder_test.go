package forwarder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/scheduler"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	clientMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0x01, 0x01}
	directorMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	rsMACs      = []net.HardwareAddr{
		{0x02, 0, 0, 0, 0, 0x11},
		{0x02, 0, 0, 0, 0, 0x12},
		{0x02, 0, 0, 0, 0, 0x13},
	}
	vip    = netip.MustParseAddr("198.18.0.100")
	vip6   = netip.MustParseAddr("2001:2::100")
	toDir  = framegen.L2{Src: clientMAC, Dst: directorMAC}
	t0     = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	second = int64(time.Second)
)

func client(i int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), port)
}

// testConfig returns one TCP service on VIP:80 (and UDP VIP:53, IPv6
// VIP6:80) with n real servers of weight 1 and static MACs.
func testConfig(sched string, n int) *config.Config {
	reals := func(v6 bool) []config.RealServer {
		var rs []config.RealServer
		for i := 0; i < n; i++ {
			a := netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)})
			if v6 {
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(0x11 + i)})
			}
			rs = append(rs, config.RealServer{Address: a, Weight: 1, MAC: rsMACs[i]})
		}
		return rs
	}
	return &config.Config{
		Timeouts: config.DefaultTimeouts,
		MaxConns: 1024,
		Services: []config.Service{
			{VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: sched, RealServers: reals(false)},
			{VIP: vip, Port: 53, Protocol: config.UDP, Scheduler: sched, RealServers: reals(false)},
			{VIP: vip6, Port: 80, Protocol: config.TCP, Scheduler: sched, RealServers: reals(true)},
		},
	}
}

func newForwarder(t testing.TB, cfg *config.Config, opts Options) *Forwarder {
	t.Helper()
	f, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// process runs a copy of frame and checks the forwarding invariants.
func process(t *testing.T, f *Forwarder, frame []byte, now int64) (Result, []byte) {
	t.Helper()
	out := append([]byte(nil), frame...)
	res := f.Process(out, &Meta{Time: now})
	if res.Verdict == Forward {
		if !bytes.Equal(out[12:], frame[12:]) {
			t.Fatalf("forwarded frame changed beyond the MACs")
		}
		if !bytes.Equal(out[6:12], frame[0:6]) {
			t.Fatalf("source MAC %x, want the director's %x", out[6:12], frame[0:6])
		}
		want := rsMACs[res.Real]
		if !bytes.Equal(out[0:6], want) {
			t.Fatalf("destination MAC %x, want real server %d's %x", out[0:6], res.Real, want)
		}
	} else if !bytes.Equal(out, frame) {
		t.Fatalf("%v frame was modified", res.Verdict)
	}
	return res, out
}

func expect(t *testing.T, res Result, v Verdict, r Reason) {
	t.Helper()
	if res.Verdict != v || res.Reason != r {
		t.Fatalf("got %v/%v, want %v/%v", res.Verdict, res.Reason, v, r)
	}
}

func syn(c netip.AddrPort) []byte {
	return framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
}
func ack(c netip.AddrPort) []byte {
	return framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "A", 2, 1, []byte("GET / HTTP/1.0\r\n\r\n"))
}
func fin(c netip.AddrPort) []byte {
	return framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "FA", 3, 1, nil)
}

func TestNewAndExistingConnections(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	for i := 0; i < 6; i++ {
		c := client(i, 40000)
		res, _ := process(t, f, syn(c), t0)
		expect(t, res, Forward, ReasonNew)
		if res.Real != i%3 {
			t.Fatalf("client %d went to %d, want %d (rr)", i, res.Real, i%3)
		}
		for j := 0; j < 3; j++ {
			res2, _ := process(t, f, ack(c), t0+second)
			expect(t, res2, Forward, ReasonExisting)
			if res2.Real != res.Real {
				t.Fatalf("packet %d of client %d moved from %d to %d", j, i, res.Real, res2.Real)
			}
		}
	}
	st := f.Stats()[0]
	for i, r := range st.RealServers {
		if r.Connections != 2 || r.Active != 2 || r.Inactive != 0 || r.Packets != 8 {
			t.Errorf("real server %d: %+v, want 2 conns, 2 active, 8 packets", i, r)
		}
	}
}

func TestNotForUs(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{MAC: directorMAC})
	other := netip.MustParseAddr("198.18.0.50")
	tests := []struct {
		name   string
		frame  []byte
		v      Verdict
		reason Reason
	}{
		{"arp", framegen.ARPRequest(toDir, client(0, 0).Addr(), vip), Pass, ReasonNotIP},
		{"not vip", framegen.TCP(toDir, client(0, 1000), netip.AddrPortFrom(other, 80), "S", 1, 0, nil), Pass, ReasonNotVIP},
		{"ping vip", framegen.ICMPEcho(toDir, client(0, 0).Addr(), vip, 1), Drop, ReasonUnsupported},
		{"no service port", framegen.TCP(toDir, client(0, 1000), netip.AddrPortFrom(vip, 443), "S", 1, 0, nil), Drop, ReasonNoService},
		{"own frame", framegen.TCP(framegen.L2{Src: directorMAC, Dst: directorMAC}, client(0, 1000), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil), Drop, ReasonOwnFrame},
		{"other mac", framegen.TCP(framegen.L2{Src: clientMAC, Dst: rsMACs[0]}, client(0, 1000), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil), Pass, ReasonNotOurs},
		{"truncated", syn(client(0, 1000))[:14+20+10], Drop, ReasonMalformed},
		{"runt", []byte{1, 2, 3}, Drop, ReasonMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := process(t, f, tc.frame, t0)
			expect(t, res, tc.v, tc.reason)
		})
	}
	if f.TableLen() != 0 {
		t.Errorf("%d connection entries, want none", f.TableLen())
	}
}

// TestGroupDestinationNotOurs: a frame to a broadcast or multicast MAC is
// not the director's (IPVS takes PACKET_HOST only), also when the
// director's MAC is each frame's destination (Options.MAC nil): forwarded,
// it left with that group address as its source MAC, which no station
// may send from.
func TestGroupDestinationNotOurs(t *testing.T) {
	for _, opts := range []Options{{}, {MAC: directorMAC}} {
		f := newForwarder(t, testConfig("rr", 2), opts)
		c := client(0, 1000)
		process(t, f, syn(c), t0) // an open connection: the fast path's case too
		for _, dst := range []net.HardwareAddr{
			{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01},
			{0x33, 0x33, 0x00, 0x00, 0x00, 0x01},
		} {
			for _, frame := range [][]byte{syn(client(1, 1000)), ack(c)} {
				copy(frame[0:6], dst)
				res, _ := process(t, f, frame, t0)
				expect(t, res, Pass, ReasonNotOurs)
			}
		}
	}
}

func TestMidFlowWithoutEntry(t *testing.T) {
	// rr cannot know where a mid-flow packet belonged: drop and count.
	f := newForwarder(t, testConfig("rr", 3), Options{})
	res, _ := process(t, f, ack(client(1, 5000)), t0)
	expect(t, res, Drop, ReasonNoConn)
	if f.Count(ReasonNoConn) != 1 {
		t.Fatalf("no-conn counter %d, want 1", f.Count(ReasonNoConn))
	}

	// mh is a pure function of the flow: a restarted director (a fresh
	// forwarder) sends mid-flow packets where the first one went.
	cfg := testConfig("mh", 3)
	before := newForwarder(t, cfg, Options{})
	after := newForwarder(t, cfg, Options{})
	for i := 0; i < 50; i++ {
		c := client(i, uint16(30000+i))
		r1, _ := process(t, before, syn(c), t0)
		expect(t, r1, Forward, ReasonNew)
		r2, _ := process(t, after, ack(c), t0+second)
		expect(t, r2, Forward, ReasonAdopted)
		if r1.Real != r2.Real {
			t.Fatalf("client %d: restarted director moved it from %d to %d", i, r1.Real, r2.Real)
		}
		r3, _ := process(t, after, ack(c), t0+2*second)
		expect(t, r3, Forward, ReasonExisting)
	}
	if a := after.Stats()[0]; a.RealServers[0].Active+a.RealServers[1].Active+a.RealServers[2].Active != 50 {
		t.Fatalf("adopted connections should count as active: %+v", a.RealServers)
	}
}

// TestMidFlowResetWithoutEntry: with a consistent scheduler, a reset
// without entry (a client ending a connection a restarted director never
// saw) goes where its connection is, by the hash, or by its client's
// live template with persistence, as the connection's other packets
// would be adopted; and it makes no entry, as IPVS makes no connection of
// a reset (not even with sloppy_tcp): a reset flood neither fills the
// table with CLOSE entries, which are never evicted, nor counts in the
// servers' inactive connections. Other mid-flow packets are adopted as
// before: a FIN as FIN_WAIT (the server may still be sending).
func TestMidFlowResetWithoutEntry(t *testing.T) {
	rst := func(c netip.AddrPort, flags string) []byte {
		return framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), flags, 2, 1, nil)
	}
	for _, tc := range []struct {
		name, sched, flags string
		persist            bool
	}{
		{"mh reset", "mh", "R", false},
		{"sh reset-ACK", "sh", "RA", false},
		{"mh persistent", "mh", "R", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.sched, 3)
			fresh := newForwarder(t, cfg, Options{}) // where the hash puts a client
			if tc.persist {
				cfg.Services[0].Persistence = 300 * time.Second
				cfg.Services[0].PersistenceBits = 24
			}
			f := newForwarder(t, cfg, Options{})
			pinned := -1
			if tc.persist {
				// Client 0's connection makes its /24's template.
				res, _ := process(t, f, syn(client(0, 1000)), t0)
				pinned = res.Real
			}
			inactive := func() (n int) {
				for _, r := range f.Stats()[0].RealServers {
					n += r.Inactive
				}
				return n
			}
			entries, inact := f.TableLen(), inactive()
			moved := 0
			for i := 1; i < 40; i++ {
				c := client(i, uint16(30000+i))
				want, _ := process(t, fresh, rst(c, tc.flags), t0)
				res, _ := process(t, f, rst(c, tc.flags), t0)
				expect(t, res, Forward, ReasonAdopted)
				if pinned >= 0 {
					if want.Real != pinned {
						moved++
					}
					want.Real = pinned
				}
				if res.Real != want.Real {
					t.Fatalf("client %d: reset to real %d, want %d", i, res.Real, want.Real)
				}
			}
			if tc.persist && moved == 0 {
				t.Fatal("every client hashes to the template's server: the test shows nothing")
			}
			if n, in := f.TableLen(), inactive(); n != entries || in != inact {
				t.Fatalf("resets without entry took the table from %d entries to %d, inactive connections from %d to %d", entries, n, inact, in)
			}
			res, _ := process(t, f, fin(client(50, 1000)), t0)
			expect(t, res, Forward, ReasonAdopted)
			f.RangeConnEntries(t0, func(c ConnEntry) bool {
				if c.Client == client(50, 1000) && c.State != "FIN_WAIT" {
					t.Errorf("an adopted FIN makes %s, want FIN_WAIT", c.State)
				}
				return true
			})
		})
	}
}

func TestPortReuseReschedules(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	c := client(0, 40000)
	res, _ := process(t, f, syn(c), t0)
	first := res.Real
	process(t, f, ack(c), t0)
	process(t, f, fin(c), t0)
	// The server that had it is quiesced; the reused ports must not stick
	// to it (the IPVS conn_reuse_mode trap).
	if err := f.SetWeight(0, first, 0); err != nil {
		t.Fatal(err)
	}
	res, _ = process(t, f, syn(c), t0+second)
	expect(t, res, Forward, ReasonReused)
	if res.Real == first {
		t.Fatalf("reused ports went back to quiesced server %d", first)
	}
}

func TestDrainingAndFailure(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	a, b := client(0, 1000), client(1, 1000)
	ra, _ := process(t, f, syn(a), t0)
	process(t, f, ack(a), t0)
	if err := f.SetWeight(0, ra.Real, 0); err != nil {
		t.Fatal(err)
	}
	// Draining: the open connection continues, new ones go elsewhere.
	res, _ := process(t, f, ack(a), t0+second)
	expect(t, res, Forward, ReasonExisting)
	for i := 0; i < 4; i++ {
		res, _ = process(t, f, syn(client(10+i, 1000)), t0)
		if res.Real == ra.Real {
			t.Fatalf("new connection went to quiesced server %d", ra.Real)
		}
	}
	// Failure: connections of a failed server expire on their next packet.
	rb, _ := process(t, f, syn(b), t0)
	process(t, f, ack(b), t0)
	if err := f.SetAvailable(0, rb.Real, false); err != nil {
		t.Fatal(err)
	}
	res, _ = process(t, f, ack(b), t0+second)
	expect(t, res, Drop, ReasonServerGone)
	// Both servers now unusable: nothing to schedule.
	res, _ = process(t, f, syn(client(20, 1)), t0)
	expect(t, res, Drop, ReasonNoServer)
	if err := f.SetAvailable(0, 9, true); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("SetAvailable on a missing server: %v, want ErrUnknownServer", err)
	}
}

func TestPersistence(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.Services[0].Persistence = 300 * time.Second
	cfg.Services[0].PersistenceBits = 24
	f := newForwarder(t, cfg, Options{})
	res, _ := process(t, f, syn(client(0, 1000)), t0)
	pinned := res.Real
	for i := 1; i < 10; i++ {
		// Other ports and other hosts of the same /24 stay on the server.
		res, _ = process(t, f, syn(client(i, uint16(1000+i))), t0+int64(i)*second)
		expect(t, res, Forward, ReasonPersistent)
		if res.Real != pinned {
			t.Fatalf("connection %d went to %d, want pinned %d", i, res.Real, pinned)
		}
	}
	if p := f.Stats()[0].RealServers[pinned].Persistent; p != 1 {
		t.Fatalf("%d templates, want 1", p)
	}
	// After the template expires the client is scheduled afresh.
	res, _ = process(t, f, syn(client(0, 2000)), t0+400*second)
	expect(t, res, Forward, ReasonNew)
}

func TestTimeoutsAndCounters(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 1), Options{})
	c := client(0, 1000)
	process(t, f, syn(c), t0)
	rs := func() RealServerStats { return f.Stats()[0].RealServers[0] }
	// SYN_RECV counts as active, as in Linux since 2016 (tcp_state_active).
	if r := rs(); r.Active != 1 || r.Inactive != 0 {
		t.Fatalf("after SYN: %d active %d inactive, want 1/0", r.Active, r.Inactive)
	}
	process(t, f, ack(c), t0+second)
	if r := rs(); r.Active != 1 || r.Inactive != 0 {
		t.Fatalf("after ACK: %d active %d inactive, want 1/0", r.Active, r.Inactive)
	}
	process(t, f, fin(c), t0+2*second)
	if r := rs(); r.Active != 0 || r.Inactive != 1 {
		t.Fatalf("after FIN: %d active %d inactive, want 0/1", r.Active, r.Inactive)
	}
	// FIN_WAIT lasts 120s: a late ACK after that has no entry.
	res, _ := process(t, f, ack(c), t0+200*second)
	expect(t, res, Drop, ReasonNoConn)
	if r := rs(); r.Active != 0 || r.Inactive != 0 || f.TableLen() != 0 {
		t.Fatalf("after expiry: %d active %d inactive %d entries, want 0", r.Active, r.Inactive, f.TableLen())
	}
	// SYN_RECV lasts 60s.
	process(t, f, syn(c), t0+300*second)
	f.Tick(t0+361*second, 1<<20)
	if f.TableLen() != 0 {
		t.Fatalf("SYN_RECV entry survived its timeout")
	}
}

func TestTableFull(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 4
	f := newForwarder(t, cfg, Options{})
	// Stateful SYNs: a stateless one is forwarded without entry
	// (TestStatelessSYN).
	f.statefulSYN = true
	// A table full of ESTABLISHED connections (SYN_RECV ones would be
	// evicted for the new one: TestSynFlood).
	for i := 0; i < 4; i++ {
		res, _ := process(t, f, syn(client(i, 1)), t0)
		expect(t, res, Forward, ReasonNew)
		res, _ = process(t, f, ack(client(i, 1)), t0)
		expect(t, res, Forward, ReasonExisting)
	}
	res, _ := process(t, f, syn(client(9, 1)), t0)
	expect(t, res, Drop, ReasonTableFull)
	// Existing connections keep working.
	res, _ = process(t, f, ack(client(0, 1)), t0)
	expect(t, res, Forward, ReasonExisting)
}

func TestUDPAndIPv6(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	c := client(0, 5353)
	q := framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("query"))
	r1, _ := process(t, f, q, t0)
	expect(t, r1, Forward, ReasonNew)
	r2, _ := process(t, f, q, t0+second)
	expect(t, r2, Forward, ReasonExisting)
	if r1.Real != r2.Real || r1.Service != 1 {
		t.Fatalf("udp flow: %+v then %+v", r1, r2)
	}
	c6 := netip.AddrPortFrom(netip.MustParseAddr("2001:2:0:1::10"), 40000)
	s6 := framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil)
	res, _ := process(t, f, s6, t0)
	expect(t, res, Forward, ReasonNew)
	if res.Service != 2 {
		t.Fatalf("IPv6 SYN matched service %d, want 2", res.Service)
	}
}

func TestVLANKept(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	l2 := toDir
	l2.VLAN = 42
	frame := framegen.TCP(l2, client(0, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
	res, out := process(t, f, frame, t0)
	expect(t, res, Forward, ReasonNew)
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	if q, ok := pkt.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); !ok || q.VLANIdentifier != 42 {
		t.Fatalf("VLAN tag lost: %v", pkt)
	}
}

// TestDoubleTagKept: QinQ frames (an 802.1ad or 802.1Q outer tag, then an
// 802.1Q tag) are forwarded with both tags and the IP packet unchanged
// (process checks the bytes after the MACs); a third tag is not IP.
func TestDoubleTagKept(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	c6 := netip.MustParseAddrPort("[2001:2:0:1::10]:4000")
	for i, tc := range []struct {
		name string
		l2   framegen.L2
		vids []uint16
	}{
		{"802.1ad outer, 802.1Q inner", framegen.L2{Outer: 100, VLAN: 42}, []uint16{100, 42}},
		{"802.1Q in 802.1Q", framegen.L2{Outer: 100, OuterTPID: 0x8100, VLAN: 42}, []uint16{100, 42}},
		{"802.1ad alone", framegen.L2{Outer: 100}, []uint16{100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l2 := tc.l2
			l2.Src, l2.Dst = toDir.Src, toDir.Dst
			c := client(i, 1)
			for _, step := range []struct {
				frame  []byte
				reason Reason
			}{
				{framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil), ReasonNew},
				{framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 1, []byte("GET /")), ReasonExisting},
				{framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil), ReasonNew},
				{framegen.UDP(l2, c, netip.AddrPortFrom(vip, 53), []byte("q")), ReasonNew},
			} {
				res, out := process(t, f, step.frame, t0)
				expect(t, res, Forward, step.reason)
				if got := dot1qVIDs(out); !slices.Equal(got, tc.vids) {
					t.Fatalf("tags %v, want %v", got, tc.vids)
				}
			}
			c6 = netip.AddrPortFrom(c6.Addr().Next(), c6.Port())
		})
	}
	qinq := toDir
	qinq.Outer, qinq.VLAN = 100, 42
	frame := framegen.TCP(qinq, client(9, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
	// A third tag: 802.1Q in the inner tag's place of the EtherType.
	triple := append(append(append([]byte(nil), frame[:20]...), 0x81, 0x00, 0x00, 0x07), frame[20:]...)
	res, _ := process(t, f, triple, t0)
	expect(t, res, Pass, ReasonNotIP)
	// An outer tag whose inner tag is cut off is malformed, not IP-less.
	res, _ = process(t, f, frame[:20], t0)
	expect(t, res, Drop, ReasonMalformed)
}

// dot1qVIDs lists a frame's VLAN IDs as gopacket decodes them, outermost first.
func dot1qVIDs(frame []byte) []uint16 {
	var vids []uint16
	for _, l := range gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default).Layers() {
		if q, ok := l.(*layers.Dot1Q); ok {
			vids = append(vids, q.VLANIdentifier)
		}
	}
	return vids
}

func TestPartialChecksumCompleted(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"tcp4", ack(client(0, 1))},
		{"udp4", framegen.UDP(toDir, client(0, 1), netip.AddrPortFrom(vip, 53), []byte("odd-length"))},
		{"tcp6", framegen.TCP(toDir, netip.MustParseAddrPort("[2001:2:0:1::10]:999"), netip.AddrPortFrom(vip6, 80), "S", 1, 0, []byte("x"))},
		{"udp4 qinq", framegen.UDP(framegen.L2{Src: clientMAC, Dst: directorMAC, Outer: 5, VLAN: 6}, client(0, 1), netip.AddrPortFrom(vip, 53), []byte("odd"))},
		{"tcp6 qinq", framegen.TCP(framegen.L2{Src: clientMAC, Dst: directorMAC, Outer: 5, VLAN: 6}, netip.MustParseAddrPort("[2001:2:0:1::10]:998"), netip.AddrPortFrom(vip6, 80), "S", 1, 0, []byte("x"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := append([]byte(nil), tc.frame...)
			partial := append([]byte(nil), tc.frame...)
			framegen.PartialChecksum(partial)
			if bytes.Equal(partial, want) {
				t.Fatal("PartialChecksum changed nothing")
			}
			if tc.name == "tcp4" {
				process(t, f, syn(client(0, 1)), t0)
			}
			res := f.Process(partial, &Meta{Time: t0, CsumPartial: true})
			if res.Verdict != Forward {
				t.Fatalf("verdict %v/%v", res.Verdict, res.Reason)
			}
			if !bytes.Equal(partial[12:], want[12:]) {
				t.Fatalf("checksum not completed:\n got %x\nwant %x", partial[12:], want[12:])
			}
		})
	}
}

func TestICMPFragNeededGoesToOwner(t *testing.T) {
	for _, sched := range []string{"rr", "mh"} {
		t.Run(sched, func(t *testing.T) {
			f := newForwarder(t, testConfig(sched, 3), Options{})
			router := netip.MustParseAddr("198.18.1.1")
			for i := 0; i < 6; i++ {
				c := client(i, uint16(2000+i))
				res, _ := process(t, f, syn(c), t0)
				// The real server's too-big reply, VIP -> client, quoted by a router.
				reply := framegen.TCP(framegen.L2{Src: rsMACs[0], Dst: clientMAC}, netip.AddrPortFrom(vip, 80), c, "PA", 9, 2, make([]byte, 1400))
				icmp := framegen.ICMPFragNeeded(toDir, router, vip, framegen.IPPacket(reply)[:28], 1400)
				r2, _ := process(t, f, icmp, t0+second)
				expect(t, r2, Forward, ReasonICMP)
				if r2.Real != res.Real {
					t.Fatalf("ICMP for client %d went to %d, its connection is on %d", i, r2.Real, res.Real)
				}
			}
			// No connection: rr cannot know, mh can.
			c := client(50, 1)
			reply := framegen.TCP(framegen.L2{Src: rsMACs[0], Dst: clientMAC}, netip.AddrPortFrom(vip, 80), c, "PA", 9, 2, nil)
			icmp := framegen.ICMPFragNeeded(toDir, router, vip, framegen.IPPacket(reply)[:28], 1400)
			res, _ := process(t, f, icmp, t0)
			if sched == "rr" {
				expect(t, res, Drop, ReasonICMPNoConn)
			} else {
				expect(t, res, Forward, ReasonICMP)
			}
		})
	}
}

// TestICMPErrorServerState: an ICMP error about a connection goes where
// the connection's own packets go. Its server's MAC unresolved (ARP/NDP
// unanswered, not gone) is no-mac, as for the connection's packets, not
// server-gone; IPv6's packet too big finds its owner the same way.
func TestICMPErrorServerState(t *testing.T) {
	router, router6 := netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("2001:2:0:1::1")
	c6 := netip.MustParseAddrPort("[2001:2:0:1::10]:4000")
	tests := []struct {
		name   string
		v6     bool
		unmac  bool // the owner's MAC becomes unknown
		reason Reason
	}{
		{"ipv4 frag needed", false, false, ReasonICMP},
		{"ipv6 packet too big", true, false, ReasonICMP},
		{"ipv4 owner unresolved", false, true, ReasonNoMAC},
		{"ipv6 owner unresolved", true, true, ReasonNoMAC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("rr", 3), Options{MAC: directorMAC})
			var open, reply, icmp []byte
			if tc.v6 {
				open = framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil)
				reply = framegen.TCP(framegen.L2{Src: rsMACs[0], Dst: clientMAC}, netip.AddrPortFrom(vip6, 80), c6, "PA", 9, 2, make([]byte, 1400))
				icmp = framegen.ICMPFragNeeded(toDir, router6, vip6, framegen.IPPacket(reply)[:1200], 1400)
			} else {
				c := client(0, 4000)
				open = syn(c)
				reply = framegen.TCP(framegen.L2{Src: rsMACs[0], Dst: clientMAC}, netip.AddrPortFrom(vip, 80), c, "PA", 9, 2, make([]byte, 1400))
				icmp = framegen.ICMPFragNeeded(toDir, router, vip, framegen.IPPacket(reply)[:28], 1400)
			}
			process(t, f, open, t0) // server 0 (rr)
			if tc.unmac {
				owner := netip.MustParseAddr("198.18.0.11")
				if tc.v6 {
					owner = netip.MustParseAddr("2001:2::11")
				}
				if err := f.SetMAC(owner, nil); err != nil {
					t.Fatal(err)
				}
			}
			res, _ := process(t, f, icmp, t0+second)
			if res.Reason != tc.reason || res.Real != 0 {
				t.Fatalf("ICMP error: %v to %d, want %v to 0", res.Reason, res.Real, tc.reason)
			}
		})
	}
}

func TestFragments(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 200)
	for _, sched := range []string{"rr", "sh"} {
		t.Run(sched, func(t *testing.T) {
			f := newForwarder(t, testConfig(sched, 3), Options{})
			for i := 0; i < 5; i++ {
				frags := framegen.IPv4Fragments(toDir, client(i, 7000), netip.AddrPortFrom(vip, 53), payload, 1480, uint16(100+i))
				first, _ := process(t, f, frags[0], t0)
				expect(t, first, Forward, ReasonNew)
				for _, fr := range frags[1:] {
					res, _ := process(t, f, fr, t0)
					expect(t, res, Forward, ReasonFragment)
					if res.Real != first.Real {
						t.Fatalf("fragment went to %d, first fragment to %d", res.Real, first.Real)
					}
				}
			}
			// Out of order: the last fragment arrives before the first.
			frags := framegen.IPv4Fragments(toDir, client(9, 7000), netip.AddrPortFrom(vip, 53), payload, 1480, 999)
			last, _ := process(t, f, frags[len(frags)-1], t0)
			first, _ := process(t, f, frags[0], t0)
			if sched == "rr" {
				expect(t, last, Drop, ReasonFragNoFirst)
			} else {
				expect(t, last, Forward, ReasonFragment)
				if last.Real != first.Real {
					t.Fatalf("out-of-order fragment went to %d, first to %d", last.Real, first.Real)
				}
			}
		})
	}
}

func TestSetMAC(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.Services[0].RealServers[1].MAC = nil
	f := newForwarder(t, cfg, Options{})
	for i := 0; i < 4; i++ {
		res, _ := process(t, f, syn(client(i, 1)), t0)
		if res.Real != 0 {
			t.Fatalf("unresolved real server 1 got a connection")
		}
	}
	if err := f.SetMAC(netip.MustParseAddr("198.18.0.12"), rsMACs[1]); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i := 4; i < 8; i++ {
		res, _ := process(t, f, syn(client(i, 1)), t0)
		seen[res.Real] = true
	}
	if !seen[1] {
		t.Fatal("real server 1 still unused after its MAC was learnt")
	}
	if err := f.SetMAC(netip.MustParseAddr("198.18.9.9"), rsMACs[1]); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("SetMAC on unknown address: %v", err)
	}
}

func TestNoAllocations(t *testing.T) {
	f := newForwarder(t, testConfig("wrr", 3), Options{})
	c := client(0, 1000)
	frame := syn(c)
	f.Process(append([]byte(nil), frame...), &Meta{Time: t0})
	a := ack(c)
	buf := make([]byte, len(a))
	m := &Meta{Time: t0}
	if n := testing.AllocsPerRun(1000, func() {
		copy(buf, a)
		f.Process(buf, m)
	}); n != 0 {
		t.Errorf("existing flow: %v allocs per frame", n)
	}
	if f.fastHits == 0 {
		t.Error("existing flow: the fast path took no frame")
	}
	port := uint16(0)
	newFlow := syn(c)
	if n := testing.AllocsPerRun(1000, func() {
		copy(newFlow, frame)
		port++
		newFlow[14+20], newFlow[14+21] = byte(port>>8), byte(port) // source port; checksum is not checked
		f.Process(newFlow, m)
	}); n != 0 {
		t.Errorf("new flow: %v allocs per frame", n)
	}
	for _, sched := range scheduler.Names() {
		g := newForwarder(t, testConfig(sched, 3), Options{})
		if n := testing.AllocsPerRun(500, func() {
			copy(newFlow, frame)
			port++
			newFlow[14+20], newFlow[14+21] = byte(port>>8), byte(port)
			g.Process(newFlow, m)
		}); n != 0 {
			t.Errorf("%s new flow: %v allocs per frame", sched, n)
		}
	}
}

func TestInhibitSurvivesWeightChange(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 2), Options{})
	c := client(0, 1)
	res, _ := process(t, f, syn(c), t0)
	process(t, f, ack(c), t0)
	if err := f.SetInhibited(0, res.Real, true); err != nil {
		t.Fatal(err)
	}
	// A reload sets the configured weight again: still inhibited.
	if err := f.SetWeight(0, res.Real, 5); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 6; i++ {
		if r, _ := process(t, f, syn(client(i, 1)), t0); r.Real == res.Real {
			t.Fatalf("inhibited server %d got a new connection", res.Real)
		}
	}
	// Its open connection continues, and lifting the inhibition restores it.
	if r, _ := process(t, f, ack(c), t0); r.Reason != ReasonExisting || r.Real != res.Real {
		t.Fatalf("open connection: %+v", r)
	}
	if st := f.Stats()[0].RealServers[res.Real]; !st.Inhibited || st.Weight != 5 {
		t.Fatalf("stats %+v, want inhibited with weight 5", st)
	}
	if err := f.SetInhibited(0, res.Real, false); err != nil {
		t.Fatal(err)
	}
	seen := false
	for i := 10; i < 20; i++ {
		if r, _ := process(t, f, syn(client(i, 1)), t0); r.Real == res.Real {
			seen = true
		}
	}
	if !seen {
		t.Fatal("server not back after the inhibition was lifted")
	}
}

func TestIPv6Fragments(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.Services = append(cfg.Services, config.Service{VIP: vip6, Port: 53, Protocol: config.UDP, Scheduler: "rr", RealServers: cfg.Services[2].RealServers})
	f := newForwarder(t, cfg, Options{})
	payload := bytes.Repeat([]byte("v6 fragment "), 300)
	for i := 0; i < 4; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 1, 15: byte(0x10 + i)}), 5353)
		frags := framegen.IPv6Fragments(toDir, c, netip.AddrPortFrom(vip6, 53), payload, 1232, uint32(7000+i))
		if len(frags) < 3 {
			t.Fatalf("%d fragments, want at least 3", len(frags))
		}
		first, _ := process(t, f, frags[0], t0)
		expect(t, first, Forward, ReasonNew)
		if first.Service != 3 {
			t.Fatalf("first fragment matched service %d, want 3 (udp [VIP6]:53)", first.Service)
		}
		for _, fr := range frags[1:] {
			res, _ := process(t, f, fr, t0)
			expect(t, res, Forward, ReasonFragment)
			if res.Real != first.Real {
				t.Fatalf("fragment went to %d, first to %d", res.Real, first.Real)
			}
		}
	}
	// The last fragment before the first: rr cannot place it.
	c := netip.MustParseAddrPort("[2001:2:0:1::99]:5353")
	frags := framegen.IPv6Fragments(toDir, c, netip.AddrPortFrom(vip6, 53), payload, 1232, 9)
	res, _ := process(t, f, frags[len(frags)-1], t0)
	expect(t, res, Drop, ReasonFragNoFirst)
}

// TestIPv6FragmentsOptionsAfterFragmentHeader: a destination options
// header in the fragmentable part (RFC 8200 4.5) is behind the fragment
// header of the first fragment only, so the fragment header's next
// header (60) differs from the first fragment's upper-layer protocol
// (UDP). The fragments of a datagram are its source, destination and
// identification (RFC 8200): the rest must follow the first, not be
// dropped as frag-no-first.
func TestIPv6FragmentsOptionsAfterFragmentHeader(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.Services = append(cfg.Services, config.Service{VIP: vip6, Port: 53, Protocol: config.UDP, Scheduler: "rr", RealServers: cfg.Services[2].RealServers})
	f := newForwarder(t, cfg, Options{})
	src := netip.MustParseAddr("2001:2:0:1::10")
	// Fragmentable part: destination options (8 bytes, PadN), UDP, payload.
	udp := make([]byte, 8+1000)
	binary.BigEndian.PutUint16(udp[0:], 5353)
	binary.BigEndian.PutUint16(udp[2:], 53)
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	part := append([]byte{protoUDP, 0, 1, 4, 0, 0, 0, 0}, udp...)
	frag := func(off int, data []byte, more bool) []byte {
		b := append([]byte(nil), directorMAC...)
		b = append(b, clientMAC...)
		b = append(b, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 44, 64)
		binary.BigEndian.PutUint16(b[14+4:], uint16(8+len(data)))
		b = append(b, src.AsSlice()...)
		b = append(b, vip6.AsSlice()...)
		fo := uint16(off/8) << 3
		if more {
			fo |= 1
		}
		b = append(b, 60, 0, byte(fo>>8), byte(fo), 0, 0, 0x12, 0x34)
		return append(b, data...)
	}
	first, _ := process(t, f, frag(0, part[:512], true), t0)
	expect(t, first, Forward, ReasonNew)
	for _, fr := range [][]byte{frag(512, part[512:1000], true), frag(1000, part[1000:], false)} {
		res, _ := process(t, f, fr, t0)
		expect(t, res, Forward, ReasonFragment)
		if res.Real != first.Real {
			t.Fatalf("fragment went to %d, first to %d", res.Real, first.Real)
		}
	}
}

func TestRangeConnEntries(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.Services[0].Persistence = 60 * time.Second
	f := newForwarder(t, cfg, Options{})
	c := client(0, 1234)
	process(t, f, syn(c), t0)
	process(t, f, ack(c), t0+second)
	var got []ConnEntry
	f.RangeConnEntries(t0+2*second, func(c ConnEntry) bool { got = append(got, c); return true })
	if len(got) != 2 {
		t.Fatalf("%d entries, want the connection and its template: %+v", len(got), got)
	}
	var conn, tmpl ConnEntry
	for _, c := range got {
		if c.State == "TEMPLATE" {
			tmpl = c
		} else {
			conn = c
		}
	}
	if conn.State != "ESTABLISHED" || conn.Client != c || conn.Virtual != netip.AddrPortFrom(vip, 80) ||
		conn.Real != netip.MustParseAddr("198.18.0.11") || conn.Expires != 899*time.Second {
		t.Fatalf("connection %+v", conn)
	}
	// The open connection holds its template (IPVS n_control): the
	// template lasts as long as the connection, not its 60 s.
	if tmpl.Client.Port() != 0 || tmpl.Expires != 899*time.Second {
		t.Fatalf("template %+v, want it held as long as its connection (899s)", tmpl)
	}
	n := 0
	f.RangeConnEntries(t0+2*second, func(ConnEntry) bool { n++; return false })
	if n != 1 {
		t.Fatalf("fn returning false should stop the walk: %d calls", n)
	}
}

// TestPersistenceHeldByOpenConnection: like IPVS's n_control, a template
// lives while a connection it placed is open, however long the client is
// idle: its next connection, after the persistence timeout, still goes to
// the same server; once that connection has ended too, the template
// expires and the client is scheduled afresh.
func TestPersistenceHeldByOpenConnection(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.Services[0].Persistence = 60 * time.Second
	f := newForwarder(t, cfg, Options{})
	c := client(0, 1000)
	res, _ := process(t, f, syn(c), t0)
	pinned := res.Real
	process(t, f, ack(c), t0+second) // ESTABLISHED: 900 s of idle allowed
	// Idle for longer than the persistence timeout, connection still open.
	res, _ = process(t, f, syn(client(0, 1001)), t0+300*second)
	expect(t, res, Forward, ReasonPersistent)
	if res.Real != pinned {
		t.Fatalf("new connection went to %d while the client's open connection holds the template to %d", res.Real, pinned)
	}
	// The first connection times out (900 s after its last packet), the
	// second (SYN_RECV) long before: nothing holds the template then.
	res, _ = process(t, f, syn(client(0, 1002)), t0+1000*second)
	expect(t, res, Forward, ReasonNew)
}

// TestPersistenceReuseKeepsHold: a new connection that finds its client's
// template renews it to the persistence timeout but must not shorten it
// below what an open connection holds it to (holdTemplate, IPVS's
// n_control). The template was set back to 60 s by the second connection,
// so once that one had gone the first, still open but idle, no longer
// held it: the client's third connection was scheduled afresh, to
// another server by rr.
func TestPersistenceReuseKeepsHold(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reuse  int64 // second connection, seconds after the first
		third  int64 // third connection
		reason Reason
	}{
		{"reuse early, idle past the timeout", 10, 300, ReasonPersistent},
		{"reuse late, idle past the timeout", 200, 600, ReasonPersistent},
		{"first connection timed out too", 10, 1000, ReasonNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("rr", 3)
			cfg.Services[0].Persistence = 60 * time.Second
			f := newForwarder(t, cfg, Options{})
			res, _ := process(t, f, syn(client(0, 1000)), t0)
			pinned := res.Real
			process(t, f, ack(client(0, 1000)), t0+second) // ESTABLISHED, then idle
			res, _ = process(t, f, syn(client(0, 1001)), t0+tc.reuse*second)
			expect(t, res, Forward, ReasonPersistent)
			// The second connection (SYN_RECV, 60 s) ends long before
			// the third; the first, ESTABLISHED for 900 s, does not.
			res, _ = process(t, f, syn(client(0, 1002)), t0+tc.third*second)
			expect(t, res, Forward, tc.reason)
			if tc.reason == ReasonPersistent && res.Real != pinned {
				t.Fatalf("third connection went to %d, want %d", res.Real, pinned)
			}
		})
	}
}

// TestNewTableTooLargeNamesMaxConns: a max_conns the connection tables
// cannot hold (config accepts up to 1<<30; one worker's table holds at
// most conntable.MaxEntries) is refused with an error that names
// max_conns, its value and the workers, not the per-worker table size
// alone.
func TestNewTableTooLargeNamesMaxConns(t *testing.T) {
	for _, tc := range []struct {
		maxConns, workers int
	}{
		{conntable.MaxEntries + 1, 1},
		{1 << 30, 2},
	} {
		cfg := testConfig("rr", 2)
		cfg.MaxConns = tc.maxConns
		_, err := New(cfg, Options{Workers: tc.workers})
		if err == nil {
			t.Fatalf("max_conns %d over %d workers: no error", tc.maxConns, tc.workers)
		}
		for _, want := range []string{"max_conns", strconv.Itoa(tc.maxConns), strconv.Itoa(tc.workers) + " worker"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("max_conns %d over %d workers: %q does not say %q", tc.maxConns, tc.workers, err, want)
			}
		}
		if !errors.Is(err, conntable.ErrBadOptions) {
			t.Errorf("%v: not conntable.ErrBadOptions", err)
		}
	}
}

// TestGoneServerUDPRescheduled: a datagram of a UDP flow whose real server
// failed or was removed goes to another server at once, as IPVS's
// expire_nodest_conn reschedules it; TCP's non-SYN packets still end as
// server-gone (drlb answers them with a reset). Dropping the datagram
// lost it: UDP has no reset, so the client only waited for its retry.
func TestGoneServerUDPRescheduled(t *testing.T) {
	udp := func(c netip.AddrPort) []byte {
		return framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("query"))
	}
	tests := []struct {
		name    string
		svc     int
		frame   func(netip.AddrPort) []byte
		gone    func(t *testing.T, f *Forwarder, svc, real int)
		verdict Verdict
		reason  Reason
	}{
		{"udp failed", 1, udp, func(t *testing.T, f *Forwarder, svc, real int) {
			if err := f.SetAvailable(svc, real, false); err != nil {
				t.Fatal(err)
			}
		}, Forward, ReasonNew},
		{"udp removed", 1, udp, func(t *testing.T, f *Forwarder, svc, real int) {
			cfg := testConfig("rr", 2)
			for i := range cfg.Services {
				cfg.Services[i].PersistenceBits = cfg.Services[i].VIP.BitLen() // as validated
			}
			rs := cfg.Services[svc].RealServers
			cfg.Services[svc].RealServers = append(rs[:real:real], rs[real+1:]...)
			applyNow(t, f, cfg, t0)
		}, Forward, ReasonNew},
		{"tcp ack failed", 0, ack, func(t *testing.T, f *Forwarder, svc, real int) {
			if err := f.SetAvailable(svc, real, false); err != nil {
				t.Fatal(err)
			}
		}, Drop, ReasonServerGone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("rr", 2), Options{})
			c := client(0, 5353)
			first := syn(c)
			if tt.svc == 1 {
				first = udp(c)
			}
			r1, _ := process(t, f, first, t0)
			expect(t, r1, Forward, ReasonNew)
			gone := f.Stats()[tt.svc].RealServers[r1.Real].Addr
			tt.gone(t, f, tt.svc, r1.Real)
			// Process, not process: a removal renumbers the servers.
			res := f.Process(tt.frame(c), &Meta{Time: t0 + second})
			expect(t, res, tt.verdict, tt.reason)
			if res.Verdict == Forward && f.Stats()[tt.svc].RealServers[res.Real].Addr == gone {
				t.Fatalf("datagram went back to gone server %v", gone)
			}
		})
	}
}

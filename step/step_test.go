package step_test

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

var (
	routerMAC   = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	directorMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	rs1MAC      = net.HardwareAddr{2, 0, 0, 0, 0, 0x11}
	broadcast   = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	vip         = netip.MustParseAddr("198.18.0.100")
	vip6        = netip.MustParseAddr("2001:2::100")
	router      = netip.MustParseAddr("198.18.0.1")
	router6     = netip.MustParseAddr("2001:2::1")
	client      = netip.MustParseAddrPort("198.18.1.10:40000")
	toDirector  = framegen.L2{Src: routerMAC, Dst: directorMAC}
	web         = netip.AddrPortFrom(vip, 80)
	t0          = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano()
)

func testConfig() *config.Config {
	rs := func(a string) []config.RealServer {
		return []config.RealServer{{Address: netip.MustParseAddr(a), Weight: 1, MAC: rs1MAC}}
	}
	return &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 1024, Services: []config.Service{
		{VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr", RealServers: rs("198.18.0.11")},
		{VIP: vip6, Port: 80, Protocol: config.TCP, Scheduler: "rr", RealServers: rs("2001:2::11")},
	}}
}

// newStep is the live director's step without I/O: forwarder with the
// director's MAC and an MTU, responder for the VIPs.
func newStep(t testing.TB, obs step.Observer) *step.Step {
	t.Helper()
	cfg := testConfig()
	fw, err := forwarder.New(cfg, forwarder.Options{MAC: directorMAC, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := arp.MACFrom(directorMAC)
	resp, err := arp.NewResponder(arp.ResponderConfig{MAC: mac, VIPs: []netip.Addr{vip, vip6}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := step.New(step.Config{Forwarder: fw, Responder: resp, Observer: obs, Batch: 4, Prefetch: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorder keeps every event's action, kind and line.
type recorder struct {
	n     *step.Narrator
	lines []string
	kinds []step.Kind
	acts  []step.Action
}

func (r *recorder) Wants(int64) bool { return true }
func (r *recorder) Observe(e *step.Event) {
	r.acts = append(r.acts, e.Action)
	r.kinds = append(r.kinds, e.Kind)
	r.lines = append(r.lines, r.n.Line(e))
}

func frames(data ...[]byte) []link.Frame {
	out := make([]link.Frame, len(data))
	for i, d := range data {
		out[i].Data = append(make([]byte, 0, link.MaxFrame), d...)
	}
	return out
}

func TestHandle(t *testing.T) {
	syn := framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil)
	for _, tc := range []struct {
		name   string
		in     []byte
		action step.Action
		kind   step.Kind
		line   string // a part of the narrator's line
		check  func(t *testing.T, sent []byte)
	}{
		{"who-has VIP is answered", framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, vip),
			step.Answer, step.ARPReply, "answer arp-reply arp who-has 198.18.0.100 tell 198.18.0.1 | sent 198.18.0.100 is-at 02:00:00:00:00:02",
			func(t *testing.T, b []byte) {
				if !bytes.Equal(b[0:6], routerMAC) || !bytes.Equal(b[6:12], directorMAC) {
					t.Errorf("reply %x -> %x", b[6:12], b[0:6])
				}
			}},
		{"802.1ad double-tagged who-has VIP is answered with both tags", framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast, Outer: 100, VLAN: 10}, router, vip),
			step.Answer, step.ARPReply, "sent 198.18.0.100 is-at 02:00:00:00:00:02",
			func(t *testing.T, b []byte) {
				if !bytes.Equal(b[12:20], []byte{0x88, 0xa8, 0, 100, 0x81, 0, 0, 10}) {
					t.Errorf("tags % x, want 802.1ad 100 then 802.1Q 10", b[12:20])
				}
			}},
		{"802.1ad double-tagged SYN is forwarded with both tags", framegen.TCP(framegen.L2{Src: routerMAC, Dst: directorMAC, Outer: 100, VLAN: 10}, client, web, framegen.SYN, 1, 0, nil),
			step.Forward, step.Forwarded, "forward new", func(t *testing.T, b []byte) {
				if !bytes.Equal(b[12:20], []byte{0x88, 0xa8, 0, 100, 0x81, 0, 0, 10}) {
					t.Errorf("tags % x, want 802.1ad 100 then 802.1Q 10", b[12:20])
				}
			}},
		{"who-has another address is left to the kernel", framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, netip.MustParseAddr("198.18.0.2")),
			step.Pass, 0, "pass not-ip arp who-has 198.18.0.2", nil},
		{"solicitation for the IPv6 VIP is answered", framegen.NeighborSolicitation(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}}, router6, vip6),
			step.Answer, step.NeighborAdvert, "sent 2001:2::100 is-at 02:00:00:00:00:02 (neighbor advertisement)", nil},
		{"SYN is forwarded", syn, step.Forward, step.Forwarded,
			"forward new tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (rr) | real server 198.18.0.11 | sent dst 02:00:00:00:00:11 src 02:00:00:00:00:02, IP packet unchanged",
			func(t *testing.T, b []byte) {
				if !bytes.Equal(b[14:], syn[14:]) {
					t.Error("IP packet changed")
				}
			}},
		{"too big with DF draws fragmentation-needed", framegen.TCP(toDirector, client, web, framegen.SYN, 2, 0, make([]byte, 1600)),
			step.Answer, step.TooBig, "answer too-big tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (rr) | sent icmp fragmentation-needed mtu 1500 198.18.0.100 -> 198.18.1.10", nil},
		{"IPv6 too big draws packet-too-big", framegen.TCP(toDirector, netip.MustParseAddrPort("[2001:2:0:1::10]:44000"), netip.AddrPortFrom(vip6, 80), framegen.SYN, 1, 0, make([]byte, 1500)),
			step.Answer, step.TooBig, "sent icmp6 packet-too-big mtu 1500 2001:2::100 -> 2001:2:0:1::10", nil},
		{"the director's own frame is dropped", framegen.TCP(framegen.L2{Src: directorMAC, Dst: rs1MAC}, client, web, framegen.ACK, 2, 1, nil),
			step.Drop, 0, "drop own-frame", nil},
		{"not a VIP is passed", framegen.TCP(toDirector, client, netip.MustParseAddrPort("198.18.0.2:22"), framegen.SYN, 1, 0, nil),
			step.Pass, 0, "pass not-vip", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{n: step.NewNarrator(nil, testConfig(), step.NarratorOptions{})}
			s := newStep(t, rec)
			in := frames(tc.in)
			out := s.Handle(t0, in, nil)
			if len(rec.acts) != 1 || rec.acts[0] != tc.action {
				t.Fatalf("actions %v, want [%v]", rec.acts, tc.action)
			}
			if !strings.Contains(rec.lines[0], tc.line) {
				t.Errorf("line %q\nwant it to contain %q", rec.lines[0], tc.line)
			}
			sends := tc.action == step.Forward || tc.action == step.Answer
			if !sends {
				if len(out) != 0 {
					t.Fatalf("sent %d frames for a %v", len(out), tc.action)
				}
				return
			}
			if len(out) != 1 || rec.kinds[0] != tc.kind {
				t.Fatalf("sent %d frames of kind %v, want 1 %v", len(out), rec.kinds[0], tc.kind)
			}
			if tc.check != nil {
				tc.check(t, out[0].Data)
			}
		})
	}
}

// TestHandleBatchOrder: one call keeps the order of the answers and the
// forwarded frames as the frames came, and never makes more answers than
// Batch, however many frames ask.
func TestHandleBatchOrder(t *testing.T) {
	s := newStep(t, nil)
	who := framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, vip)
	syn := framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil)
	out := s.Handle(t0, frames(who, syn, who), nil)
	if len(out) != 3 || !isARP(out[0].Data) || isARP(out[1].Data) || !isARP(out[2].Data) {
		t.Fatalf("got %d frames out of order", len(out))
	}
	// Batch is 4: the fifth and sixth who-has in one call get no answer.
	out = s.Handle(t0, frames(who, who, who, who, who, who), out[:0])
	if len(out) != 4 {
		t.Fatalf("%d answers for a batch of 4 reply buffers", len(out))
	}
}

func isARP(b []byte) bool { return len(b) > 13 && b[12] == 0x08 && b[13] == 0x06 }

// TestHandleNoAllocations: the step allocates nothing per frame, for
// forwarded frames, answers and too-big replies alike, with or without an
// observer that declines.
func TestHandleNoAllocations(t *testing.T) {
	s := newStep(t, declining{})
	mix := [][]byte{
		framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil),
		framegen.TCP(toDirector, client, web, framegen.ACK, 2, 1, nil),
		framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: broadcast}, router, vip),
		framegen.NeighborSolicitation(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}}, router6, vip6),
		framegen.TCP(toDirector, client, web, framegen.SYN, 2, 0, make([]byte, 1600)),
	}
	in := frames(mix...)
	orig := frames(mix...)
	out := make([]link.Frame, 0, 2*len(in))
	now := t0
	allocs := testing.AllocsPerRun(200, func() {
		for i := range in {
			in[i].Data = append(in[i].Data[:0], orig[i].Data...)
		}
		now += int64(time.Millisecond)
		// A batch of Batch (4) frames with the next behind it (orig,
		// read, not processed), then the rest alone.
		out = s.HandleAhead(now, in[:4], orig, out[:0])
		out = s.HandleAhead(now, in[4:], nil, out)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch, want 0", allocs)
	}
	if len(out) != len(mix) {
		t.Fatalf("%d frames out for %d in", len(out), len(mix))
	}
}

type declining struct{}

func (declining) Wants(int64) bool    { return false }
func (declining) Observe(*step.Event) { panic("Observe after Wants said no") }

func TestNarratorRateLimit(t *testing.T) {
	var b bytes.Buffer
	n := step.NewNarrator(&b, testConfig(), step.NarratorOptions{PerSecond: 2, Prefix: "trace: "})
	s, err := step.New(step.Config{Forwarder: newStep(t, nil).Forwarder(), Observer: n})
	if err != nil {
		t.Fatal(err)
	}
	syn := framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil)
	for i := range 5 {
		s.Handle(t0+int64(i)*int64(time.Millisecond), frames(syn), nil)
	}
	s.Handle(t0+int64(2*time.Second), frames(syn), nil)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "trace: forward new ") ||
		lines[2] != "trace: 3 frames not shown (rate limit 2/s)" || !strings.HasPrefix(lines[3], "trace: forward ") {
		t.Fatalf("trace:\n%s", b.String())
	}
}

func TestNewNeedsForwarder(t *testing.T) {
	if _, err := step.New(step.Config{}); err != step.ErrNoForwarder {
		t.Fatalf("got %v", err)
	}
}

// TestHandleServerGoneResets: a packet of a connection whose real server
// is gone is dropped and answered with a TCP reset from the VIP, so the
// client fails fast; a reset is never answered, and the retransmission
// (no connection any more) is dropped silently as before.
func TestHandleServerGoneResets(t *testing.T) {
	rec := &recorder{n: step.NewNarrator(nil, testConfig(), step.NarratorOptions{})}
	s := newStep(t, rec)
	s.Handle(t0, frames(framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil), framegen.TCP(toDirector, client, web, framegen.ACK, 2, 1, nil)), nil)
	if err := s.Forwarder().SetAvailable(0, 0, false); err != nil {
		t.Fatal(err)
	}
	out := s.Handle(t0, frames(framegen.TCP(toDirector, client, web, framegen.ACK, 2, 1, []byte("GET"))), nil)
	want := "answer reset tcp 198.18.1.10:40000 -> 198.18.0.100:80 [.] | service tcp 198.18.0.100:80 (rr) | sent tcp reset 198.18.0.100:80 -> 198.18.1.10:40000 (its real server is gone)"
	if len(out) != 1 || rec.kinds[2] != step.Reset || !strings.HasPrefix(rec.lines[2], "answer reset tcp 198.18.1.10:40000 -> 198.18.0.100:80 ") ||
		!strings.HasSuffix(rec.lines[2], "| service tcp 198.18.0.100:80 (rr) | sent tcp reset 198.18.0.100:80 -> 198.18.1.10:40000 (its real server is gone)") {
		t.Fatalf("sent %d frames, line %q\nwant %q", len(out), rec.lines[2], want)
	}
	if b := out[0].Data; !bytes.Equal(b[0:6], routerMAC) || !bytes.Equal(b[6:12], directorMAC) || b[14+20+13] != 0x04 {
		t.Fatalf("reset frame %x", b)
	}
	if n := s.Forwarder().Count(forwarder.ReasonServerGone); n != 1 {
		t.Fatalf("server-gone counted %d times, want 1", n)
	}
	out = s.Handle(t0, frames(framegen.TCP(toDirector, client, web, framegen.ACK, 2, 1, []byte("GET")), framegen.TCP(toDirector, client, web, framegen.RST, 5, 0, nil)), nil)
	if len(out) != 0 || rec.acts[3] != step.Drop || rec.acts[4] != step.Drop {
		t.Fatalf("retransmission and reset: %d frames sent, actions %v", len(out), rec.acts[3:])
	}
}

// TestNarratorSetConfig: after a configuration change the narrator names
// results in the new configuration, whose indexes differ.
func TestNarratorSetConfig(t *testing.T) {
	rec := &recorder{n: step.NewNarrator(nil, testConfig(), step.NarratorOptions{})}
	s := newStep(t, rec)
	next := testConfig()
	next.Services = append([]config.Service{{VIP: vip, Port: 443, Protocol: config.TCP, Scheduler: "wrr", PersistenceBits: 32,
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1, MAC: rs1MAC}}}}, next.Services...)
	for i := range next.Services {
		next.Services[i].PersistenceBits = map[bool]int{true: 32, false: 128}[next.Services[i].VIP.Is4()]
	}
	if _, err := s.Forwarder().Apply(next, t0, func(swap func()) { swap(); rec.n.SetConfig(next) }); err != nil {
		t.Fatal(err)
	}
	s.Handle(t0, frames(framegen.TCP(toDirector, client, web, framegen.SYN, 1, 0, nil)), nil)
	if !strings.Contains(rec.lines[0], "| service tcp 198.18.0.100:80 (rr) | real server 198.18.0.11 |") {
		t.Fatalf("line %q names another service", rec.lines[0])
	}
}

// TestNarratorRateLimitClockStepsBack: the live trace runs on the wall
// clock, which an NTP step can set back. A rate-limited narrator must go
// on showing frames, not stay silent until the clock catches up with the
// window it opened before the step; the few microseconds loops sharing
// it disagree by open no new window.
func TestNarratorRateLimitClockStepsBack(t *testing.T) {
	var b bytes.Buffer
	n := step.NewNarrator(&b, testConfig(), step.NarratorOptions{PerSecond: 2})
	for i := range 3 {
		n.Wants(t0 + int64(i)*int64(time.Millisecond))
	}
	if n.Wants(t0 - int64(time.Microsecond)) {
		t.Fatal("a frame a microsecond older than the window was shown past the limit")
	}
	if !n.Wants(t0 - int64(time.Hour)) {
		t.Fatal("after the clock stepped back an hour, no frame is shown for an hour")
	}
}

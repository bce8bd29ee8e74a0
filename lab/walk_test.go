package lab

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
)

var (
	macClient   = net.HardwareAddr{2, 0, 0, 0, 1, 10}
	macUplink   = net.HardwareAddr{2, 1, 0, 0, 1, 1}
	macRouter   = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	macDirector = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	macRS1      = net.HardwareAddr{2, 0, 0, 0, 0, 11}
	macRS2      = net.HardwareAddr{2, 0, 0, 0, 0, 12}
	testVIP     = netip.MustParseAddrPort("198.18.0.100:80")
	testClient  = netip.MustParseAddrPort("198.18.1.10:40000")
	testRouter  = netip.MustParseAddr("198.18.0.1")
)

// makeARPReply builds "ip is-at mac" from mac to dst.
func makeARPReply(mac, dst net.HardwareAddr, ip, target netip.Addr) []byte {
	f := framegen.ARPRequest(framegen.L2{Src: mac, Dst: dst}, ip, target)
	f[20], f[21] = 0, arpReply
	copy(f[32:38], dst)
	return f
}

// scenario is a correct DR exchange as the captures would hold it, with
// hooks to break it.
type scenario struct {
	foreignARP  bool // rs2 answers ARP for the VIP
	changeIP    bool // the director alters the IP packet
	replyViaDir bool // a reply crosses the director
}

func (s scenario) input(t *testing.T) *walkInput {
	t.Helper()
	flushed := time.Unix(1000, 0)
	at := flushed.Add(time.Millisecond)
	fr := func(b []byte) frame { return parseFrame(at, b) }
	syn := func(src, dst net.HardwareAddr) []byte {
		return framegen.TCP(framegen.L2{Src: src, Dst: dst}, testClient, testVIP, framegen.SYN, 1, 0, nil)
	}
	synack := func(src, dst net.HardwareAddr) []byte {
		return framegen.TCP(framegen.L2{Src: src, Dst: dst}, testVIP, testClient, "SA", 7, 2, nil)
	}
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	who := framegen.ARPRequest(framegen.L2{Src: macRouter, Dst: bcast}, testRouter, testVIP.Addr())
	out := syn(macDirector, macRS1)
	if s.changeIP {
		out[14+1] ^= 0xff // the TOS byte: inside the IP packet, unlike padding
	}
	in := &walkInput{
		vip: testVIP, client: testClient,
		names:     map[string]string{macDirector.String(): "director", macRS1.String(): "rs1", macRS2.String(): "rs2"},
		clientMAC: macClient, routerLANMAC: macRouter, directorMAC: macDirector, rsMAC: macRS1, rsName: "rs1",
		flushed:   flushed,
		clientCap: []frame{fr(syn(macClient, macUplink)), fr(synack(macUplink, macClient))},
		routerLAN: []frame{fr(who), fr(makeARPReply(macDirector, macRouter, testVIP.Addr(), testRouter)), fr(synack(macRS1, macRouter))},
		director:  []frame{fr(who), fr(syn(macRouter, macDirector)), fr(out)},
		rs:        []frame{fr(who), fr(syn(macDirector, macRS1)), fr(synack(macRS1, macRouter))},
		order:     []string{"rs1", "rs2"},
	}
	in.reals = map[string][]frame{"rs1": in.rs, "rs2": {fr(who)}}
	if s.foreignARP {
		r := fr(makeARPReply(macRS2, macRouter, testVIP.Addr(), testRouter))
		in.routerLAN = append(in.routerLAN, r)
		in.reals["rs2"] = append(in.reals["rs2"], r)
	}
	if s.replyViaDir {
		in.director = append(in.director, fr(synack(macRS1, macDirector)))
	}
	return in
}

func TestWalk(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    scenario
		fail []string // checks that must fail; all others pass
	}{
		{"correct DR", scenario{}, nil},
		{"a real server answers ARP", scenario{foreignARP: true}, []string{"ARP for the VIP answered by the director only"}},
		{"the director changes the IP packet", scenario{changeIP: true}, []string{"IP packet unchanged by the director"}},
		{"a reply crosses the director", scenario{replyViaDir: true}, []string{"replies never crossed the director"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			cs := walk(&out, tc.s.input(t))
			for _, c := range cs {
				want := true
				for _, f := range tc.fail {
					if c.name == f {
						want = false
					}
				}
				if c.ok != want {
					t.Errorf("check %q: ok=%v (%s), want %v\n%s", c.name, c.ok, c.detail, want, out.String())
				}
			}
			for _, s := range []string{"who-has 198.18.0.100 tell 198.18.0.1", "is-at " + macDirector.String(), "7. router -> client"} {
				if !strings.Contains(out.String(), s) {
					t.Errorf("walk output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func TestWalkMissingHops(t *testing.T) {
	in := scenario{}.input(t)
	in.rs = nil
	var out bytes.Buffer
	cs := walk(&out, in)
	if !cs.failed() || !strings.Contains(out.String(), "(not captured)") {
		t.Fatalf("missing hops not reported:\n%s", out.String())
	}
}

// TestWalkARPCountsOnlyTheRouter: what a real server "heard" is the
// router's question, not drlb's gratuitous ARP (a request for the VIP
// too, broadcast, sent again a second later while the requests run); what
// it "answered" is what it sent, not an answer by someone else it saw;
// and one foreign answer is counted once, not once where it was sent and
// again where it was received.
func TestWalkARPCountsOnlyTheRouter(t *testing.T) {
	in := scenario{}.input(t)
	at := in.flushed.Add(2 * time.Millisecond)
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	garp := parseFrame(at, framegen.ARPRequest(framegen.L2{Src: macDirector, Dst: bcast}, testVIP.Addr(), testVIP.Addr()))
	flooded := parseFrame(at, makeARPReply(macDirector, macRouter, testVIP.Addr(), testRouter))
	in.reals["rs1"] = append(in.reals["rs1"], garp, flooded)
	in.reals["rs2"] = append(in.reals["rs2"], garp)
	var out bytes.Buffer
	cs := walk(&out, in)
	for _, want := range []string{"rs1       heard the question 1 time(s), answered 0", "rs2       heard the question 1 time(s), answered 0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("walk output lacks %q:\n%s", want, out.String())
		}
	}
	for _, c := range cs {
		if c.name == "ARP for the VIP answered by the director only" && !c.ok {
			t.Errorf("drlb's own ARP seen at a real server counted against it: %s", c.detail)
		}
	}

	in = scenario{foreignARP: true}.input(t)
	out.Reset()
	for _, c := range walk(&out, in) {
		if c.name == "ARP for the VIP answered by the director only" && (c.ok || !strings.Contains(c.detail, "others 1;") || !strings.Contains(c.detail, "1/2 real servers silent")) {
			t.Errorf("one answer by rs2: ok=%v %q, want a failure naming 1 other answer and 1/2 silent", c.ok, c.detail)
		}
	}
}

// TestWalkARPSilenceNeedsTheQuestion: a real server is silent when its
// capture holds the router's question and no answer from it. A capture
// that holds nothing (it missed the broadcast, or the frames) proves
// nothing: the check passed on "0 of 0", "2/2 real servers silent".
func TestWalkARPSilenceNeedsTheQuestion(t *testing.T) {
	in := scenario{}.input(t)
	in.reals["rs2"] = nil
	var out bytes.Buffer
	for _, c := range walk(&out, in) {
		if c.name == "ARP for the VIP answered by the director only" && (c.ok || !strings.Contains(c.detail, "1/2 real servers silent")) {
			t.Errorf("rs2 never heard the question: ok=%v %q, want a failure with 1/2 silent\n%s", c.ok, c.detail, out.String())
		}
	}
	if !strings.Contains(out.String(), "rs2       heard the question 0 time(s), answered 0") {
		t.Errorf("walk output does not show rs2 heard nothing:\n%s", out.String())
	}
}

// TestWalkDiagramARPNote: the drawing's note "only drlb answered" stands
// only over a captured answer from drlb and real servers heard silent.
func TestWalkDiagramARPNote(t *testing.T) {
	const note = "only drlb answered"
	lanes := []seqLane{{name: "client"}, {name: "router"}, {name: "director"}, {name: "rs1"}}
	draw := func(in *walkInput) string {
		var out bytes.Buffer
		walk(&out, in)
		return in.diagram(lanes).svg()
	}
	if s := draw(scenario{}.input(t)); !strings.Contains(s, note) {
		t.Errorf("a correct exchange's drawing lacks %q", note)
	}
	in := scenario{}.input(t)
	in.routerLAN = slices.DeleteFunc(in.routerLAN, func(f frame) bool { return f.arpOp == arpReply })
	if s := draw(in); strings.Contains(s, note) {
		t.Errorf("no answer from drlb was captured, yet the drawing says %q", note)
	}
	in = scenario{}.input(t)
	in.reals["rs2"] = nil
	if s := draw(in); strings.Contains(s, note) {
		t.Errorf("rs2's capture holds no question, yet the drawing says the real servers heard it: %q", note)
	}
}

// TestWalkDiagramClaims: the drawing's "only the MACs changed" (hop 3)
// and "not via the director" (hop 5) stand only where the captures show
// them; a SYN the director altered, or a reply sent to the director's MAC,
// was drawn with both claims while the check table said FAIL.
func TestWalkDiagramClaims(t *testing.T) {
	const macsOnly, notViaDir = "only the MACs changed", "not via the director"
	lanes := []seqLane{{name: "client"}, {name: "router"}, {name: "director"}, {name: "rs1"}}
	for _, tc := range []struct {
		name       string
		edit       func(in *walkInput)
		has, lacks []string
	}{
		{"correct DR", func(*walkInput) {}, []string{macsOnly, notViaDir}, nil},
		{"the director changes the IP packet", func(in *walkInput) {
			*in = *scenario{changeIP: true}.input(t)
		}, []string{notViaDir, "the IP packet CHANGED"}, []string{macsOnly}},
		{"the reply goes to the director", func(in *walkInput) {
			for i := range in.rs {
				if f := &in.rs[i]; f.isSYNACK() {
					copy(f.data[0:6], macDirector) // f.dst aliases the frame
				}
			}
		}, []string{macsOnly, "to " + macDirector.String() + " (director), not the router"}, []string{notViaDir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := scenario{}.input(t)
			tc.edit(in)
			var out bytes.Buffer
			walk(&out, in)
			s := in.diagram(lanes).svg()
			for _, want := range tc.has {
				if !strings.Contains(s, want) {
					t.Errorf("drawing lacks %q", want)
				}
			}
			for _, bad := range tc.lacks {
				if strings.Contains(s, bad) {
					t.Errorf("drawing says %q, which the captures contradict", bad)
				}
			}
		})
	}
}

// TestWalkCaption: the page's text over the walk tells DR as it should be
// only when the walk's checks passed; over a failed walk it said "rewrites
// only the MAC addresses" and "straight through the router" all the same.
func TestWalkCaption(t *testing.T) {
	const ideal = "rewrites only the MAC addresses"
	for _, tc := range []struct {
		name       string
		s          scenario
		has, lacks string
	}{
		{"correct DR", scenario{}, ideal, "NOT"},
		{"the director changes the IP packet", scenario{changeIP: true}, "Failed: IP packet unchanged by the director", ideal},
		{"a reply crosses the director", scenario{replyViaDir: true}, "Failed: replies never crossed the director", ideal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := walkCaption(walk(&out, tc.s.input(t)), testClient, testVIP, "rs1")
			if !strings.Contains(c, tc.has) || strings.Contains(c, tc.lacks) {
				t.Errorf("caption %q: want %q in it and not %q", c, tc.has, tc.lacks)
			}
		})
	}
}

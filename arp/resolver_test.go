package arp

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

type fixture struct {
	t   *testing.T
	r   *Resolver
	clk *fakeClock
	rec *recorder

	mu     sync.Mutex
	events []Event
}

func newFixture(t *testing.T, mutate func(*ResolverConfig)) *fixture {
	f := &fixture{t: t, clk: newFakeClock(), rec: &recorder{}}
	cfg := ResolverConfig{MAC: dirMAC, IPv4: dirIP, IPv6: dirIP6, Sender: f.rec, Clock: f.clk,
		OnEvent: func(e Event) { f.mu.Lock(); f.events = append(f.events, e); f.mu.Unlock() }}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

// tick runs Tick at `at` (also the clock's time) and returns the frames sent.
func (f *fixture) tick(at time.Time) [][]byte {
	f.t.Helper()
	f.clk.Set(at)
	if _, err := f.r.Tick(at); err != nil {
		f.t.Fatal(err)
	}
	return f.rec.take()
}

func (f *fixture) takeEvents() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.events
	f.events = nil
	return e
}

func (f *fixture) state(a netip.Addr) State {
	for _, e := range f.r.Entries() {
		if e.Addr == a {
			return e.State
		}
	}
	return 0
}

func (f *fixture) wantLookup(a netip.Addr, mac MAC, ok bool) {
	f.t.Helper()
	if m, k := f.r.Lookup(a); k != ok || m != mac {
		f.t.Fatalf("Lookup(%v) = %v %v, want %v %v", a, m, k, mac, ok)
	}
}

func (f *fixture) wantEvents(want ...Event) {
	f.t.Helper()
	got := f.takeEvents()
	if len(got) != len(want) {
		f.t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			f.t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// arpAnswer is what a Linux real server sends back to our request.
func arpAnswer(t testing.TB, from MAC, rip, tip netip.Addr, v gpVLAN) []byte {
	return gpARP(t, v, dirMAC, OpReply, from, rip, dirMAC, tip)
}

// ndpAnswer is the advertisement answering our solicitation (from dip).
func ndpAnswer(t testing.TB, from MAC, rip, dip netip.Addr, v gpVLAN) []byte {
	s := ndpSpec{v: v, dst: dirMAC, src: from, sip: rip, dip: dip, typ: TypeNeighborAdvertisement,
		flags: FlagSolicited | FlagOverride, target: rip, ll: macp(from)}
	if dip.IsUnspecified() { // we asked from ::, the answer goes to all-nodes
		s.dst, s.dip, s.flags = multicastMAC(allNodes), allNodes, FlagOverride
	}
	return gpNDP(t, s)
}

func TestResolverAnswered(t *testing.T) {
	tests := []struct {
		name   string
		rip    netip.Addr
		noIP   bool
		vlan   VLAN
		answer func(t testing.TB, sip netip.Addr) []byte
	}{
		{name: "IPv4", rip: rs1IP},
		{name: "IPv4 without director IP (probe form)", rip: rs1IP, noIP: true},
		{name: "IPv4 tagged", rip: rs1IP, vlan: VLANID(12)},
		{name: "IPv6", rip: rs1IP6},
		{name: "IPv6 from ::", rip: rs1IP6, noIP: true},
		{name: "IPv6 tagged", rip: rs1IP6, vlan: VLANID(12)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *ResolverConfig) {
				c.VLAN = tt.vlan
				if tt.noIP {
					c.IPv4, c.IPv6 = netip.Addr{}, netip.Addr{}
				}
			})
			if err := f.r.Want(tt.rip); err != nil {
				t.Fatal(err)
			}
			f.wantLookup(tt.rip, MAC{}, false)
			frames := f.tick(t0)
			if len(frames) != 1 {
				t.Fatalf("%d requests, want 1", len(frames))
			}
			d := gpDecode(t, frames[0])
			if tt.vlan.Tagged != (d.vlan != nil) || (d.vlan != nil && d.vlan.VLANIdentifier != tt.vlan.ID()) {
				t.Fatalf("request tag %+v, want %+v", d.vlan, tt.vlan)
			}
			var v gpVLAN
			if tt.vlan.Tagged {
				v = tag(tt.vlan.ID(), 0)
			}
			var answer []byte
			if tt.rip.Is4() {
				sip := dirIP
				if tt.noIP {
					sip = zero4
				}
				a := d.arp
				if MAC(d.eth.DstMAC) != broadcast || a == nil || a.Operation != layers.ARPRequest || MAC(a.SourceHwAddress) != dirMAC ||
					[4]byte(a.SourceProtAddress) != sip.As4() || [4]byte(a.DstProtAddress) != tt.rip.As4() {
					t.Fatalf("request %v: %+v", d.eth.DstMAC, a)
				}
				answer = arpAnswer(t, rs1MAC, tt.rip, sip, v)
			} else {
				sip, sn := dirIP6, solicitedNode(tt.rip)
				if tt.noIP {
					sip = zero6
				}
				if MAC(d.eth.DstMAC) != multicastMAC(sn) || !d.ip6.DstIP.Equal(ip(sn)) || !d.ip6.SrcIP.Equal(ip(sip)) || d.ip6.HopLimit != 255 ||
					d.ns == nil || !d.ns.TargetAddress.Equal(ip(tt.rip)) {
					t.Fatalf("solicitation %v %v -> %v: %+v", d.eth.DstMAC, d.ip6.SrcIP, d.ip6.DstIP, d.ns)
				}
				// RFC 4861: a solicitation from :: carries no source option.
				if ll, ok := llOption(d.ns.Options, layers.ICMPv6OptSourceAddress); ok == tt.noIP || (ok && ll != dirMAC) {
					t.Fatalf("source link-layer option %v %v", ll, ok)
				}
				answer = ndpAnswer(t, rs1MAC, tt.rip, sip, v)
			}
			if !f.r.Handle(answer) {
				t.Fatal("answer not accepted")
			}
			f.wantLookup(tt.rip, rs1MAC, true)
			f.wantEvents(Event{Kind: EventResolved, Addr: tt.rip, MAC: rs1MAC})
			if s := f.state(tt.rip); s != StateReachable {
				t.Fatalf("state %v", s)
			}
			// A duplicate answer is not an answer to anything any more.
			if f.r.Handle(answer) {
				t.Fatal("duplicate answer accepted")
			}
			if st := f.r.Stats(); st.Requests != 1 || st.Accepted != 1 || st.Rejected != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// drive ticks at every deadline Tick returns, up to end, and records what
// went out when.
type sent struct {
	at    time.Duration // since t0
	bcast bool
}

// TestResolverZonedSource: the IPv6 source may be given with its zone
// (fe80::2%eth0, as link-local addresses are written); the answers, to
// fe80::2 on the wire, must still be taken as answers.
func TestResolverZonedSource(t *testing.T) {
	for _, tt := range []struct {
		name string
		ipv6 netip.Addr
	}{
		{"no zone", dirIP6},
		{"zone", dirIP6.WithZone("eth0")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, func(c *ResolverConfig) { c.IPv6 = tt.ipv6 })
			if err := f.r.Want(rs1IP6); err != nil {
				t.Fatal(err)
			}
			if sent := f.tick(t0); len(sent) != 1 {
				t.Fatalf("%d frames sent, want 1 solicitation", len(sent))
			}
			if !f.r.HandleAt(ndpAnswer(t, rs1MAC, rs1IP6, dirIP6, nil), t0) {
				t.Fatal("the real server's advertisement to our address was not taken")
			}
			f.wantLookup(rs1IP6, rs1MAC, true)
		})
	}
}

func (f *fixture) drive(from, end time.Time) (out []sent) {
	f.t.Helper()
	now := from
	for i := 0; i < 1000 && !now.After(end); i++ {
		f.clk.Set(now)
		next, err := f.r.Tick(now)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, fr := range f.rec.take() {
			out = append(out, sent{now.Sub(t0), MAC(fr[0:6]).IsMulticast()})
		}
		if next.IsZero() {
			break
		}
		now = next
	}
	return out
}

func TestResolverUnanswered(t *testing.T) {
	f := newFixture(t, nil)
	f.r.Want(rs1IP)
	got := f.drive(t0, t0.Add(3*time.Second))
	want := []sent{{0, true}, {time.Second, true}, {2 * time.Second, true}}
	if len(got) != len(want) {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("requests %+v, want %+v", got, want)
		}
	}
	f.wantEvents(Event{Kind: EventFailed, Addr: rs1IP})
	if s := f.state(rs1IP); s != StateFailed {
		t.Fatalf("state %v", s)
	}
	f.wantLookup(rs1IP, MAC{}, false)
	// A failed address is re-asked every FailedRetry, and found again.
	if fr := f.tick(t0.Add(3*time.Second + DefaultFailedRetry - 1)); len(fr) != 0 {
		t.Fatal("re-asked before FailedRetry")
	}
	if fr := f.tick(t0.Add(3*time.Second + DefaultFailedRetry)); len(fr) != 1 {
		t.Fatalf("%d requests at FailedRetry", len(fr))
	}
	if !f.r.Handle(arpAnswer(t, rs1MAC, rs1IP, dirIP, nil)) {
		t.Fatal("late answer not accepted")
	}
	f.wantEvents(Event{Kind: EventResolved, Addr: rs1IP, MAC: rs1MAC})
	f.wantLookup(rs1IP, rs1MAC, true)
}

func (f *fixture) resolve(a netip.Addr, mac MAC, at time.Time) {
	f.t.Helper()
	f.r.Want(a)
	f.tick(at)
	var ans []byte
	if a.Is4() {
		ans = arpAnswer(f.t, mac, a, dirIP, nil)
	} else {
		ans = ndpAnswer(f.t, mac, a, dirIP6, nil)
	}
	if !f.r.Handle(ans) {
		f.t.Fatalf("resolve %v: answer refused", a)
	}
	f.takeEvents()
}

func TestResolverRefresh(t *testing.T) {
	for _, rip := range []netip.Addr{rs1IP, rs1IP6} {
		t.Run(rip.String(), func(t *testing.T) {
			f := newFixture(t, nil)
			f.resolve(rip, rs1MAC, t0)
			if fr := f.tick(t0.Add(40*time.Second - 1)); len(fr) != 0 {
				t.Fatal("refreshed before 2/3 of the lifetime")
			}
			fr := f.tick(t0.Add(40 * time.Second))
			if len(fr) != 1 || MAC(fr[0][0:6]) != rs1MAC {
				t.Fatalf("want one refresh unicast to the known MAC, got %d", len(fr))
			}
			var ans []byte
			if rip.Is4() {
				ans = arpAnswer(t, rs1MAC, rip, dirIP, nil)
			} else {
				ans = ndpAnswer(t, rs1MAC, rip, dirIP6, nil)
			}
			if !f.r.Handle(ans) {
				t.Fatal("refresh answer refused")
			}
			f.wantEvents() // nothing changed
			f.wantLookup(rip, rs1MAC, true)
			if fr := f.tick(t0.Add(80*time.Second - 1)); len(fr) != 0 {
				t.Fatal("the refresh did not restart the lifetime")
			}
			if fr := f.tick(t0.Add(80 * time.Second)); len(fr) != 1 {
				t.Fatal("no second refresh")
			}
		})
	}
}

func TestResolverStaleThenFailed(t *testing.T) {
	f := newFixture(t, nil)
	f.resolve(rs1IP, rs1MAC, t0)
	got := f.drive(t0.Add(time.Second), t0.Add(59*time.Second))
	if len(got) != DefaultMaxProbes {
		t.Fatalf("refreshes %+v, want %d", got, DefaultMaxProbes)
	}
	for _, s := range got {
		if s.bcast || s.at < 40*time.Second || s.at >= 60*time.Second {
			t.Fatalf("refresh %+v: want unicast in [40s, 60s)", s)
		}
	}
	if s := f.state(rs1IP); s != StateReachable {
		t.Fatalf("state %v before the lifetime ends", s)
	}
	// Lifetime over: stale, still used, asked by broadcast.
	if fr := f.tick(t0.Add(60 * time.Second)); len(fr) != 1 || !MAC(fr[0][0:6]).IsMulticast() {
		t.Fatalf("stale entry: %d requests", len(fr))
	}
	if s := f.state(rs1IP); s != StateStale {
		t.Fatalf("state %v after the lifetime", s)
	}
	f.wantLookup(rs1IP, rs1MAC, true)
	f.wantEvents()
	got = f.drive(t0.Add(61*time.Second), t0.Add(70*time.Second))
	want := []sent{{61 * time.Second, true}, {62 * time.Second, true}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("stale requests %+v, want %+v", got, want)
	}
	f.wantEvents(Event{Kind: EventFailed, Addr: rs1IP, OldMAC: rs1MAC})
	f.wantLookup(rs1IP, MAC{}, false)
}

// A stale entry that answers becomes reachable again without an event.
func TestResolverStaleRecovers(t *testing.T) {
	f := newFixture(t, nil)
	f.resolve(rs1IP, rs1MAC, t0)
	f.drive(t0.Add(time.Second), t0.Add(60*time.Second))
	if s := f.state(rs1IP); s != StateStale {
		t.Fatalf("state %v", s)
	}
	if !f.r.Handle(arpAnswer(t, rs1MAC, rs1IP, dirIP, nil)) {
		t.Fatal("answer refused")
	}
	if s := f.state(rs1IP); s != StateReachable {
		t.Fatalf("state %v", s)
	}
	f.wantEvents()
}

func TestResolverMACChange(t *testing.T) {
	tests := []struct {
		name     string
		rip      netip.Addr
		claim    func(t testing.TB) []byte // unsolicited claim of rs2MAC
		answerBy MAC
		want     []Event
	}{
		{"gratuitous ARP, confirmed", rs1IP,
			func(t testing.TB) []byte { return gpARP(t, nil, broadcast, OpRequest, rs2MAC, rs1IP, MAC{}, rs1IP) },
			rs2MAC, []Event{{Kind: EventChanged, Addr: rs1IP, MAC: rs2MAC, OldMAC: rs1MAC}}},
		{"gratuitous ARP, refuted by the old MAC", rs1IP,
			func(t testing.TB) []byte { return gpARP(t, nil, broadcast, OpReply, rs2MAC, rs1IP, broadcast, rs1IP) },
			rs1MAC, nil},
		{"unsolicited advertisement, confirmed", rs1IP6,
			func(t testing.TB) []byte {
				return gpNDP(t, ndpSpec{dst: multicastMAC(allNodes), src: rs2MAC, sip: rs1IP6, dip: allNodes,
					typ: TypeNeighborAdvertisement, flags: FlagOverride, target: rs1IP6, ll: macp(rs2MAC)})
			},
			rs2MAC, []Event{{Kind: EventChanged, Addr: rs1IP6, MAC: rs2MAC, OldMAC: rs1MAC}}},
		{"solicitation from the server with a new MAC, confirmed", rs1IP6,
			func(t testing.TB) []byte {
				sn := solicitedNode(dirIP6)
				return gpNDP(t, ndpSpec{dst: multicastMAC(sn), src: rs2MAC, sip: rs1IP6, dip: sn,
					typ: TypeNeighborSolicitation, target: dirIP6, ll: macp(rs2MAC)})
			},
			rs2MAC, []Event{{Kind: EventChanged, Addr: rs1IP6, MAC: rs2MAC, OldMAC: rs1MAC}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.resolve(tt.rip, rs1MAC, t0)
			at := t0.Add(5 * time.Second)
			f.clk.Set(at)
			if f.r.Handle(tt.claim(t)) {
				t.Fatal("unsolicited claim accepted")
			}
			f.wantLookup(tt.rip, rs1MAC, true)
			if st := f.r.Stats(); st.Rejected != 1 {
				t.Fatalf("stats %+v", st)
			}
			// The claim makes the next Tick ask, by broadcast.
			fr := f.tick(at)
			if len(fr) != 1 || !MAC(fr[0][0:6]).IsMulticast() {
				t.Fatalf("want one broadcast check, got %d", len(fr))
			}
			// A flood of claims does not flood requests.
			f.r.Handle(tt.claim(t))
			if fr := f.tick(at); len(fr) != 0 {
				t.Fatalf("claims within RetryInterval sent %d more requests", len(fr))
			}
			var ans []byte
			if tt.rip.Is4() {
				ans = arpAnswer(t, tt.answerBy, tt.rip, dirIP, nil)
			} else {
				ans = ndpAnswer(t, tt.answerBy, tt.rip, dirIP6, nil)
			}
			if !f.r.Handle(ans) {
				t.Fatal("answer to the check refused")
			}
			f.wantEvents(tt.want...)
			f.wantLookup(tt.rip, tt.answerBy, true)
			// The regular refresh schedule continues from the answer.
			if fr := f.tick(at.Add(40*time.Second - 1)); len(fr) != 0 {
				t.Fatal("refresh too early after the check")
			}
		})
	}
}

func TestResolverPoisoning(t *testing.T) {
	type setup int
	const (
		resolved setup = iota // rs1 resolved, nothing outstanding
		asking                // rs1 resolved, a refresh is outstanding
		wanted                // Want(rs1) but no request sent yet
	)
	otherStation := MAC{0x02, 0, 0, 0, 0, 0x77}
	tests := []struct {
		name  string
		setup setup
		frame func(t testing.TB) []byte
		check netip.Addr // address whose Lookup must not change
	}{
		{"unsolicited reply", resolved, func(t testing.TB) []byte { return arpAnswer(t, evilMAC, rs1IP, dirIP, nil) }, rs1IP},
		{"request from the server's IP with another MAC", resolved,
			func(t testing.TB) []byte { return gpARP(t, nil, broadcast, OpRequest, evilMAC, rs1IP, MAC{}, dirIP) }, rs1IP},
		{"reply for an address never wanted", resolved, func(t testing.TB) []byte { return arpAnswer(t, evilMAC, otherIP, dirIP, nil) }, otherIP},
		{"unsolicited advertisement", resolved, func(t testing.TB) []byte { return ndpAnswer(t, evilMAC, rs1IP6, dirIP6, nil) }, rs1IP6},
		{"reply before any request", wanted, func(t testing.TB) []byte { return arpAnswer(t, evilMAC, rs1IP, dirIP, nil) }, rs1IP},
		{"reply to another station's MAC", asking,
			func(t testing.TB) []byte {
				return gpARP(t, nil, broadcast, OpReply, evilMAC, rs1IP, otherStation, dirIP)
			}, rs1IP},
		{"reply to another IP", asking,
			func(t testing.TB) []byte { return gpARP(t, nil, dirMAC, OpReply, evilMAC, rs1IP, dirMAC, otherIP) }, rs1IP},
		{"reply whose Ethernet source is not its sender", asking, func(t testing.TB) []byte {
			b := arpAnswer(t, evilMAC, rs1IP, dirIP, nil)
			copy(b[6:12], otherStation[:])
			return b
		}, rs1IP},
		{"reply with a multicast MAC", asking,
			func(t testing.TB) []byte { return arpAnswer(t, MAC{0x01, 0, 0x5e, 0, 0, 9}, rs1IP, dirIP, nil) }, rs1IP},
		{"request (not a reply) during a refresh", asking,
			func(t testing.TB) []byte { return gpARP(t, nil, dirMAC, OpRequest, evilMAC, rs1IP, dirMAC, dirIP) }, rs1IP},
		{"advertisement without target option", asking, func(t testing.TB) []byte {
			return gpNDP(t, ndpSpec{dst: dirMAC, src: evilMAC, sip: rs1IP6, dip: dirIP6, typ: TypeNeighborAdvertisement,
				flags: FlagSolicited | FlagOverride, target: rs1IP6})
		}, rs1IP6},
		{"advertisement to another address", asking, func(t testing.TB) []byte { return ndpAnswer(t, evilMAC, rs1IP6, routerIP6, nil) }, rs1IP6},
		{"our own frame read back", asking, func(t testing.TB) []byte { return arpAnswer(t, dirMAC, rs1IP, dirIP, nil) }, rs1IP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			var want MAC
			var ok bool
			switch tt.setup {
			case resolved, asking:
				f.resolve(rs1IP, rs1MAC, t0)
				f.resolve(rs1IP6, rs1MAC, t0)
				if tt.check != otherIP {
					want, ok = rs1MAC, true
				}
				if tt.setup == asking {
					f.tick(t0.Add(40 * time.Second)) // refresh: request outstanding
				}
			case wanted:
				f.r.Want(rs1IP)
			}
			if f.r.Handle(tt.frame(t)) {
				t.Fatal("poisoning frame accepted")
			}
			f.wantLookup(tt.check, want, ok)
			f.wantEvents()
		})
	}
}

// TestResolverRefreshFromUnspecified: a director without an IPv6 address
// refreshes by solicitations to the solicited-node group, never unicast
// from :: (RFC 4861 7.1.1 forbids it; Linux drops it as a bad DAD probe).
func TestResolverRefreshFromUnspecified(t *testing.T) {
	f := newFixture(t, func(c *ResolverConfig) { c.IPv6 = netip.Addr{} })
	if err := f.r.Want(rs1IP6); err != nil {
		t.Fatal(err)
	}
	if fr := f.tick(t0); len(fr) != 1 {
		t.Fatalf("%d frames, want a solicitation", len(fr))
	}
	if !f.r.HandleAt(ndpAnswer(t, rs1MAC, rs1IP6, zero6, nil), t0) {
		t.Fatal("answer refused")
	}
	fr := f.tick(t0.Add(40 * time.Second))
	if len(fr) != 1 {
		t.Fatalf("%d frames at the refresh, want 1", len(fr))
	}
	p, err := ParseNDP(fr[0])
	if err != nil {
		t.Fatalf("the refresh is not a valid solicitation: %v", err)
	}
	if p.Dst != solicitedNode(rs1IP6) {
		t.Fatalf("refresh from :: to %v, want the solicited-node group", p.Dst)
	}
}

// TestResolverClaimSoonAfterRequest: a claim of another MAC that comes
// within RetryInterval of a request is checked once that interval is
// over, not left until the next refresh.
func TestResolverClaimSoonAfterRequest(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.r.Want(rs1IP); err != nil {
		t.Fatal(err)
	}
	f.tick(t0)
	if !f.r.HandleAt(arpAnswer(t, rs1MAC, rs1IP, dirIP, nil), t0) {
		t.Fatal("answer refused")
	}
	refresh := t0.Add(40 * time.Second)
	if fr := f.tick(refresh); len(fr) != 1 {
		t.Fatalf("%d frames at the refresh, want 1", len(fr))
	}
	f.r.HandleAt(arpAnswer(t, rs1MAC, rs1IP, dirIP, nil), refresh)
	claim := gpARP(t, nil, broadcast, OpRequest, rs2MAC, rs1IP, MAC{}, rs1IP) // gratuitous: rs1IP at rs2MAC
	f.r.HandleAt(claim, refresh.Add(500*time.Millisecond))
	fr := f.tick(refresh.Add(2 * time.Second))
	if len(fr) != 1 {
		t.Fatalf("%d frames 2 s after the claim, want a broadcast request checking it", len(fr))
	}
	if p, err := ParseARP(fr[0]); err != nil || p.Ethernet.Dst != broadcast || p.TargetIP != rs1IP {
		t.Fatalf("check %+v, %v: want a broadcast request for %v", p, err, rs1IP)
	}
}

func TestResolverStaticAndForget(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.r.Static(rs1IP, rs1MAC); err != nil {
		t.Fatal(err)
	}
	f.wantLookup(rs1IP, rs1MAC, true)
	f.r.Want(rs1IP) // already known: stays static
	if fr := f.tick(t0); len(fr) != 0 {
		t.Fatalf("static entry asked: %d frames", len(fr))
	}
	if f.r.Handle(arpAnswer(t, rs2MAC, rs1IP, dirIP, nil)) {
		t.Fatal("static entry changed by a frame")
	}
	f.wantLookup(rs1IP, rs1MAC, true)
	f.r.Forget(rs1IP)
	f.wantLookup(rs1IP, MAC{}, false)
	if len(f.r.Entries()) != 0 {
		t.Fatal("Forget left an entry")
	}
	f.resolve(rs1IP6, rs1MAC, t0)
	f.r.Forget(rs1IP6)
	f.wantLookup(rs1IP6, MAC{}, false)

	// An event handler may call back into the Resolver.
	f2 := newFixture(t, nil)
	f2.r.cfg.OnEvent = func(e Event) { f2.r.Want(otherIP); f2.r.Lookup(e.Addr) }
	f2.resolve(rs1IP, rs1MAC, t0)
	if f2.state(otherIP) != StateIncomplete {
		t.Fatal("Want from OnEvent did not register")
	}

	for _, bad := range []struct {
		name string
		err  error
	}{
		{"Want zero", f.r.Want(netip.Addr{})},
		{"Want multicast", f.r.Want(allNodes)},
		{"Static zero MAC", f.r.Static(rs1IP, MAC{})},
		{"Static unspecified", f.r.Static(zero4, rs1MAC)},
	} {
		if !errors.Is(bad.err, ErrBadConfig) {
			t.Errorf("%s: %v", bad.name, bad.err)
		}
	}
}

func TestNewResolverErrors(t *testing.T) {
	s := &recorder{}
	for _, c := range []struct {
		name string
		cfg  ResolverConfig
	}{
		{"no MAC", ResolverConfig{Sender: s}},
		{"no sender", ResolverConfig{MAC: dirMAC}},
		{"IPv6 as IPv4", ResolverConfig{MAC: dirMAC, Sender: s, IPv4: dirIP6}},
		{"IPv4 as IPv6", ResolverConfig{MAC: dirMAC, Sender: s, IPv6: dirIP}},
		{"refresh after lifetime", ResolverConfig{MAC: dirMAC, Sender: s, Lifetime: time.Second, RefreshAfter: 2 * time.Second}},
		{"negative", ResolverConfig{MAC: dirMAC, Sender: s, MaxProbes: -1}},
	} {
		if _, err := NewResolver(c.cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestResolverSendErrors(t *testing.T) {
	f := newFixture(t, nil)
	f.rec.err = errors.New("no buffer space")
	f.r.Want(rs1IP)
	f.clk.Set(t0)
	if _, err := f.r.Tick(t0); err == nil {
		t.Fatal("send error not reported")
	}
	if st := f.r.Stats(); st.SendErrors != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestResolverRun(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Run(ctx) }()
	f.r.Want(rs1IP)
	// Let the loop send its requests until the entry fails: three
	// requests, then a failure event, all on the fake clock.
	stepClock(t, f.clk, time.Second, func() bool { return f.state(rs1IP) == StateFailed })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if st := f.r.Stats(); st.Requests != DefaultMaxProbes {
		t.Fatalf("stats %+v", st)
	}
	f.wantEvents(Event{Kind: EventFailed, Addr: rs1IP})
}

func TestResolverAllocs(t *testing.T) {
	f := newFixture(t, nil)
	f.resolve(rs1IP, rs1MAC, t0)
	f.resolve(rs1IP6, rs1MAC, t0)
	reply4 := arpAnswer(t, rs1MAC, rs1IP, dirIP, nil)
	reply6 := ndpAnswer(t, rs1MAC, rs1IP6, dirIP6, nil)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Lookup hit", func() { f.r.Lookup(rs1IP) }},
		{"Lookup miss", func() { f.r.Lookup(otherIP) }},
		{"Lookup IPv6", func() { f.r.Lookup(rs1IP6) }},
		{"Handle accepted ARP reply", func() { f.outstanding(rs1IP); f.r.Handle(reply4) }},
		{"Handle accepted advertisement", func() { f.outstanding(rs1IP6); f.r.Handle(reply6) }},
		{"Handle unsolicited reply", func() { f.r.Handle(reply4) }},
		{"Handle claim", func() { f.r.Handle(arpAnswer(t, evilMAC, rs1IP, dirIP, nil)) }},
		{"Handle unrelated", func() { f.r.Handle(reply4[:20]) }},
	}
	// Frames built outside the measured functions.
	claim := arpAnswer(t, evilMAC, rs1IP, dirIP, nil)
	cases[6].fn = func() { f.r.Handle(claim) }
	for _, c := range cases {
		if a := testing.AllocsPerRun(100, c.fn); a != 0 {
			t.Errorf("%s: %v allocations", c.name, a)
		}
	}
	if st := f.r.Stats(); st.Accepted < 200 {
		t.Fatalf("the accepted path was not measured: %+v", st)
	}
}

// outstanding marks a request as sent for a, as Tick would.
func (f *fixture) outstanding(a netip.Addr) {
	f.r.mu.Lock()
	f.r.entries[a].outstanding = true
	f.r.mu.Unlock()
}

func BenchmarkResolverLookup(b *testing.B) {
	r, err := NewResolver(ResolverConfig{MAC: dirMAC, IPv4: dirIP, Sender: &recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 64 {
		r.Static(netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)}), MAC{2, 0, 0, 0, 1, byte(i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Lookup(rs1IP)
	}
}

func BenchmarkResolverHandle(b *testing.B) {
	r, err := NewResolver(ResolverConfig{MAC: dirMAC, IPv4: dirIP, Sender: &recorder{}})
	if err != nil {
		b.Fatal(err)
	}
	r.Want(rs1IP)
	r.Tick(time.Now())
	reply := arpAnswer(b, rs1MAC, rs1IP, dirIP, nil)
	b.ReportAllocs()
	for b.Loop() {
		r.mu.Lock()
		r.entries[rs1IP].outstanding = true
		r.mu.Unlock()
		r.Handle(reply)
	}
}

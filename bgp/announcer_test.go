package bgp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// fakeSpeaker records what is originated, and can be made to fail.
type fakeSpeaker struct {
	routes map[netip.Prefix]netip.Addr
	log    []string
	fail   error
}

func newFake() *fakeSpeaker { return &fakeSpeaker{routes: map[netip.Prefix]netip.Addr{}} }

func (f *fakeSpeaker) Announce(p netip.Prefix, nh netip.Addr) error {
	if f.fail != nil {
		return f.fail
	}
	f.routes[p] = nh
	f.log = append(f.log, fmt.Sprintf("announce %s via %s", p, nh))
	return nil
}

func (f *fakeSpeaker) Withdraw(p netip.Prefix) error {
	if f.fail != nil {
		return f.fail
	}
	delete(f.routes, p)
	f.log = append(f.log, "withdraw "+p.String())
	return nil
}

func (f *fakeSpeaker) Peers() []PeerStatus {
	return []PeerStatus{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, State: StateEstablished}}
}

// take returns and clears the calls so far.
func (f *fakeSpeaker) take() string {
	s := strings.Join(f.log, "; ")
	f.log = nil
	return s
}

var (
	vip  = netip.MustParseAddr("198.18.2.100")
	vip2 = netip.MustParseAddr("198.18.2.101")
	vip6 = netip.MustParseAddr("2001:2:0:2::100")
	nh4  = netip.MustParseAddr("198.18.0.2")
	nh6  = netip.MustParseAddr("2001:2::2")
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestAnnouncerStateMachine(t *testing.T) {
	f := newFake()
	a := NewAnnouncer(f, AnnouncerConfig{NextHop4: nh4, NextHop6: nh6, MinRealServers: 2, Logger: quiet()})
	steps := []struct {
		name string
		do   func()
		want string // the speaker calls, in order
	}{
		{"nothing before the first report", func() {}, ""},
		{"below the minimum", func() { a.Report(map[netip.Addr]int{vip: 1}) }, ""},
		{"at the minimum", func() { a.Report(map[netip.Addr]int{vip: 2, vip6: 3}) },
			"announce 198.18.2.100/32 via 198.18.0.2; announce 2001:2:0:2::100/128 via 2001:2::2"},
		{"same facts: no calls", func() { a.Report(map[netip.Addr]int{vip: 3, vip6: 3}) }, ""},
		{"a VIP loses servers", func() { a.Report(map[netip.Addr]int{vip: 3, vip6: 1}) }, "withdraw 2001:2:0:2::100/128"},
		{"drain withdraws all", func() { _ = a.Drain(true) }, "withdraw 198.18.2.100/32"},
		{"reports while drained announce nothing", func() { a.Report(map[netip.Addr]int{vip: 5, vip6: 5}) }, ""},
		{"undrain", func() { _ = a.Drain(false) },
			"announce 198.18.2.100/32 via 198.18.0.2; announce 2001:2:0:2::100/128 via 2001:2::2"},
		{"the config drops a VIP, adds another", func() { a.Report(map[netip.Addr]int{vip2: 2, vip6: 2}) },
			"withdraw 198.18.2.100/32; announce 198.18.2.101/32 via 198.18.0.2"},
		{"shutdown withdraws all", a.Shutdown, "withdraw 198.18.2.101/32; withdraw 2001:2:0:2::100/128"},
		{"after shutdown nothing comes back", func() {
			a.Report(map[netip.Addr]int{vip: 9})
			if err := a.Drain(false); !errors.Is(err, ErrStopped) {
				t.Errorf("Drain after Shutdown: %v, want ErrStopped", err)
			}
		}, ""},
	}
	for _, s := range steps {
		s.do()
		if got := f.take(); got != s.want {
			t.Errorf("%s: speaker got %q, want %q", s.name, got, s.want)
		}
	}
	if len(f.routes) != 0 {
		t.Errorf("routes left after shutdown: %v", f.routes)
	}
}

func TestAnnouncerRetriesAfterSpeakerError(t *testing.T) {
	f := newFake()
	a := NewAnnouncer(f, AnnouncerConfig{NextHop4: nh4, Logger: quiet()})
	f.fail = errors.New("speaker down")
	a.Report(map[netip.Addr]int{vip: 1})
	if st := a.Status(); st.VIPs[0].Announced {
		t.Fatalf("announced although the speaker failed: %+v", st)
	}
	f.fail = nil
	a.Report(map[netip.Addr]int{vip: 1})
	if got := f.take(); got != "announce 198.18.2.100/32 via 198.18.0.2" {
		t.Fatalf("retry: %q", got)
	}
	f.fail = errors.New("speaker down")
	a.Shutdown()
	if st := a.Status(); !st.VIPs[0].Announced {
		t.Errorf("a failed withdrawal must leave the VIP marked announced, to retry: %+v", st)
	}
	f.fail = nil
	a.Shutdown()
	if got := f.take(); got != "withdraw 198.18.2.100/32" {
		t.Errorf("withdraw retry: %q", got)
	}
}

func TestAnnouncerStatus(t *testing.T) {
	f := newFake()
	a := NewAnnouncer(f, AnnouncerConfig{NextHop4: nh4, MinRealServers: 1, Logger: quiet()})
	a.Report(map[netip.Addr]int{vip: 2, vip2: 0, vip6: 4}) // no IPv6 next hop
	st := a.Status()
	var got []string
	for _, v := range st.VIPs {
		got = append(got, fmt.Sprintf("%s usable=%d announced=%t why=%q", v.VIP, v.Usable, v.Announced, v.Why))
	}
	want := []string{
		`198.18.2.100 usable=2 announced=true why=""`,
		`198.18.2.101 usable=0 announced=false why="too few usable real servers"`,
		`2001:2:0:2::100 usable=4 announced=false why="no global address of this family on the interface for the next hop"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("status:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(st.Peers) != 1 || !st.Peers[0].Established() || st.MinRealServers != 1 {
		t.Errorf("peers/min: %+v", st)
	}
	_ = a.Drain(true)
	if st := a.Status(); !st.Drained || st.VIPs[0].Why != "drained" {
		t.Errorf("drained status: %+v", st)
	}
}

// TestAnnouncerNextHopFoundLater: a family without a next hop at start
// (an IPv6 address still tentative at boot) gets its VIPs announced once
// SetNextHops gives one; a family that has one keeps it.
func TestAnnouncerNextHopFoundLater(t *testing.T) {
	sp := newFake()
	a := NewAnnouncer(sp, AnnouncerConfig{NextHop4: nh4, Logger: quiet()})
	a.Report(map[netip.Addr]int{vip: 1, vip6: 1})
	if got, want := sp.take(), "announce 198.18.2.100/32 via 198.18.0.2"; got != want {
		t.Fatalf("at start: %q, want %q", got, want)
	}
	a.SetNextHops(netip.MustParseAddr("198.18.0.9"), nh6)
	if got, want := sp.take(), "announce 2001:2:0:2::100/128 via 2001:2::2"; got != want {
		t.Errorf("once the IPv6 next hop is found: %q, want %q", got, want)
	}
	if v4, v6 := a.NextHops(); v4 != nh4 || v6 != nh6 {
		t.Errorf("next hops %v %v, want %v (kept) %v", v4, v6, nh4, nh6)
	}
	a.SetNextHops(netip.Addr{}, netip.Addr{})
	if got := sp.take(); got != "" {
		t.Errorf("nothing new changed routes: %q", got)
	}
}

// TestAnnouncerStatusSaysSpeakerRefused: a VIP that should be announced
// but that the speaker refused is shown not announced with the speaker's
// error as the reason, not with none (drlb ctl -L printed "not announced
// ... (; 3 usable real servers, at least 1 needed)", as if too few).
func TestAnnouncerStatusSaysSpeakerRefused(t *testing.T) {
	f := newFake()
	a := NewAnnouncer(f, AnnouncerConfig{NextHop4: nh4, Logger: quiet()})
	f.fail = errors.New("speaker down")
	a.Report(map[netip.Addr]int{vip: 3})
	st := a.Status()
	if len(st.VIPs) != 1 || st.VIPs[0].Announced || !strings.Contains(st.VIPs[0].Why, "speaker down") {
		t.Fatalf("status after a refused announce: %+v, want not announced, why naming the speaker's error", st.VIPs)
	}
	f.fail = nil
	a.Report(map[netip.Addr]int{vip: 3})
	if st := a.Status(); !st.VIPs[0].Announced || st.VIPs[0].Why != "" {
		t.Errorf("once announced: %+v", st.VIPs)
	}
	f.fail = errors.New("speaker down")
	_ = a.Drain(true) // the withdraw fails: still announced, no refusal shown
	f.fail = nil
	_ = a.Drain(true)
	if st := a.Status(); st.VIPs[0].Announced || st.VIPs[0].Why != "drained" {
		t.Errorf("drained: %+v", st.VIPs)
	}
}

// TestAnnouncerDrainSaysWhatIsLeft: drlb ctl bgp drain answered "every VIP
// withdrawn" although the speaker had refused a withdrawal and the router
// still routed the VIP here; Drain now says which VIPs are left.
func TestAnnouncerDrainSaysWhatIsLeft(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fail    error
		on      bool
		wantErr string // "" = none
	}{
		{"withdrawn", nil, true, ""},
		{"the speaker refused", errors.New("speaker down"), true, "198.18.2.100"},
		{"undrain while the speaker refuses: nothing to say", errors.New("speaker down"), false, ""},
	} {
		f := newFake()
		a := NewAnnouncer(f, AnnouncerConfig{NextHop4: nh4, Logger: quiet()})
		a.Report(map[netip.Addr]int{vip: 1, vip2: 0})
		f.fail = tc.fail
		err := a.Drain(tc.on)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: Drain: %v, want nil", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: Drain: %v, want an error naming %s", tc.name, err, tc.wantErr)
		}
	}
}

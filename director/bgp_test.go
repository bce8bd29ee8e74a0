package director

import (
	"context"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/link"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
)

func TestUsableByVIP(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0x11}
	vip := netip.MustParseAddr("198.18.2.100")
	vip2 := netip.MustParseAddr("198.18.2.101")
	ok := forwarder.RealServerStats{Available: true, MAC: mac, Weight: 1}
	down, unresolved, zero, inhibited, unchecked := ok, ok, ok, ok, ok
	unchecked.Unchecked = true // its check has not answered yet
	down.Available = false
	unresolved.MAC = nil
	zero.Weight = 0
	inhibited.Inhibited = true
	got := usableByVIP([]forwarder.ServiceStats{
		{VIP: vip, Port: 80, RealServers: []forwarder.RealServerStats{ok, ok, down, unresolved, zero, inhibited, unchecked}},
		{VIP: vip, Port: 443, RealServers: []forwarder.RealServerStats{ok, down, unchecked}}, // the fewest counts
		{VIP: vip2, Port: 53, RealServers: []forwarder.RealServerStats{down}},
	})
	if len(got) != 2 || got[vip] != 1 || got[vip2] != 0 {
		t.Errorf("usableByVIP = %v, want %s:1 %s:0", got, vip, vip2)
	}
}

func TestNoARPForRoutedVIPs(t *testing.T) {
	cfg := &config.Config{Services: []config.Service{{VIP: netip.MustParseAddr("198.18.2.100")}}}
	if got := arpVIPs(cfg); len(got) != 1 {
		t.Errorf("without bgp: arpVIPs = %v, want the VIP", got)
	}
	cfg.BGP = &config.BGP{ASN: 65001}
	if got := arpVIPs(cfg); len(got) != 0 {
		t.Errorf("with bgp: arpVIPs = %v, want none: the router must route the VIP, not ARP for it", got)
	}
}

func TestNextHopFor(t *testing.T) {
	pfx := func(ss ...string) (out []netip.Prefix) {
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	peers := []netip.Addr{netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("2001:2:0:1::1")}
	for _, tc := range []struct {
		name  string
		addrs []netip.Prefix
		want  string // "" = none
	}{
		{"the one on a peer's subnet", pfx("198.18.0.3/24", "198.18.1.3/24"), "198.18.1.3"},
		{"else the first", pfx("198.18.0.3/24", "198.18.5.3/24"), "198.18.0.3"},
		{"never link-local", pfx("fe80::3/64", "2001:2:0:1::3/64"), "2001:2:0:1::3"},
		{"link-local only: none", pfx("fe80::3/64"), ""},
		{"global, off the peers' subnets", pfx("fe80::3/64", "2001:2:0:9::3/64"), "2001:2:0:9::3"},
		{"nothing", nil, ""},
	} {
		got := nextHopFor(tc.addrs, peers)
		if want := tc.want; (want == "" && got.IsValid()) || (want != "" && got.String() != want) {
			t.Errorf("%s: nextHopFor = %v, want %q", tc.name, got, want)
		}
	}
}

// TestBGPReloadAddsServiceKeepsVIP: a reload that adds a service (a port)
// to a VIP already configured must not withdraw that VIP while the new
// service's checks have not answered yet: its other ports were being
// served, and every director taking the same reload withdrew it (the VIP
// gone from the router until the probes answered). A new VIP, and a
// director just started, still wait for their checks; a failed check on
// the new service still withdraws.
func TestBGPReloadAddsServiceKeepsVIP(t *testing.T) {
	vip2 := netip.MustParseAddr("198.18.0.101")
	checked := func() []config.RealServer {
		rs := resolvedReals()
		for i := range rs {
			rs[i].Check = &config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, Retries: 1, RetryDelay: time.Second}
		}
		return rs
	}
	web := service(vip, 80, "mh", checked()...)
	tls := service(vip, 443, "mh", checked()...)
	dns := service(vip2, 53, "mh", checked()...)
	rec := &reportRecorder{}
	dirPort, wire := link.Pipe()
	defer wire.Close()
	defer dirPort.Close()
	d, err := New(configOf(web), dirPort, Options{Logger: slog.New(slog.DiscardHandler), Announcer: rec})
	if err != nil {
		t.Fatal(err)
	}
	mark := func(s config.Service, up bool) func() {
		return func() {
			for _, r := range s.RealServers {
				id := forwarder.RealID{Protocol: s.Protocol, VIP: s.VIP, Port: s.Port, Addr: r.Address}
				if err := d.Forwarder().SetHealth(id, *r.Check, up); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	apply := func(c *config.Config) func() {
		return func() {
			if err := d.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, step := range []struct {
		name string
		do   func()
		want map[netip.Addr]int
	}{
		{"just started: checks not answered", func() {}, map[netip.Addr]int{vip: 0}},
		{"checks passed", mark(web, true), map[netip.Addr]int{vip: 2}},
		{"a reload adds :443 and a new VIP", apply(configOf(web, tls, dns)), map[netip.Addr]int{vip: 2, vip2: 0}},
		{"their checks pass", func() { mark(tls, true)(); mark(dns, true)() }, map[netip.Addr]int{vip: 2, vip2: 2}},
		{":443 fails", mark(tls, false), map[netip.Addr]int{vip: 0, vip2: 2}},
		{":443 back", mark(tls, true), map[netip.Addr]int{vip: 2, vip2: 2}},
	} {
		step.do()
		d.reportNow(rec)
		if !maps.Equal(rec.last, step.want) {
			t.Errorf("%s: reported %v, want %v", step.name, rec.last, step.want)
		}
	}
}

// TestBGPNextHopFallback: without a next hop from the interface's fit
// addresses, IPv4 VIPs fall back to Options.IPv4, the interface's first
// IPv4 address, but never to a link-local (or loopback) one: announced
// as the next hop, no router would use it, and it was kept for good
// (watchNextHops only looks for a family with none), so the VIPs never
// got the address DHCP gave a moment later.
func TestBGPNextHopFallback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing answers there: the session only tries
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name           string
		ipv4, nextHop4 netip.Addr
		want           netip.Addr
	}{
		{"the next hop found", a("198.18.0.2"), a("198.18.1.2"), a("198.18.1.2")},
		{"none found: the interface's address", a("198.18.0.2"), netip.Addr{}, a("198.18.0.2")},
		{"none found, link-local only: none", a("169.254.7.9"), netip.Addr{}, netip.Addr{}},
		{"nothing", netip.Addr{}, netip.Addr{}, netip.Addr{}},
	} {
		cfg := configOf(service(vip, 80, "mh", resolvedReals()...))
		cfg.BGP = &config.BGP{ASN: 65001, RouterID: a("198.18.0.2"), HoldTime: 3 * time.Second, MinRealServers: 1,
			Peers: []config.BGPPeer{{Address: a("127.0.0.1"), ASN: 65000, Port: uint16(port)}}}
		opts := Options{IPv4: tc.ipv4, NextHop4: tc.nextHop4}
		b, err := startBGP(context.Background(), cfg, &opts, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v4, _ := b.an.NextHops(); v4 != tc.want {
			t.Errorf("%s: IPv4 next hop %v, want %v", tc.name, v4, tc.want)
		}
		b.stop()
	}
}

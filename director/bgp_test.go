package director

import (
	"net"
	"net/netip"
	"testing"

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

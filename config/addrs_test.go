package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestVIPsAndRealServerAddrs(t *testing.T) {
	a := netip.MustParseAddr
	rs := func(addrs ...string) []RealServer {
		var out []RealServer
		for _, s := range addrs {
			out = append(out, RealServer{Address: a(s), Weight: 1})
		}
		return out
	}
	c := &Config{Services: []Service{
		{VIP: a("198.18.0.100"), Port: 80, Protocol: TCP, RealServers: rs("198.18.0.11", "198.18.0.12")},
		{VIP: a("2001:2::100"), Port: 80, Protocol: TCP, RealServers: rs("2001:2::11")},
		{VIP: a("198.18.0.100"), Port: 53, Protocol: UDP, RealServers: rs("198.18.0.12", "198.18.0.13")},
	}}
	if got, want := c.VIPs(), []netip.Addr{a("198.18.0.100"), a("2001:2::100")}; !slices.Equal(got, want) {
		t.Errorf("VIPs() = %v, want %v", got, want)
	}
	if got, want := c.RealServerAddrs(), []netip.Addr{a("198.18.0.11"), a("198.18.0.12"), a("2001:2::11"), a("198.18.0.13")}; !slices.Equal(got, want) {
		t.Errorf("RealServerAddrs() = %v, want %v", got, want)
	}
	if (&Config{}).VIPs() != nil {
		t.Error("an empty config has VIPs")
	}
}

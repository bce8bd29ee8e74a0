package doctor

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestDefaultGateways: netlink reports a default route as 0.0.0.0/0 (never
// a nil Dst), an ECMP default route has its gateways in MultiPath, and
// 0.0.0.0/1 (a VPN's half of the address space) is not a default route.
func TestDefaultGateways(t *testing.T) {
	ipnet := func(s string) *net.IPNet { _, n, _ := net.ParseCIDR(s); return n }
	routes := []netlink.Route{
		{Dst: ipnet("0.0.0.0/0"), Gw: net.ParseIP("198.18.0.1").To4()},
		{Dst: ipnet("0.0.0.0/0"), MultiPath: []*netlink.NexthopInfo{
			{Gw: net.ParseIP("198.18.0.2").To4()}, {Gw: net.ParseIP("198.18.0.3").To4()},
		}},
		{Dst: ipnet("0.0.0.0/1"), Gw: net.ParseIP("10.8.0.1").To4()},
		{Dst: ipnet("198.18.0.0/24")},
		{Dst: ipnet("::/0"), Gw: net.ParseIP("fe80::1")},
	}
	got := defaultGateways(routes)
	want := []netip.Addr{
		netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("198.18.0.3"), netip.MustParseAddr("fe80::1"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("defaultGateways = %v, want %v", got, want)
	}
}

// TestLinkCarrierOfLo reads lo (only reads): it is up and always has
// carrier, so NoCarrier comes from IFF_LOWER_UP the right way round.
func TestLinkCarrierOfLo(t *testing.T) {
	li, err := System{}.Link("lo")
	if err != nil {
		t.Skip(err)
	}
	if !li.Up || li.NoCarrier {
		t.Errorf("lo: %+v, want up with carrier", li)
	}
}

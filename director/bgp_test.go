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

package config

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestBGPChanged(t *testing.T) {
	base := func() *BGP {
		return &BGP{ASN: 65001, HoldTime: 9 * time.Second, MinRealServers: 1, Line: 10,
			Peers: []BGPPeer{{Address: netip.MustParseAddr("198.18.0.1"), ASN: 65000, Port: 179, Line: 12}}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*BGP)
		change string
	}{
		{"moved in the file", func(b *BGP) { b.Line, b.Peers[0].Line = 14, 16 }, ""},
		{"asn", func(b *BGP) { b.ASN = 65002 }, "asn"},
		{"router_id", func(b *BGP) { b.RouterID = netip.MustParseAddr("198.18.0.9") }, "router_id"},
		{"hold_time", func(b *BGP) { b.HoldTime = 3 * time.Second }, "hold_time"},
		{"min_realservers", func(b *BGP) { b.MinRealServers = 2 }, "min_realservers"},
		{"peer address", func(b *BGP) { b.Peers[0].Address = netip.MustParseAddr("198.18.0.2") }, "peers"},
		{"peer password", func(b *BGP) { b.Peers[0].Password = "x" }, "peers"},
		{"peer added", func(b *BGP) { b.Peers = append(b.Peers, b.Peers[0]) }, "peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.edit(b)
			if got := BGPChanged(base(), b); got != tc.change {
				t.Errorf("BGPChanged = %q, want %q", got, tc.change)
			}
		})
	}
	if got := BGPChanged(nil, base()); got != "bgp" {
		t.Errorf("BGPChanged(nil, block) = %q, want bgp", got)
	}
	if got := BGPChanged(nil, nil); got != "" {
		t.Errorf("BGPChanged(nil, nil) = %q", got)
	}
}

func TestHAChanged(t *testing.T) {
	base := func() *HA {
		return &HA{VRID: 51, Priority: 100, AdvertInterval: time.Second, Preempt: true, Line: 3,
			Sync: &HASync{Peers: []netip.Addr{netip.MustParseAddr("198.18.0.3")}, KeyFile: "/etc/drlb/key", Line: 8}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(*HA)
		change string
	}{
		{"moved in the file", func(h *HA) { h.Line, h.Sync.Line = 5, 10 }, ""},
		// Applied live (the director warns), as the VIPs are.
		{"advert addresses", func(h *HA) { h.Addrs = []netip.Addr{netip.MustParseAddr("198.18.0.100")} }, ""},
		{"vrid", func(h *HA) { h.VRID = 52 }, "vrid"},
		{"priority", func(h *HA) { h.Priority = 150 }, "priority"},
		{"advert_interval", func(h *HA) { h.AdvertInterval = 2 * time.Second }, "advert_interval"},
		{"preempt", func(h *HA) { h.Preempt = false }, "preempt"},
		{"preempt_delay", func(h *HA) { h.PreemptDelay = time.Minute }, "preempt_delay"},
		{"interface", func(h *HA) { h.Interface = "eth1" }, "interface"},
		{"skip_check_adv_addr", func(h *HA) { h.SkipCheckAdvAddr = true }, "skip_check_adv_addr"},
		{"sync removed", func(h *HA) { h.Sync = nil }, "sync"},
		{"sync key", func(h *HA) { h.Sync.KeyFile = "/etc/drlb/key2" }, "sync"},
		{"sync peer", func(h *HA) { h.Sync.Peers[0] = netip.MustParseAddr("198.18.0.4") }, "sync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base()
			tc.edit(h)
			if got := HAChanged(base(), h); got != tc.change {
				t.Errorf("HAChanged = %q, want %q", got, tc.change)
			}
		})
	}
	if got := HAChanged(base(), nil); got != "ha" {
		t.Errorf("HAChanged(block, nil) = %q, want ha", got)
	}
}

// TestChangedCoversEveryField fails when a field is added to BGP, BGPPeer,
// HA or HASync: BGPChanged and HAChanged must compare it (or, like Line
// and Addrs, deliberately not), and this list must name it.
func TestChangedCoversEveryField(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want []string
	}{
		{BGP{}, []string{"ASN", "RouterID", "HoldTime", "MinRealServers", "Peers", "Line"}},
		{BGPPeer{}, []string{"Address", "ASN", "Port", "Password", "Line"}},
		{HA{}, []string{"VRID", "Priority", "AdvertInterval", "Preempt", "PreemptDelay", "Sync", "Interface", "Addrs", "SkipCheckAdvAddr", "Line"}},
		{HASync{}, []string{"Peers", "KeyFile", "Line", "KeyFileLine"}},
	} {
		typ := reflect.TypeOf(tc.v)
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s has fields %v; BGPChanged/HAChanged compare %v: update them and this list", typ.Name(), got, tc.want)
		}
	}
}

package testbed

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestOptionsWithDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Options
		wantErr string
		check   func(Options) bool
	}{
		{"zero value", Options{}, "", func(o Options) bool {
			return o.RealServers == 3 && o.MTU == 1500 && strings.HasPrefix(o.Name, "drlb")
		}},
		{"explicit", Options{RealServers: 5, MTU: 9000, Name: "lab_1.a"}, "", func(o Options) bool {
			return o.RealServers == 5 && o.MTU == 9000 && o.Name == "lab_1.a"
		}},
		{"max real servers", Options{RealServers: MaxRealServers}, "", nil},
		{"too many real servers", Options{RealServers: MaxRealServers + 1}, "RealServers = 90", nil},
		{"negative real servers", Options{RealServers: -1}, "RealServers = -1", nil},
		{"director queues", Options{DirectorQueues: MaxDirectorQueues}, "", func(o Options) bool { return o.DirectorQueues == MaxDirectorQueues }},
		{"too many director queues", Options{DirectorQueues: MaxDirectorQueues + 1}, "DirectorQueues = 17", nil},
		{"negative director queues", Options{DirectorQueues: -1}, "DirectorQueues = -1", nil},
		{"small MTU", Options{MTU: 100}, "MTU = 100", nil},
		{"huge MTU", Options{MTU: 70000}, "MTU = 70000", nil},
		{"slash in name", Options{Name: "a/b"}, `"a/b" has '/'`, nil},
		{"dash in name", Options{Name: "a-b"}, `has '-'`, nil},
		{"dot first", Options{Name: ".."}, "must not start with '.'", nil},
		{"long name", Options{Name: strings.Repeat("x", 33)}, "1..32 characters", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrOptions containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil && !tt.check(got) {
				t.Errorf("got %+v", got)
			}
		})
	}
}

func TestDefaultNamesAreUnique(t *testing.T) {
	a, b := defaultName(), defaultName()
	if a == b || !defaultNameRE.MatchString(a+"-x") {
		t.Errorf("default names %q, %q: want distinct drlb<pid>x<n>", a, b)
	}
}

func TestPlan(t *testing.T) {
	l := plan(Options{Name: "t", RealServers: 12, LANClient: true, MTU: 1500})
	tests := []struct {
		host             *Host
		nsName, iface    string
		v4, v6, mac, brp string
	}{
		{l.Client, "t-client", "eth0", "198.18.1.10", "2001:2:0:1::10", "02:00:c6:12:01:0a", ""},
		{l.Router, "t-router", "eth0", "198.18.0.1", "2001:2::1", "02:00:c6:12:00:01", "router"},
		{l.Director, "t-director", "eth0", "198.18.0.2", "2001:2::2", "02:00:c6:12:00:02", "director"},
		{l.RealServers[0], "t-rs1", "eth0", "198.18.0.11", "2001:2::11", "02:00:c6:12:00:0b", "rs1"},
		{l.RealServers[1], "t-rs2", "eth0", "198.18.0.12", "2001:2::12", "02:00:c6:12:00:0c", "rs2"},
		{l.RealServers[11], "t-rs12", "eth0", "198.18.0.22", "2001:2::22", "02:00:c6:12:00:16", "rs12"},
		{l.LANClient, "t-lanclient", "eth0", "198.18.0.50", "2001:2::50", "02:00:c6:12:00:32", "lanclient"},
	}
	for _, tt := range tests {
		h := tt.host
		if h.NSName != tt.nsName || h.Iface != tt.iface || h.IPv4.String() != tt.v4 ||
			h.IPv6.String() != tt.v6 || h.MAC.String() != tt.mac || h.BridgePort != tt.brp {
			t.Errorf("%s: got %s %s %s %s %s %q, want %s %s %s %s %s %q", h.Name,
				h.NSName, h.Iface, h.IPv4, h.IPv6, h.MAC, h.BridgePort,
				tt.nsName, tt.iface, tt.v4, tt.v6, tt.mac, tt.brp)
		}
	}
	up := l.RouterUplink
	if up.Iface != "eth1" || up.IPv4.String() != "198.18.1.1" || up.IPv6.String() != "2001:2:0:1::1" || up.MAC.String() != "02:01:c6:12:01:01" {
		t.Errorf("router uplink = %+v", up)
	}
	if l.VIP.String() != "198.18.0.100" || l.VIP6.String() != "2001:2::100" {
		t.Errorf("VIPs = %s %s", l.VIP, l.VIP6)
	}
	if g4, g6 := l.gateway(l.Client); g4 != up.IPv4 || g6 != up.IPv6 {
		t.Errorf("client gateway = %s %s", g4, g6)
	}
	if g4, _ := l.gateway(l.RealServers[0]); g4 != netip.MustParseAddr("198.18.0.1") {
		t.Errorf("real-server gateway = %s, want the router", g4)
	}
	if l.Host("rs12") != l.RealServers[11] || l.Host("switch") != l.Switch || l.Host("nope") != nil {
		t.Error("Host lookup by name is wrong")
	}
	if n := len(l.Hosts()); n != 16 {
		t.Errorf("Hosts() has %d hosts, want 16", n)
	}
	// Every address is in the benchmarking ranges and none repeats.
	seen := map[netip.Addr]string{}
	bench4, bench6 := netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:2::/48")
	for _, h := range append(l.Hosts(), &Host{Name: "uplink", Port: up}) {
		for _, a := range []netip.Addr{h.IPv4, h.IPv6} {
			if !bench4.Contains(a) && !bench6.Contains(a) {
				t.Errorf("%s: %s outside the benchmarking ranges", h.Name, a)
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s share %s", h.Name, other, a)
			}
			seen[a] = h.Name
		}
	}
}

package testbed

import (
	"net/netip"
	"testing"
)

func TestPlanDirectorsAndRoutedVIP(t *testing.T) {
	o, err := Options{Name: "t", Directors: 3, RoutedVIP: true}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	l := plan(o)
	if len(l.Directors) != 3 || l.Directors[0] != l.Director {
		t.Fatalf("Directors = %v, want 3 with Director first", l.Directors)
	}
	for i, want := range []string{"198.18.0.2", "198.18.0.3", "198.18.0.4"} {
		d := l.Directors[i]
		if d.IPv4.String() != want || l.Host(d.Name) != d || !l.isDirector(d) {
			t.Errorf("director %d: %s %s", i, d.Name, d.IPv4)
		}
	}
	if l.Directors[1].Name != "director2" || l.Directors[1].NSName != "t-director2" || l.Directors[1].BridgePort != "director2" {
		t.Errorf("second director = %+v", l.Directors[1])
	}
	if n := len(l.lanHosts()); n != 1+3+DefaultRealServers {
		t.Errorf("%d hosts on the LAN", n)
	}
	lan := netip.MustParsePrefix("198.18.0.0/24")
	if l.VIP != netip.MustParseAddr("198.18.2.100") || lan.Contains(l.VIP) || l.VIP6 != netip.MustParseAddr("2001:2:0:2::100") {
		t.Errorf("routed VIPs = %s %s, want off the LAN", l.VIP, l.VIP6)
	}
	if _, err := (Options{Directors: 4}).withDefaults(); err == nil {
		t.Error("Directors: 4 accepted")
	}
}

package config

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ipvsadmView is what ipvsadm rules can express of a service: everything
// but lines, MACs, checks and the maglev table size.
func ipvsadmView(c *Config) []Service {
	out := make([]Service, len(c.Services))
	for i, s := range c.Services {
		s.Line = 0
		s.SchedOptions.TableSize = 0
		rs := make([]RealServer, len(s.RealServers))
		for j, r := range s.RealServers {
			rs[j] = RealServer{Address: r.Address, Weight: r.Weight}
		}
		s.RealServers = rs
		out[i] = s
	}
	return out
}

func equalServices(a, b []Service) bool {
	return slices.EqualFunc(a, b, func(x, y Service) bool {
		return x.VIP == y.VIP && x.Port == y.Port && x.Protocol == y.Protocol &&
			x.Scheduler == y.Scheduler && x.SchedOptions == y.SchedOptions &&
			x.Persistence == y.Persistence && x.PersistenceBits == y.PersistenceBits &&
			slices.EqualFunc(x.RealServers, y.RealServers, func(p, q RealServer) bool {
				return p.Address == q.Address && p.Weight == q.Weight
			})
	})
}

// TestRoundTrip: YAML -> FormatIPVSADM -> Parse gives the same services,
// and formatting again gives the same text.
func TestRoundTrip(t *testing.T) {
	for _, name := range []string{"drlb.yaml", "rules.ipvsadm"} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			text := FormatIPVSADM(c)
			back, err := Parse("formatted", []byte(text))
			if err != nil {
				t.Fatalf("Parse(FormatIPVSADM): %v\n%s", err, text)
			}
			if !equalServices(ipvsadmView(c), ipvsadmView(back)) {
				t.Errorf("round trip changed the services:\nbefore:\n%s\nafter:\n%s", dump(c), dump(back))
			}
			if again := FormatIPVSADM(back); again != text {
				t.Errorf("formatting is not stable:\n%s\nthen:\n%s", text, again)
			}
		})
	}
}

func TestFormatIPVSADM(t *testing.T) {
	c, err := Parse("drlb.yaml", []byte(lines(
		"services:",
		"  - vip: 2001:db8::1",
		"    port: 53",
		"    protocol: udp",
		"    scheduler: sh",
		"    flags: [sh-port, sh-fallback]",
		"    persistence: 90s",
		"    persistence_netmask: 64",
		"    realservers: [{address: '2001:db8::11', weight: 3}]",
		"  - vip: 198.18.0.100",
		"    port: 0",
		"    persistence: 1h",
		"    persistence_netmask: 255.255.252.0",
		"    realservers: [{address: 198.18.0.11, weight: 0}]",
	)))
	if err != nil {
		t.Fatal(err)
	}
	want := lines(
		"-A -u [2001:db8::1]:53 -s sh -p 90 -M 64 -b sh-fallback,sh-port",
		"-a -u [2001:db8::1]:53 -r [2001:db8::11]:53 -g -w 3",
		"-A -t 198.18.0.100:0 -s wlc -p 3600 -M 255.255.252.0",
		"-a -t 198.18.0.100:0 -r 198.18.0.11:0 -g -w 0",
	)
	if got := FormatIPVSADM(c); got != want {
		t.Errorf("FormatIPVSADM:\n%s\nwant:\n%s", got, want)
	}
}

func TestNetmaskRoundTrip(t *testing.T) {
	for bits := 0; bits <= 32; bits++ {
		s := formatNetmask(bits, false)
		got, err := parseNetmask(s, false)
		if err != nil || got != bits {
			t.Errorf("parseNetmask(formatNetmask(%d) = %q) = %d, %v", bits, s, got, err)
		}
	}
	for bits := 0; bits <= 128; bits += 8 {
		s := formatNetmask(bits, true)
		if got, err := parseNetmask(s, true); err != nil || got != bits {
			t.Errorf("parseNetmask(formatNetmask(%d, ipv6) = %q) = %d, %v", bits, s, got, err)
		}
	}
}

// TestIpvsadmCompare: addresses sort as libipvs sorts them, each 32-bit
// word compared by a signed difference, so words 2^31 or more apart come
// the other way round; ipvsadm -Sn lists 192.168.0.1 before 10.0.0.1.
func TestIpvsadmCompare(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		x, y string
		want int
	}{
		{"198.18.0.1", "198.18.0.2", -1},
		{"10.0.0.1", "192.168.0.1", 1},
		{"10.0.0.1", "198.18.0.1", 1},
		{"198.18.0.1", "198.19.0.1", -1},
		{"2001:2::1", "2001:2::2", -1},
		{"2001:2::1", "2001:2::1", 0},
	} {
		if got := IpvsadmCompare(a(tc.x), a(tc.y)); got != tc.want {
			t.Errorf("IpvsadmCompare(%s, %s) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
	c, err := Parse("rules", []byte("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1 -g\n-A -t 192.168.0.1:80 -s rr\n-a -t 192.168.0.1:80 -r 192.168.1.1 -g\n"))
	if err != nil {
		t.Fatal(err)
	}
	saved := SaveIpvsadm(c, true)
	if strings.Index(saved, "192.168.0.1") > strings.Index(saved, "10.0.0.1") {
		t.Errorf("-S order differs from ipvsadm's (192.168.0.1 first):\n%s", saved)
	}
}

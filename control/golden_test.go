package control

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (go test -update rewrites it)\n--- got:\n%s--- want:\n%s", path, got, want)
	}
}

// fixtureConfig is the table of fixtureSnapshot, in config order: not
// ipvsadm's, so the listings have to sort.
const fixtureRules = `-A -t 198.18.0.100:80 -s wrr
-a -t 198.18.0.100:80 -r 198.18.0.12 -w 1
-a -t 198.18.0.100:80 -r 198.18.0.11 -w 3
-a -t 198.18.0.100:80 -r 198.18.0.13 -w 0
-A -u 198.18.0.101:53 -s rr
-a -u 198.18.0.101:53 -r 198.18.0.11 -w 1
-A -t 198.18.0.100:443 -s sh -b sh-port,sh-fallback -p 600 -M 255.255.255.0
-a -t 198.18.0.100:443 -r 198.18.0.11 -w 2
-A -t [2001:2::100]:80 -s mh -p 300 -M 64
-a -t [2001:2::100]:80 -r [2001:2::11] -w 1
-A -t 198.18.0.100:0 -s lc -p
-a -t 198.18.0.100:0 -r 198.18.0.12 -w 1
`

func fixtureConfig(t testing.TB) *config.Config {
	t.Helper()
	c, err := config.Parse("fixture", []byte(fixtureRules))
	if err != nil {
		t.Fatal(err)
	}
	c.MaxConns = 4096
	return c
}

var fixtureTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixtureSnapshot is a director's state with counters of every size (the
// K, M, G and T of ipvsadm's abbreviations), every real server state,
// and a connection table.
func fixtureSnapshot() Snapshot {
	a := netip.MustParseAddr
	return Snapshot{
		Time: fixtureTime, MaxConns: 4096, Frames: map[string]uint64{"new": 3},
		Services: []Service{
			{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 80, Scheduler: "wrr",
				Connections: 123_456_789, InPackets: 5_000_000_000, InBytes: 7_000_000_000_000_000,
				RealServers: []Real{
					{Address: a("198.18.0.12"), MAC: "02:00:00:00:00:12", Weight: 1, State: "up", Active: 5, Inactive: 2, Connections: 99_999_999, InPackets: 100_000_000, InBytes: 999_999_999},
					{Address: a("198.18.0.11"), MAC: "02:00:00:00:00:11", Weight: 3, State: "up", Active: 120_000, Inactive: 7, Connections: 23_456_790, InPackets: 4_900_000_000, InBytes: 99_999_999_999_999},
					{Address: a("198.18.0.13"), Weight: 0, State: "unresolved"},
				}},
			{Protocol: "udp", VIP: a("198.18.0.101"), Port: 53, Scheduler: "rr", Connections: 10, InPackets: 20, InBytes: 1500,
				RealServers: []Real{{Address: a("198.18.0.11"), MAC: "02:00:00:00:00:11", Weight: 1, State: "up", Inactive: 10, Connections: 10, InPackets: 20, InBytes: 1500}}},
			{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 443, Scheduler: "sh", Persistence: "10m0s",
				RealServers: []Real{{Address: a("198.18.0.11"), Weight: 2, State: "down"}}},
			{Protocol: "tcp", VIP: a("2001:2::100"), Port: 80, Scheduler: "mh", Persistence: "5m0s", Connections: 1, InPackets: 3, InBytes: 180,
				RealServers: []Real{{Address: a("2001:2::11"), MAC: "02:00:00:00:00:21", Weight: 1, State: "up", Active: 1, Persistent: 1, Connections: 1, InPackets: 3, InBytes: 180}}},
			{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 0, Scheduler: "lc", Persistence: "5m0s",
				RealServers: []Real{{Address: a("198.18.0.12"), MAC: "02:00:00:00:00:12", Weight: 1, State: "inhibited", Persistent: 4}}},
		},
		ConnEntries: []ConnEntry{
			{Protocol: "tcp", Client: netip.MustParseAddrPort("198.18.1.10:40000"), Virtual: netip.MustParseAddrPort("198.18.0.100:80"), Real: a("198.18.0.11"), State: "ESTABLISHED", Expires: 899.6},
			{Protocol: "tcp", Client: netip.MustParseAddrPort("198.18.1.11:40001"), Virtual: netip.MustParseAddrPort("198.18.0.100:443"), Real: a("198.18.0.11"), State: "SYN_RECV", Expires: 59},
			{Protocol: "tcp", Client: netip.MustParseAddrPort("198.18.1.11:0"), Virtual: netip.MustParseAddrPort("198.18.0.100:443"), Real: a("198.18.0.11"), State: "TEMPLATE", Expires: 600},
			{Protocol: "udp", Client: netip.MustParseAddrPort("198.18.1.12:5353"), Virtual: netip.MustParseAddrPort("198.18.0.101:53"), Real: a("198.18.0.11"), State: "UDP", Expires: 299},
			{Protocol: "tcp", Client: netip.MustParseAddrPort("[2001:2:0:1::10]:41000"), Virtual: netip.MustParseAddrPort("[2001:2::100]:80"), Real: a("2001:2::11"), State: "FIN_WAIT", Expires: 61},
		},
		ConnEntriesOmitted: 2,
	}
}

// fixtureLater is fixtureSnapshot two seconds later, for rates.
func fixtureLater() Snapshot {
	s := fixtureSnapshot()
	s.Time = s.Time.Add(2 * time.Second)
	s.ConnEntries = nil
	svc := &s.Services[0]
	svc.Connections += 2_000
	svc.InPackets += 400_000_000
	svc.InBytes += 300_000_000_000
	svc.RealServers[1].Connections += 2_000
	svc.RealServers[1].InPackets += 400_000_000
	svc.RealServers[1].InBytes += 300_000_000_000
	s.Services[1].Connections += 6
	s.Services[1].InPackets += 6
	s.Services[1].InBytes += 600
	s.Services[1].RealServers[0].Connections += 6
	s.Services[1].RealServers[0].InPackets += 6
	s.Services[1].RealServers[0].InBytes += 600
	return s
}

// TestLegacyListings pins `drlb ctl list`'s own text formats, which the
// ipvsadm listings share code with.
func TestLegacyListings(t *testing.T) {
	s := fixtureSnapshot()
	var b bytes.Buffer
	WriteList(&b, s)
	golden(t, "list.golden", b.String())
	b.Reset()
	WriteStats(&b, s)
	golden(t, "list-stats.golden", b.String())
	b.Reset()
	WriteRate(&b, s, fixtureLater())
	golden(t, "list-rate.golden", b.String())
	b.Reset()
	WriteConnEntries(&b, s)
	golden(t, "list-conns.golden", b.String())
	b.Reset()
	s.KernelForwarded, s.KernelFlows, s.KernelFlowsOut = 5_913, KernelFlowsOn, 12
	// Past a SYN flood the kernel forwarded bare SYNs too (-kernel-syns):
	// their line follows the pressure line, before the kernel flows'.
	s.Overload = &Overload{PressureEpisodes: 3, SynEvicted: 12, SynStateless: 70_000, TrustedClients: 40}
	s.KernelSYNs, s.KernelSYNsState = 65_432, KernelSYNsOn
	WriteList(&b, s)
	golden(t, "list-kernel-flows.golden", b.String())
	b.Reset()
	// Kernel flows held hold the SYNs too: said once, by the kernel
	// flows' line (and below, by the XDP program's).
	s.KernelFlows, s.KernelSYNsState = KernelFlowsHeld, KernelSYNsHeld
	WriteList(&b, s)
	golden(t, "list-kernel-flows-held.golden", b.String())
	b.Reset()
	s.XDP = XDPDetached
	WriteList(&b, s)
	golden(t, "list-xdp-detached.golden", b.String())
	b.Reset()
	// -kernel-syns alone (no kernel flows), held: a line of its own below
	// the kernel SYNs' count.
	s.KernelFlows, s.KernelForwarded, s.KernelFlowsOut, s.XDP = "", 0, 0, ""
	WriteList(&b, s)
	golden(t, "list-kernel-syns-held.golden", b.String())
}

package director

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/link"
)

// lineHolding is the 1-based line of text that first holds s (0: none).
func lineHolding(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("no line holds %q in\n%s", s, text)
	return 0
}

// TestRestartNeededNamesLine: a reload refused because it needs a restart
// places the setting in the file being loaded, as the other reload errors
// do (" (line N)"), the line of the new file (one line lower here: a
// comment is added on top), and says nothing of a line for a setting the
// new file does not set (a default, a removed block). The error still
// wraps ErrRestartNeeded and says what it said.
func TestRestartNeededNamesLine(t *testing.T) {
	dir := t.TempDir()
	keyFile, otherKey := filepath.Join(dir, "sync.key"), filepath.Join(dir, "other.key")
	if err := os.WriteFile(keyFile, append(slices.Clone(syncKey), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherKey, []byte("another shared secret of 32 bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	self := netip.MustParseAddr("198.18.0.2")
	haBase := `interface: lan0
max_conns: 1024
vlan: 10
ha:
  vrid: 51
  priority: 150
  advert_interval: 50ms
  preempt: true
  sync:
    peers: [198.18.0.2, 198.18.0.3]
    key_file: ` + keyFile + `
services:
  - vip: 198.18.0.100
    port: 80
    scheduler: mh
    realservers:
      - {address: 198.18.0.11, mac: "02:00:00:00:00:11"}
`
	const bgpBase = `interface: lan0
bgp:
  asn: 65001
  router_id: 198.18.0.2
  peers:
    - {address: 198.18.0.1, asn: 65000}
    - {address: 198.18.0.5, asn: 65000}
services:
  - vip: 198.18.2.100
    port: 80
    scheduler: mh
    realservers:
      - {address: 198.18.0.11, mac: "02:00:00:00:00:11"}
`
	const noBGP = `interface: lan0
services:
  - vip: 198.18.2.100
    port: 80
    scheduler: mh
    realservers:
      - {address: 198.18.0.11, mac: "02:00:00:00:00:11"}
`
	// haDirector runs with two workers (the persistence netmask needs
	// them), VRRP and sync.
	haDirector := func(t *testing.T, cfg *config.Config) *Director {
		p0, w0 := link.Pipe()
		p1, w1 := link.Pipe()
		t.Cleanup(func() { w0.Close(); w1.Close(); p0.Close(); p1.Close() })
		var n fakeNet
		d, err := New(cfg, p0, Options{Logger: slog.New(slog.DiscardHandler), IPv4: self, VRRP: newFakeVRRP(),
			Sync: n.conn(self), SyncKey: syncKey, ExtraPorts: []link.Port{p1}})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		name     string
		base     string
		director func(*testing.T, *config.Config) *Director
		from, to string // the change: from replaced by to in base
		want     string // in the message, %d the line of the new file holding lineOf
		lineOf   string // "": the new file does not set it, no line said
	}{
		{"interface", haBase, haDirector, "interface: lan0", "interface: lan1", "interface lan0 -> lan1 (line %d)", "interface:"},
		{"max_conns", haBase, haDirector, "max_conns: 1024", "max_conns: 2048", "max_conns 1024 -> 2048 (line %d) (the connection table is sized at start)", "max_conns:"},
		{"max_conns defaulted", haBase, haDirector, "max_conns: 1024\n", "", "max_conns 1024 -> 1048576 (the connection table is sized at start)", ""},
		{"vlan", haBase, haDirector, "vlan: 10", "vlan: 11", "vlan 10 -> 11 (line %d) (the neighbor layer", "vlan:"},
		{"vlan removed", haBase, haDirector, "vlan: 10\n", "", "vlan 10 -> 0 (the neighbor layer", ""},
		{"ha.vrid", haBase, haDirector, "vrid: 51", "vrid: 52", "ha.vrid 51 -> 52 (line %d) (VRRP and sync are set up at start)", "vrid:"},
		{"ha.advert_interval", haBase, haDirector, "advert_interval: 50ms", "advert_interval: 1s", "ha.advert_interval 50ms -> 1s (line %d) (VRRP", "advert_interval:"},
		{"ha.preempt", haBase, haDirector, "preempt: true", "preempt: false", "ha.preempt true -> false (line %d) (VRRP", "preempt:"},
		{"ha.sync peers", haBase, haDirector, "198.18.0.3]", "198.18.0.4]", "198.18.0.4], key_file: " + keyFile + "} (line %d) (VRRP", "peers:"},
		{"ha.sync.key_file", haBase, haDirector, "key_file: " + keyFile, "key_file: " + otherKey,
			"ha.sync.key_file " + otherKey + " (line %d) holds another key than the one in use", "key_file:"},
		{"ha removed", haBase, haDirector, haBase[strings.Index(haBase, "ha:"):strings.Index(haBase, "services:")], "", "the ha: block was added or removed", ""},
		{"first IPv6 VIP", haBase, haDirector, "services:\n", "services:\n  - {vip: \"2001:2::100\", port: 80, scheduler: mh, realservers: [{address: \"2001:2::11\", mac: \"02:00:00:00:00:12\"}]}\n",
			"VIP 2001:2::100 (line %d) is the first of its address family", "2001:2::100"},
		{"persistence netmask", haBase, haDirector, "scheduler: mh\n", "scheduler: mh\n    persistence: 60s\n    persistence_netmask: 24\n",
			"the widest persistence netmask changes from /32 (IPv4) /128 (IPv6) to /24 /128 (line %d): the 2 workers", "- vip: 198.18.0.100"},
		{"bgp.asn", bgpBase, pipeDirector, "asn: 65001", "asn: 65003", "bgp.asn changed (line %d) (the BGP sessions are set up at start)", "asn: 65003"},
		{"bgp.peers", bgpBase, pipeDirector, "198.18.0.5, asn: 65000", "198.18.0.5, asn: 65002", "bgp.peers changed (line %d) (the BGP sessions", "198.18.0.5"},
		{"bgp removed", bgpBase, pipeDirector, bgpBase[strings.Index(bgpBase, "bgp:"):strings.Index(bgpBase, "services:")], "", "the bgp: block was added or removed", ""},
		{"bgp added", noBGP, pipeDirector, "services:", "bgp:\n  asn: 65001\n  peers: [{address: 198.18.0.1, asn: 65000}]\nservices:", "the bgp: block was added or removed (line %d)", "asn: 65001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parse := func(text string) *config.Config { return parseYAML(t, text) }
			d := tc.director(t, parse(tc.base))
			if !strings.Contains(tc.base, tc.from) {
				t.Fatalf("the base file holds no %q", tc.from)
			}
			next := "# reloaded\n" + strings.Replace(tc.base, tc.from, tc.to, 1)
			want := tc.want
			if tc.lineOf != "" {
				want = fmt.Sprintf(tc.want, lineHolding(t, next, tc.lineOf))
			}
			err := d.Apply(parse(next))
			if !errors.Is(err, ErrRestartNeeded) {
				t.Fatalf("Apply: %v, want ErrRestartNeeded", err)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Apply: %v\nwant it to say %q", err, want)
			}
			if tc.lineOf == "" && strings.Contains(err.Error(), "(line") {
				t.Errorf("Apply: %v\nnames a line for a setting the file does not set", err)
			}
		})
	}
}

// parseYAML is text read as the file drlb.yaml, with its lines.
func parseYAML(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("drlb.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestRestartNeededNoLineOfInclude: a restart-needed error about a
// service a keepalived.conf's include defines names no line: its line is
// one of the include, and " (line N)" means the file being loaded.
func TestRestartNeededNoLineOfInclude(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(main, []byte("# main file\n# nothing here\n\n\ninclude vs.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	vs := func(persist string) string {
		return "virtual_server 198.18.0.100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n" + persist +
			" real_server 198.18.0.11 80 {\n  weight 1\n }\n}\n"
	}
	load := func(text string) *config.Config {
		if err := os.WriteFile(filepath.Join(dir, "vs.conf"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(main)
		if err != nil {
			t.Fatal(err)
		}
		for i := range cfg.Services {
			cfg.Services[i].RealServers[0].MAC = rs1MAC
		}
		return cfg
	}
	p0, w0 := link.Pipe()
	p1, w1 := link.Pipe()
	t.Cleanup(func() { w0.Close(); w1.Close(); p0.Close(); p1.Close() })
	d, err := New(load(vs("")), p0, Options{Logger: slog.New(slog.DiscardHandler), ExtraPorts: []link.Port{p1}})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Apply(load(vs(" persistence_timeout 60\n persistence_granularity 255.255.255.0\n")))
	if !errors.Is(err, ErrRestartNeeded) {
		t.Fatalf("Apply: %v, want a restart-needed refusal", err)
	}
	if strings.Contains(err.Error(), "(line") {
		t.Errorf("names a line of %s for a service vs.conf defines: %v", main, err)
	}
}

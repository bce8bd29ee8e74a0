package realserver

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func stepStrings(steps []Step) []string {
	var s []string
	for _, st := range steps {
		s = append(s, st.String())
	}
	return s
}

func TestUpDownRestoresEverything(t *testing.T) {
	f := newFake(t, "eth0")
	f.set(t, "net/ipv4/conf/all/arp_announce", "1") // an odd prior value to restore
	state := filepath.Join(t.TempDir(), "sub", "rs.json")
	c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0", StateFile: state}

	steps, err := Up(f, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sysctl -w net.ipv4.conf.all.arp_ignore=1",
		"sysctl -w net.ipv4.conf.all.arp_announce=2",
		"sysctl -w net.ipv4.conf.eth0.arp_ignore=1",
		"sysctl -w net.ipv4.conf.eth0.arp_announce=2",
		"ip addr add 198.18.0.100/32 dev lo",
	}
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("first Up:\n got %q\nwant %q", got, want)
	}
	if f.get(t, "net/ipv4/conf/eth0/arp_ignore") != "1" || !f.links["lo"][netip.MustParsePrefix("198.18.0.100/32")] {
		t.Error("Up did not configure the host")
	}

	// Second Up: nothing to do, and the record of the original values survives.
	f.calls = nil
	steps, err = Up(f, c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if s.Skipped != "already set" {
			t.Errorf("second Up step %q not marked already set", s)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("second Up changed things: %q", f.calls)
	}

	steps, err = Down(f, c)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"ip addr del 198.18.0.100/32 dev lo",
		"sysctl -w net.ipv4.conf.eth0.arp_announce=0",
		"sysctl -w net.ipv4.conf.eth0.arp_ignore=0",
		"sysctl -w net.ipv4.conf.all.arp_announce=1",
		"sysctl -w net.ipv4.conf.all.arp_ignore=0",
	}
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("Down:\n got %q\nwant %q", got, want)
	}
	if f.get(t, "net/ipv4/conf/all/arp_announce") != "1" || len(f.links["lo"]) != 0 {
		t.Error("Down did not restore the host")
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left behind: %v", err)
	}
}

// TestUpOverridingInterfaces: the kernel uses the larger of "all" and
// the interface's own arp_ignore / arp_announce, so an interface with
// arp_ignore 3 (answers for the VIP on lo) or arp_announce above 2 (acts
// as 0) would undo "all"'s. Up sets those too, whether --iface names one
// or not, and Down puts them back; 8 (answers nothing) is left alone.
func TestUpOverridingInterfaces(t *testing.T) {
	for _, iface := range []string{"", "eth9"} {
		t.Run("iface="+iface, func(t *testing.T) {
			f := newFake(t, "eth0", "eth1", "eth2", "eth9")
			f.set(t, "net/ipv4/conf/eth0/arp_ignore", "3")
			f.set(t, "net/ipv4/conf/eth1/arp_announce", "5")
			f.set(t, "net/ipv4/conf/eth2/arp_ignore", "8")
			f.set(t, "net/ipv4/conf/eth2/arp_announce", "2")
			f.set(t, "net/ipv4/conf/lo/arp_ignore", "3")
			f.set(t, "net/ipv4/conf/default/arp_ignore", "3")
			c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: iface, StateFile: filepath.Join(t.TempDir(), "rs.json")}
			steps, err := Up(f, c)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"sysctl -w net.ipv4.conf.all.arp_ignore=1",
				"sysctl -w net.ipv4.conf.all.arp_announce=2",
			}
			if iface != "" {
				want = append(want, "sysctl -w net.ipv4.conf.eth9.arp_ignore=1", "sysctl -w net.ipv4.conf.eth9.arp_announce=2")
			}
			want = append(want,
				"sysctl -w net.ipv4.conf.eth0.arp_ignore=1",
				"sysctl -w net.ipv4.conf.eth1.arp_announce=2",
				"ip addr add 198.18.0.100/32 dev lo")
			if got := stepStrings(steps); !slices.Equal(got, want) {
				t.Errorf("Up:\n got %q\nwant %q", got, want)
			}
			for path, v := range map[string]string{"eth0/arp_ignore": "1", "eth1/arp_announce": "2", "eth2/arp_ignore": "8", "lo/arp_ignore": "3", "default/arp_ignore": "3"} {
				if got := f.get(t, "net/ipv4/conf/"+path); got != v {
					t.Errorf("after Up %s = %s, want %s", path, got, v)
				}
			}
			if _, err := Down(f, c); err != nil {
				t.Fatal(err)
			}
			for path, v := range map[string]string{"eth0/arp_ignore": "3", "eth1/arp_announce": "5", "all/arp_ignore": "0"} {
				if got := f.get(t, "net/ipv4/conf/"+path); got != v {
					t.Errorf("after Down %s = %s, want %s", path, got, v)
				}
			}
		})
	}
}

func TestUpKeepsPreexistingAddress(t *testing.T) {
	f := newFake(t)
	vip := netip.MustParseAddr("198.18.0.100")
	f.links["lo"][netip.PrefixFrom(vip, 32)] = true
	f.set(t, "net/ipv4/conf/all/arp_ignore", "1")
	c := Config{VIP: vip, StateFile: filepath.Join(t.TempDir(), "s.json")}
	steps, err := Up(f, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"sysctl -w net.ipv4.conf.all.arp_ignore=1 (already set)",
		"sysctl -w net.ipv4.conf.all.arp_announce=2",
		"ip addr add 198.18.0.100/32 dev lo (already set)",
	}
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("Up:\n got %q\nwant %q", got, want)
	}
	steps, err = Down(f, c)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"# 198.18.0.100/32 was on lo before up: left in place",
		"sysctl -w net.ipv4.conf.all.arp_announce=0",
		"sysctl -w net.ipv4.conf.all.arp_ignore=1 (already set)",
	}
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("Down:\n got %q\nwant %q", got, want)
	}
	if !f.links["lo"][netip.PrefixFrom(vip, 32)] {
		t.Error("Down removed an address it did not add")
	}
}

func TestIPv6(t *testing.T) {
	f := newFake(t, "eth0")
	c := Config{VIP: netip.MustParseAddr("2001:2::100"), Iface: "eth0", StateFile: filepath.Join(t.TempDir(), "s.json")}
	steps, err := Up(f, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepStrings(steps); len(got) != 2 || got[0] != "ip addr add 2001:2::100/128 dev lo" || !strings.HasPrefix(got[1], "# IPv6") {
		t.Errorf("Up = %q", got)
	}
	if f.get(t, "net/ipv4/conf/all/arp_ignore") != "0" {
		t.Error("IPv6 Up touched IPv4 sysctls")
	}
	steps, err = Down(f, c)
	if err != nil || len(steps) != 1 || steps[0].String() != "ip addr del 2001:2::100/128 dev lo" {
		t.Errorf("Down = %q, %v", stepStrings(steps), err)
	}
}

func TestDownWithoutState(t *testing.T) {
	f := newFake(t)
	vip := netip.MustParseAddr("198.18.0.100")
	f.links["lo"][netip.PrefixFrom(vip, 32)] = true
	state := filepath.Join(t.TempDir(), "none.json")
	steps, err := Down(f, Config{VIP: vip, StateFile: state})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"# no state file " + state + ": sysctls left as they are", "ip addr del 198.18.0.100/32 dev lo"}
	if got := stepStrings(steps); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	steps, err = Down(f, Config{VIP: vip, StateFile: state})
	if err != nil || steps[len(steps)-1].String() != "ip addr del 198.18.0.100/32 dev lo (already absent)" {
		t.Errorf("second Down = %q, %v", stepStrings(steps), err)
	}
}

// TestSeveralVIPs: with two VIPs up, taking one down leaves ARP
// suppressed for the other, and the last down puts back the values from
// before the first up (the second up found the first's values).
func TestSeveralVIPs(t *testing.T) {
	f := newFake(t, "eth0")
	f.set(t, "net/ipv4/conf/all/arp_announce", "1")
	dir := t.TempDir()
	cfg := func(vip, iface string) Config {
		return Config{VIP: netip.MustParseAddr(vip), Iface: iface, StateFile: filepath.Join(dir, "realserver-"+vip+".json")}
	}
	a, b := cfg("198.18.0.100", "eth0"), cfg("198.18.0.101", "")
	for _, c := range []Config{a, b} {
		if _, err := Up(f, c); err != nil {
			t.Fatal(err)
		}
	}
	suppressed := func() bool {
		return f.get(t, "net/ipv4/conf/all/arp_ignore") == "1" && f.get(t, "net/ipv4/conf/all/arp_announce") == "2"
	}
	steps, err := Down(f, a)
	if err != nil {
		t.Fatal(err)
	}
	if !suppressed() || f.links["lo"][netip.MustParsePrefix("198.18.0.100/32")] {
		t.Fatalf("after down of one of two VIPs: steps %q, ARP suppressed %v", stepStrings(steps), suppressed())
	}
	if got := stepStrings(steps); len(got) != 2 || !strings.Contains(got[1], "VIP 198.18.0.101 still needs them") {
		t.Errorf("Down steps %q", got)
	}
	if _, err := Down(f, b); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"net/ipv4/conf/all/arp_ignore": "0", "net/ipv4/conf/all/arp_announce": "1",
		"net/ipv4/conf/eth0/arp_ignore": "0", "net/ipv4/conf/eth0/arp_announce": "0",
	} {
		if got := f.get(t, path); got != want {
			t.Errorf("after the last down: %s = %s, want %s (as before the first up)", path, got, want)
		}
	}
	if len(f.links["lo"]) != 0 {
		t.Errorf("addresses left on lo: %v", f.links["lo"])
	}
}

// TestDownIgnoresForeignStateFiles: down hands its record only to a
// realserver state file of a VIP still on lo here: not to another JSON
// file in the directory (left untouched), nor to a stale state file or
// one of another network namespace sharing /run/drlb (whose VIP is not
// on this lo); then it restores the sysctls itself.
func TestDownIgnoresForeignStateFiles(t *testing.T) {
	f := newFake(t, "eth0")
	dir := t.TempDir()
	other := filepath.Join(dir, "inventory.json")
	const inventory = `{"vip":"198.18.0.200","owner":"team-a"}`
	stale := filepath.Join(dir, "realserver-198.18.0.201.json")
	for name, data := range map[string]string{other: inventory, stale: `{"vip":"198.18.0.201","added_addr":true,"sysctls":[{"path":"net/ipv4/conf/all/arp_ignore","previous":"0"}]}`} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0", StateFile: filepath.Join(dir, "realserver-198.18.0.100.json")}
	if _, err := Up(f, c); err != nil {
		t.Fatal(err)
	}
	if _, err := Down(f, c); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "net/ipv4/conf/all/arp_ignore"); got != "0" {
		t.Errorf("arp_ignore %s after the only VIP here went down, want 0 restored", got)
	}
	if data, _ := os.ReadFile(other); string(data) != inventory {
		t.Errorf("another JSON file was rewritten: %s", data)
	}
}

// failingSysctl is a system whose sysctls cannot be written (a read-only
// /proc/sys).
type failingSysctl struct{ *fakeSystem }

func (f failingSysctl) WriteSysctl(string, string) error { return errors.New("read-only file system") }

// TestUpSysctlFailsFirst: when ARP cannot be suppressed, Up fails before
// the VIP goes on lo, where this host would answer ARP for it.
func TestUpSysctlFailsFirst(t *testing.T) {
	f := newFake(t, "eth0")
	c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0", StateFile: filepath.Join(t.TempDir(), "s.json")}
	if _, err := Up(failingSysctl{f}, c); err == nil {
		t.Fatal("Up succeeded with sysctls that cannot be written")
	}
	if len(f.links["lo"]) != 0 {
		t.Fatalf("the VIP went on lo with ARP not suppressed: calls %q", f.calls)
	}
}

func TestVLANInterfaceSysctlName(t *testing.T) {
	f := newFake(t, "eth0.100")
	c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0.100", StateFile: filepath.Join(t.TempDir(), "s.json")}
	steps, err := Up(f, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := steps[2].String(); got != "sysctl -w net.ipv4.conf.eth0/100.arp_ignore=1" {
		t.Errorf("VLAN step = %q", got)
	}
	if f.get(t, "net/ipv4/conf/eth0.100/arp_ignore") != "1" {
		t.Error("VLAN interface sysctl not set")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "other.json")
	if err := os.WriteFile(other, []byte(`{"vip":"198.18.0.99"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte(`{"vip":`), 0o644); err != nil {
		t.Fatal(err)
	}
	v := netip.MustParseAddr("198.18.0.100")
	tests := []struct {
		name    string
		c       Config
		wantErr error
		wantMsg string
	}{
		{"no VIP", Config{}, ErrConfig, "--vip is missing"},
		{"unspecified", Config{VIP: netip.IPv4Unspecified()}, ErrConfig, "not a unicast"},
		{"loopback", Config{VIP: netip.MustParseAddr("127.0.0.1")}, ErrConfig, "not a unicast"},
		{"multicast", Config{VIP: netip.MustParseAddr("ff02::1")}, ErrConfig, "not a unicast"},
		{"broadcast", Config{VIP: netip.MustParseAddr("255.255.255.255")}, ErrConfig, "not a unicast"},
		{"mapped", Config{VIP: netip.MustParseAddr("::ffff:198.18.0.100")}, ErrConfig, "write it as 198.18.0.100"},
		{"zone", Config{VIP: netip.MustParseAddr("fe80::1%eth0")}, ErrConfig, "has a zone"},
		{"missing iface", Config{VIP: v, Iface: "eth9"}, ErrConfig, "--iface eth9: no such interface"},
		{"iface lo", Config{VIP: v, Iface: "lo"}, ErrConfig, "--iface lo"},
		{"iface all", Config{VIP: v, Iface: "all"}, ErrConfig, `"all" is not an interface name`},
		{"iface slash", Config{VIP: v, Iface: "a/b"}, ErrConfig, `"a/b" is not an interface name`},
		{"iface too long", Config{VIP: v, Iface: "abcdefghijklmnop"}, ErrConfig, "not an interface name"},
		{"state of another VIP", Config{VIP: v, StateFile: other}, ErrState, "belongs to VIP 198.18.0.99"},
		{"broken state", Config{VIP: v, StateFile: garbage}, ErrState, garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			for _, op := range []func(System, Config) ([]Step, error){Up, Down} {
				if tt.c.Iface != "" && !errors.Is(tt.wantErr, ErrConfig) {
					continue
				}
				_, err := op(f, tt.c)
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("err = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
				}
				if tt.c.Iface != "" {
					break // Down ignores --iface
				}
			}
			if len(f.calls) != 0 {
				t.Errorf("a failed call changed the host: %q", f.calls)
			}
		})
	}
}

func TestMissingSysctl(t *testing.T) {
	f := newFake(t, "eth0")
	os.Remove(filepath.Join(string(f.ProcSys), "net/ipv4/conf/eth0/arp_announce"))
	_, err := Up(f, Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0", StateFile: filepath.Join(t.TempDir(), "s.json")})
	if !errors.Is(err, ErrNoSysctl) || !strings.Contains(err.Error(), "net.ipv4.conf.eth0.arp_announce") {
		t.Errorf("err = %v, want ErrNoSysctl naming the setting", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("Up changed the host before failing: %q", f.calls)
	}
}

func TestSysctlName(t *testing.T) {
	for in, want := range map[string]string{
		"net/ipv4/conf/all/arp_ignore":      "net.ipv4.conf.all.arp_ignore",
		"net/ipv4/conf/eth0.100/arp_ignore": "net.ipv4.conf.eth0/100.arp_ignore",
		"net/ipv4/ip_forward":               "net.ipv4.ip_forward",
	} {
		if got := SysctlName(in); got != want {
			t.Errorf("SysctlName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		in, wantMsg string
	}{
		{`{"vip":"198.18.0.100","added_addr":true,"sysctls":[{"path":"net/ipv4/conf/all/arp_ignore","previous":"0"}]}`, ""},
		{`{"vip":"198.18.0.100","sysctls":[{"path":"net/ipv4/conf/eth0.5/arp_announce","previous":"2"}]}`, ""},
		{`{}`, `missing field "vip"`},
		{`{"vip":"nope"}`, "s.json"},
		{`{"vip":"198.18.0.100","sysctls":[{"path":"kernel/core_pattern","previous":"x"}]}`, "sysctls[0].path"},
		{`{"vip":"198.18.0.100","sysctls":[{"path":"net/ipv4/conf/../../../kernel/arp_ignore","previous":"x"}]}`, "sysctls[0].path"},
		{`{"vip":"198.18.0.100","sysctls":[{"path":"net/ipv4/conf/a/b/arp_ignore","previous":"x"}]}`, "sysctls[0].path"},
	}
	for _, tt := range tests {
		_, err := ParseState("s.json", []byte(tt.in))
		if tt.wantMsg == "" && err != nil || tt.wantMsg != "" && (!errors.Is(err, ErrState) || !strings.Contains(err.Error(), tt.wantMsg)) {
			t.Errorf("ParseState(%s) = %v, want %q", tt.in, err, tt.wantMsg)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"vip":"198.18.0.100","added_addr":true,"sysctls":[{"path":"net/ipv4/conf/all/arp_ignore","previous":"0"}]}`))
	f.Add([]byte(`{"vip":"2001:2::100"}`))
	f.Add([]byte(`{"vip":"198.18.0.100","sysctls":[{"path":"../x","previous":""}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseState("fuzz", data)
		if err != nil {
			return
		}
		for _, ss := range s.Sysctls {
			if !strings.HasPrefix(ss.Path, "net/ipv4/conf/") || strings.Contains(ss.Path, "..") {
				t.Fatalf("accepted path %q", ss.Path)
			}
		}
	})
}

// failingOn is a system where writing one sysctl fails (a container where
// only some settings are writable, an interface going away) or, with
// addFails, where the VIP cannot go on lo.
type failingOn struct {
	*fakeSystem
	path     string
	addFails bool
}

func (f failingOn) WriteSysctl(path, v string) error {
	if path == f.path {
		return errors.New("permission denied")
	}
	return f.fakeSystem.WriteSysctl(path, v)
}

func (f failingOn) AddAddr(dev string, p netip.Prefix) error {
	if f.addFails {
		return errors.New("permission denied")
	}
	return f.fakeSystem.AddAddr(dev, p)
}

// TestUpFailureLeavesNothingHalfApplied: when Up fails part way, the
// sysctls it already wrote go back to how they were and the state file it
// created goes away: the host is as before, not ARP-suppressed host-wide
// for a VIP that never came up.
func TestUpFailureLeavesNothingHalfApplied(t *testing.T) {
	for _, tc := range []failingOn{
		{path: "net/ipv4/conf/eth0/arp_announce"},
		{addFails: true},
	} {
		f := newFake(t, "eth0")
		f.set(t, "net/ipv4/conf/all/arp_announce", "1")
		tc.fakeSystem = f
		state := filepath.Join(t.TempDir(), "s.json")
		c := Config{VIP: netip.MustParseAddr("198.18.0.100"), Iface: "eth0", StateFile: state}
		steps, err := Up(tc, c)
		if err == nil {
			t.Fatalf("%+v: Up succeeded", tc)
		}
		if !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("err = %v, want the cause", err)
		}
		for path, want := range map[string]string{
			"net/ipv4/conf/all/arp_ignore": "0", "net/ipv4/conf/all/arp_announce": "1",
			"net/ipv4/conf/eth0/arp_ignore": "0", "net/ipv4/conf/eth0/arp_announce": "0",
		} {
			if got := f.get(t, path); got != want {
				t.Errorf("failed Up (%+v) left %s = %s, want %s as before: steps %q", tc, path, got, want, stepStrings(steps))
			}
		}
		if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("failed Up left its state file: %v", err)
		}
	}
}

// TestUpFailureOnRerunKeepsRecord: a failing Up after an earlier one (its
// state file there) puts back only what it changed itself and keeps the
// earlier record, so down still restores the values from before the first.
func TestUpFailureOnRerunKeepsRecord(t *testing.T) {
	f := newFake(t, "eth0")
	state := filepath.Join(t.TempDir(), "s.json")
	c := Config{VIP: netip.MustParseAddr("198.18.0.100"), StateFile: state}
	if _, err := Up(f, c); err != nil {
		t.Fatal(err)
	}
	c.Iface = "eth0"
	if _, err := Up(failingOn{fakeSystem: f, path: "net/ipv4/conf/eth0/arp_announce"}, c); err == nil {
		t.Fatal("Up succeeded")
	}
	if got := f.get(t, "net/ipv4/conf/all/arp_ignore"); got != "1" {
		t.Errorf("all/arp_ignore = %s after a failed rerun, want 1 (the first up's)", got)
	}
	if got := f.get(t, "net/ipv4/conf/eth0/arp_ignore"); got != "0" {
		t.Errorf("eth0/arp_ignore = %s after a failed rerun, want 0 put back", got)
	}
	if _, err := Down(f, c); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "net/ipv4/conf/all/arp_ignore"); got != "0" {
		t.Errorf("all/arp_ignore = %s after down, want 0", got)
	}
}

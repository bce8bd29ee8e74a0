package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestParseYAMLCrossService: what one service says about an address must
// agree with what the others say: a real or sorry server is no VIP of the
// director (which answers ARP/NDP for every VIP, or routes it with bgp:),
// and one address has one static MAC.
func TestParseYAMLCrossService(t *testing.T) {
	second := func(extra ...string) string {
		return oneRS + lines(append([]string{
			"  - vip: 198.18.0.101",
			"    port: 80",
		}, extra...)...)
	}
	for _, tc := range []badCase{
		{"a later service's VIP is a real server", oneRS + lines(
			"  - vip: 198.18.0.11",
			"    port: 80",
		), 6, 10, "services[1].vip", "198.18.0.11", "is the address of services[0].realservers[0] (line 5)"},
		{"real server is an earlier service's VIP", second(
			"    realservers:",
			"      - address: 198.18.0.100",
		), 9, 18, "services[1].realservers[0].address", "198.18.0.100", "the VIP of services[0] (line 2)"},
		{"sorry server is another service's VIP", second(
			"    sorry_server: 198.18.0.100",
		), 8, 19, "services[1].sorry_server.address", "198.18.0.100", "the VIP of services[0] (line 2)"},
		{"two MACs for one real server", lines(
			"services:",
			"  - vip: 198.18.0.100",
			"    port: 80",
			"    realservers: [{address: 198.18.0.11, mac: 02:00:00:00:00:11}]",
			"  - vip: 198.18.0.100",
			"    port: 443",
			"    realservers: [{address: 198.18.0.11, mac: 02:00:00:00:00:12}]",
		), 7, 47, "services[1].realservers[0].mac", "02:00:00:00:00:12", "services[0].realservers[0] (line 4) gives 198.18.0.11 the MAC 02:00:00:00:00:11"},
		{"sorry server's MAC differs from the real server's", lines(
			"services:",
			"  - vip: 198.18.0.100",
			"    port: 80",
			"    realservers: [{address: 198.18.0.11, mac: 02:00:00:00:00:11}]",
			"  - vip: 198.18.0.100",
			"    port: 443",
			"    sorry_server: {address: 198.18.0.11, mac: 02:00:00:00:00:12}",
		), 7, 47, "services[1].sorry_server.mac", "02:00:00:00:00:12", "gives 198.18.0.11 the MAC 02:00:00:00:00:11"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
	// What stays allowed: one real server in several services, with its
	// MAC given once, twice alike, or in one of them only.
	for _, in := range []string{
		oneRS + "        mac: 02:00:00:00:00:11\n" + lines(
			"  - vip: 198.18.0.100",
			"    port: 443",
			"    realservers: [{address: 198.18.0.11, mac: '02:00:00:00:00:11'}, {address: 198.18.0.12}]",
			"    sorry_server: {address: 198.18.0.11}",
		),
		oneRS + lines(
			"  - vip: 198.18.0.100",
			"    port: 443",
			"    realservers: [{address: 198.18.0.11, mac: 02:00:00:00:00:11}]",
		),
	} {
		if _, err := Parse("drlb.yaml", []byte(in)); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

// TestParseYAMLMaglevTableSize: an mh table smaller than the real servers
// that take connections is refused where it is written; the forwarder
// refuses to build it, so drlb check said ok and drlb run failed.
func TestParseYAMLMaglevTableSize(t *testing.T) {
	mh := lines(
		"services:",
		"  - vip: 198.18.0.100",
		"    port: 80",
		"    scheduler: mh",
		"    mh_table_size: 3",
		"    realservers:",
		"      - address: 198.18.0.11",
		"      - address: 198.18.0.12",
		"      - address: 198.18.0.13",
	)
	if _, err := Parse("drlb.yaml", []byte(mh)); err != nil {
		t.Fatalf("a table as large as the servers: %v", err)
	}
	// A weight-0 server holds no slot.
	if _, err := Parse("drlb.yaml", []byte(mh+lines("      - address: 198.18.0.14", "        weight: 0"))); err != nil {
		t.Fatalf("a quiesced fourth server: %v", err)
	}
	checkBad(t, "drlb.yaml", badCase{"four servers, three slots", mh + lines("      - address: 198.18.0.14"),
		5, 20, "services[0].mh_table_size", "3", "smaller than the 4 real servers with a weight"})
}

// TestParseYAMLReplyLengthBlame: a bad reply_min_length is named as
// written, not as the reply_max_length the file left at its default.
func TestParseYAMLReplyLengthBlame(t *testing.T) {
	rs := "services[0].realservers[0].check"
	for _, tc := range []badCase{
		{"min above the default max", oneRS + "        check: {type: udp, reply_min_length: 300}\n", 6, 46, rs + ".reply_min_length", "300", "reply lengths must be"},
		{"min negative", oneRS + "        check: {type: udp, reply_min_length: -1}\n", 6, 46, rs + ".reply_min_length", "-1", "reply lengths must be"},
		{"max below min", oneRS + "        check: {type: udp, reply_min_length: 10, reply_max_length: 5}\n", 6, 68, rs + ".reply_max_length", "5", "reply lengths must be"},
		{"max too big", oneRS + "        check: {type: udp, reply_max_length: 70000}\n", 6, 46, rs + ".reply_max_length", "70000", "reply lengths must be"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
}

// TestParseYAMLNotText: bytes YAML does not take (not UTF-8, control
// characters) are refused with their line and column, which the YAML
// library's message lacks.
func TestParseYAMLNotText(t *testing.T) {
	for _, tc := range []badCase{
		{"latin-1 in a comment", oneRS + "# caf\xe9\n", 6, 6, "", "", "not UTF-8 text (byte 0xe9)"},
		{"latin-1 in a value", "interface: eth0\n" + head + "    scheduler: \xffrr\n", 5, 16, "", "", "not UTF-8 text (byte 0xff)"},
		{"control character", oneRS + "        weight: 1\x01\n", 6, 18, "", "", "control character U+0001"},
		{"NUL", oneRS + "        weight: 1\x00\n", 6, 18, "", "", "control character U+0000"},
		{"column in characters", "# é\x7f\n" + oneRS, 1, 4, "", "", "control character U+007F"},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
	// Still read: a BOM, tabs, CRLF, UTF-8 beyond ASCII, and UTF-16 (which
	// the YAML library decodes).
	for _, in := range []string{
		"\ufeff" + oneRS,
		strings.ReplaceAll(oneRS, "\n", "\r\n"),
		"interface:\teth0 # café \U0001F600\n" + oneRS,
		"\xff\xfe" + utf16le("interface: eth0\n"+oneRS),
	} {
		if _, err := Parse("drlb.yaml", []byte(in)); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s { // ASCII only
		b.WriteByte(byte(r))
		b.WriteByte(0)
	}
	return b.String()
}

// TestParseDeterministicClone: a parsed config is parsed the same way
// twice, and its Clone is equal to it and changes no setting that needs a
// restart (the property FuzzParse checks on every input).
func TestParseDeterministicClone(t *testing.T) {
	for _, name := range []string{"drlb.yaml", "rules.ipvsadm"} {
		data := mustRead(t, name)
		// checkCloneAndReparse passes what does not parse (fuzz input):
		// these must, or nothing is checked.
		if _, err := Parse(name, data); err != nil {
			t.Fatalf("testdata/%s: %v", name, err)
		}
		checkCloneAndReparse(t, name, data)
	}
}

// checkCloneAndReparse checks that data, if it parses, parses the same
// twice and clones into an equal config that validates.
func checkCloneAndReparse(t *testing.T, name string, data []byte) {
	t.Helper()
	c, err := Parse(name, data)
	if err != nil {
		return
	}
	again, err := Parse(name, data)
	if err != nil || !reflect.DeepEqual(c, again) {
		t.Fatalf("parsing twice gave different results (%v):\n%s\nthen:\n%s", err, dump(c), dump(again))
	}
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("Clone differs:\n%s\nthen:\n%s", dump(c), dump(d))
	}
	if f := BGPChanged(c.BGP, d.BGP); f != "" {
		t.Fatalf("BGPChanged(c, clone) = %q", f)
	}
	if f := HAChanged(c.HA, d.HA); f != "" {
		t.Fatalf("HAChanged(c, clone) = %q", f)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("the clone does not validate: %v", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLoadBounded: Load reads at most 64 MiB of a file, as the
// keepalived.conf reader does for its includes: a path such as /dev/zero
// (or a capture given by mistake) is refused instead of read into memory
// until the director (reloading on SIGHUP) is killed for it.
func TestLoadBounded(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	done := make(chan error, 1)
	go func() { _, err := Load("/dev/zero"); done <- err }()
	select {
	case err := <-done:
		var e *Error
		if !errors.As(err, &e) || e.File != "/dev/zero" || !strings.Contains(e.Msg, "larger than 64 MiB") {
			t.Fatalf("Load(/dev/zero) = %v, want an *Error saying it is larger than 64 MiB", err)
		}
	case <-time.After(60 * time.Second): // a hang guard, not a speed check
		t.Fatal("Load(/dev/zero) still reading after 60 s")
	}
}

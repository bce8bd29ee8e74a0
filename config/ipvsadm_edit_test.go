package config

import (
	"errors"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// editBase is the table the edit tests start from: a YAML file, so that
// what ipvsadm cannot say (interface, MACs, checks, mh_table_size) is
// there to be kept.
const editBase = `interface: eth0
max_conns: 4096
services:
  - vip: 198.18.0.100
    port: 80
    scheduler: wrr
    realservers:
      - {address: 198.18.0.11, weight: 3, mac: 02:00:00:00:00:11, check: {type: http, path: /healthz}}
      - {address: 198.18.0.12, weight: 1}
  - vip: 198.18.0.101
    port: 53
    protocol: udp
    scheduler: mh
    mh_table_size: 251
    persistence: 60s
    realservers:
      - {address: 198.18.0.11}
`

// editBaseSaved is editBase as ipvsadm -Sn prints it.
const editBaseSaved = `-A -t 198.18.0.100:80 -s wrr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3
-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
-A -u 198.18.0.101:53 -s mh -p 60
-a -u 198.18.0.101:53 -r 198.18.0.11:53 -g -w 1
`

func baseConfig(t testing.TB) *Config {
	t.Helper()
	c, err := Parse("base.yaml", []byte(editBase))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEditIpvsadm(t *testing.T) {
	const svc80 = "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n"
	const svc53 = "-A -u 198.18.0.101:53 -s mh -p 60\n-a -u 198.18.0.101:53 -r 198.18.0.11:53 -g -w 1\n"
	tests := []struct {
		name string
		args string
		want string // SaveIpvsadm(result, true)
	}{
		{"-A defaults: wlc", "-A -t 198.18.0.102:80", svc80 + "-A -t 198.18.0.102:80 -s wlc\n" + svc53},
		{"-A with everything", "-A -t 198.18.0.102:0 -s sh -b sh-port,sh-fallback -p 120 -M 255.255.255.0",
			svc80 + "-A -t 198.18.0.102:0 -s sh -p 120 -M 255.255.255.0 -b sh-fallback,sh-port\n" + svc53},
		{"-A -p without a value is 360 s, as ipvsadm", "-A -t 198.18.0.102:443 -p -s rr", svc80 + "-A -t 198.18.0.102:443 -s rr -p 360\n" + svc53},
		{"-A udp, ipv6", "-A -u [2001:2::100]:53 -s rr", svc80 + svc53 + "-A -u [2001:2::100]:53 -s rr\n"},
		{"-A same address, other protocol", "-A -u 198.18.0.100:80", svc80 + "-A -u 198.18.0.100:80 -s wlc\n" + svc53},
		{"-A port name", "-A -t 198.18.0.102:https", svc80 + "-A -t 198.18.0.102:443 -s wlc\n" + svc53},
		{"long options", "--add-service --tcp-service=198.18.0.102:80 --scheduler lc --persistent 30",
			svc80 + "-A -t 198.18.0.102:80 -s lc -p 30\n" + svc53},
		{"bundled: -At", "-At 198.18.0.102:80 -s rr", svc80 + "-A -t 198.18.0.102:80 -s rr\n" + svc53},
		{"command last", "-t 198.18.0.102:80 -s rr -A", svc80 + "-A -t 198.18.0.102:80 -s rr\n" + svc53},
		{"-E sets the scheduler, keeps the servers", "-E -t 198.18.0.100:80 -s rr -p 10",
			"-A -t 198.18.0.100:80 -s rr -p 10\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" + svc53},
		{"-E without -s or -p: wlc, no persistence, as ipvsadm", "-E -u 198.18.0.101:53",
			svc80 + "-A -u 198.18.0.101:53 -s wlc\n-a -u 198.18.0.101:53 -r 198.18.0.11:53 -g -w 1\n"},
		{"-D", "-D -t 198.18.0.100:80", svc53},
		{"-D the last one leaves an empty table", "-D -u 198.18.0.101:53", svc80},
		{"-a defaults: weight 1", "-a -t 198.18.0.100:80 -r 198.18.0.13", svc80 + "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n" + svc53},
		{"-a -g -w, service port", "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 0", svc80 + "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 0\n" + svc53},
		{"-a bundled value", "-a -t 198.18.0.100:80 -r 198.18.0.13 -w5", svc80 + "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 5\n" + svc53},
		{"-a zero thresholds", "-a -t 198.18.0.100:80 -r 198.18.0.13 -x 0 -y 0", svc80 + "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n" + svc53},
		// ipvsadm reads a threshold with strtol: 00 and +0 are 0 (none).
		{"-a zero thresholds spelt otherwise", "-a -t 198.18.0.100:80 -r 198.18.0.13 -x 00 --l-threshold=+0", svc80 + "-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 1\n" + svc53},
		{"-e sets the weight", "-e -t 198.18.0.100:80 -r 198.18.0.12 -w 7",
			"-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 7\n" + svc53},
		{"-e without -w: weight 1, as ipvsadm", "-e -t 198.18.0.100:80 -r 198.18.0.11:80 -g",
			"-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" + svc53},
		{"-d", "-d -t 198.18.0.100:80 -r 198.18.0.11", "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" + svc53},
		{"-d the last server", "-d -u 198.18.0.101:53 -r 198.18.0.11:53", svc80 + "-A -u 198.18.0.101:53 -s mh -p 60\n"},
		{"-d -g", "-d -t 198.18.0.100:80 -r 198.18.0.11 -g", "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1\n" + svc53},
		{"-C", "-C", ""},
		{"--clear", "--clear", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := baseConfig(t)
			before := dump(base)
			got, err := EditIpvsadm(base, strings.Fields(tc.args))
			if err != nil {
				t.Fatalf("EditIpvsadm(%s): %v", tc.args, err)
			}
			if s := SaveIpvsadm(got, true); s != tc.want {
				t.Errorf("after %s:\n%s\nwant:\n%s", tc.args, s, tc.want)
			}
			if dump(base) != before {
				t.Errorf("EditIpvsadm changed its input:\n%s", dump(base))
			}
			if got.Interface != "eth0" || got.MaxConns != 4096 {
				t.Errorf("interface %q, max_conns %d: the rest of the config must stay", got.Interface, got.MaxConns)
			}
			if len(got.Services) > 0 {
				if err := got.Validate(); err != nil {
					t.Errorf("result does not validate: %v", err)
				}
			}
		})
	}
}

// TestEditIpvsadmKeeps: what ipvsadm cannot say survives the edits that do
// not remove it (MACs, checks, mh_table_size), and the edited config is
// its own copy.
func TestEditIpvsadmKeeps(t *testing.T) {
	base := baseConfig(t)
	got, err := EditIpvsadm(base, []string{"-e", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-w", "9"})
	if err != nil {
		t.Fatal(err)
	}
	rs := got.Services[0].RealServers[0]
	if rs.Weight != 9 || rs.MAC.String() != "02:00:00:00:00:11" || rs.Check == nil || rs.Check.URLs[0].Path != "/healthz" {
		t.Fatalf("-e kept %+v, want weight 9 with its MAC and check", rs)
	}
	rs.MAC[5] = 0x99
	rs.Check.URLs[0].Path = "/changed"
	if b := base.Services[0].RealServers[0]; b.MAC[5] != 0x11 || b.Check.URLs[0].Path != "/healthz" {
		t.Fatal("the edited config shares memory with its input")
	}
	got, err = EditIpvsadm(base, []string{"-E", "-u", "198.18.0.101:53", "-s", "mh", "-p", "60"})
	if err != nil {
		t.Fatal(err)
	}
	if ts := got.Services[1].SchedOptions.TableSize; ts != 251 {
		t.Errorf("-E with the same scheduler: mh_table_size %d, want 251 kept", ts)
	}
	got, err = EditIpvsadm(base, []string{"-E", "-u", "198.18.0.101:53", "-s", "rr"})
	if err != nil {
		t.Fatalf("-E to another scheduler must drop mh_table_size: %v", err)
	}
	if ts := got.Services[1].SchedOptions.TableSize; ts != 0 {
		t.Errorf("mh_table_size %d after -E -s rr", ts)
	}
	// -E keeps what no ipvsadm option says: the sorry server, the drain
	// timeout.
	withSorry := base.Clone()
	withSorry.Services[0].SorryServer = &SorryServer{Address: netip.MustParseAddr("198.18.0.50")}
	withSorry.Services[0].DrainTimeout = 30 * time.Second
	got, err = EditIpvsadm(withSorry, []string{"-E", "-t", "198.18.0.100:80", "-s", "rr"})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.Services[0]; s.SorryServer == nil || s.SorryServer.Address != netip.MustParseAddr("198.18.0.50") || s.DrainTimeout != 30*time.Second {
		t.Errorf("-E -s rr kept sorry server %v and drain_timeout %v, want 198.18.0.50 and 30s", s.SorryServer, s.DrainTimeout)
	}
	got, err = EditIpvsadm(nil, []string{"-A", "-t", "198.18.0.100:80"})
	if err != nil || len(got.Services) != 1 || got.MaxConns != DefaultMaxConns || got.Timeouts != DefaultTimeouts {
		t.Fatalf("edit of a nil config: %v %+v", err, got)
	}
}

func TestEditIpvsadmRefused(t *testing.T) {
	tests := []struct {
		name, args          string
		field, value, msg   string
		errorTextStartsWith string // "" = not checked
	}{
		// What drlb does not do.
		{"masquerading", "-a -t 198.18.0.100:80 -r 198.18.0.13 -m", "-m", "", "drlb does direct routing only", "-m: drlb does direct routing only"},
		{"tunneling", "-a -t 198.18.0.100:80 -r 198.18.0.13 -i -w 1", "-i", "", "drlb does direct routing only", "-i: drlb does direct routing only"},
		{"masquerading on -e", "-e -t 198.18.0.100:80 -r 198.18.0.11 --masquerading", "--masquerading", "", "direct routing only", ""},
		{"gue tunnel", "-a -t 198.18.0.100:80 -r 198.18.0.13 -i --tun-type gue --tun-port 6080", "-i", "", "direct routing only", "-i: drlb does direct routing only"},
		{"tunnel options alone", "-e -t 198.18.0.100:80 -r 198.18.0.11 --tun-port 6080 --tun-remcsum", "--tun-port", "", "direct routing only", ""},
		{"fwmark -A", "-A -f 1 -s rr", "-f", "1", "firewall-mark services are not supported", `-f: "1": firewall-mark`},
		{"fwmark -a", "-a -f 1 -r 198.18.0.11", "-f", "1", "firewall-mark", ""},
		// ipvsadm -S writes an IPv6 fwmark service "-A -f 1 -6": the
		// fwmark is refused, not the -6 that comes with it.
		{"IPv6 fwmark -A", "-A -f 1 -6 -s rr", "-f", "1", "firewall-mark services are not supported", `-f: "1": firewall-mark`},
		{"IPv6 fwmark -a", "-a -f 1 --ipv6 -r [2001:2::11]", "-f", "1", "firewall-mark", ""},
		{"IPv6 fwmark -D", "-D -f 1 -6", "-f", "1", "firewall-mark", ""},
		{"-6 without -f", "-A -t 198.18.0.100:81 -6", "-6", "", "-6 used before -f", ""},
		{"sctp", "-A --sctp-service 198.18.0.100:80", "--sctp-service", "198.18.0.100:80", "SCTP", ""},
		{"threshold", "-a -t 198.18.0.100:80 -r 198.18.0.13 -x 10", "-x", "10", "thresholds", ""},
		{"one-packet", "-A -u 198.18.0.102:53 -o", "-o", "", "one-packet", ""},
		{"persistence engine", "-A -u 198.18.0.102:5060 -p --pe sip", "--pe", "sip", "persistence engines", ""},
		// What is not there, or already is (ipvsadm's words).
		{"-A twice", "-A -t 198.18.0.100:80 -s rr", "-t", "198.18.0.100:80", "Service already exists", `-t: "198.18.0.100:80": Service already exists`},
		{"-E missing", "-E -t 198.18.0.100:81", "-t", "198.18.0.100:81", "No such service", ""},
		{"-D missing", "-D -u 198.18.0.100:80", "-u", "198.18.0.100:80", "No such service", ""},
		{"-a no service", "-a -t 198.18.0.100:81 -r 198.18.0.11", "-t", "198.18.0.100:81", "Service not defined", ""},
		{"-a twice", "-a -t 198.18.0.100:80 -r 198.18.0.11 -w 2", "-r", "198.18.0.11", "Destination already exists", `-r: "198.18.0.11": Destination already exists`},
		{"-e missing", "-e -t 198.18.0.100:80 -r 198.18.0.13 -w 2", "-r", "198.18.0.13", "No such destination", ""},
		{"-e no service", "-e -t 198.18.0.100:81 -r 198.18.0.11", "-t", "198.18.0.100:81", "Service not defined", ""},
		{"-d missing", "-d -t 198.18.0.100:80 -r 198.18.0.13", "-r", "198.18.0.13", "No such destination", ""},
		{"-d no service", "-d -u 198.18.0.100:80 -r 198.18.0.11", "-u", "198.18.0.100:80", "Service not defined", ""},
		// Values, checked as in a rules file and named after the option.
		{"weight too big", "-a -t 198.18.0.100:80 -r 198.18.0.13 -w 65536", "-w", "65536", "must be 0..65535", `-w: "65536": must be 0..65535`},
		{"weight negative", "-e -t 198.18.0.100:80 -r 198.18.0.11 -w -1", "-w", "-1", "must be 0..65535", ""},
		{"weight word", "-a -t 198.18.0.100:80 -r 198.18.0.13 -w heavy", "-w", "heavy", "integer", ""},
		{"scheduler", "-A -t 198.18.0.102:80 -s fastest", "-s", "fastest", "unknown scheduler", ""},
		{"scheduler on -E", "-E -t 198.18.0.100:80 -s fastest", "-s", "fastest", "unknown scheduler", ""},
		{"flags for rr", "-E -t 198.18.0.100:80 -s rr -b sh-port", "-b", "sh-port", "apply only to sh and mh", ""},
		{"persistence", "-A -t 198.18.0.102:80 -p 0", "-p", "0", "persistence timeout must be 1..2678400", ""},
		{"netmask", "-A -t 198.18.0.102:80 -p -M 255.0.255.0", "-M", "255.0.255.0", "not contiguous", ""},
		{"netmask without -p", "-E -t 198.18.0.100:80 -M 255.255.255.0", "-M", "255.255.255.0", "needs persistence", ""},
		{"port 0 without -p", "-A -t 198.18.0.102:0", "-t", "198.18.0.102:0", "needs persistence", ""},
		{"vip loopback", "-A -t 127.0.0.1:80", "-t", "127.0.0.1:80", "loopback", ""},
		{"vip hostname", "-A -t lb.example:80", "-t", "lb.example:80", "not a numeric address", ""},
		{"rs is the vip", "-a -t 198.18.0.100:80 -r 198.18.0.100", "-r", "198.18.0.100", "cannot be the VIP", ""},
		{"rs family", "-a -t 198.18.0.100:80 -r [2001:2::11]", "-r", "[2001:2::11]", "address family differs", ""},
		{"rs port", "-a -t 198.18.0.100:80 -r 198.18.0.13:8080", "-r", "198.18.0.13:8080", "cannot change the port", ""},
		{"rs bad", "-d -t 198.18.0.100:80 -r 198.18.0.300", "-r", "198.18.0.300", "not a numeric", ""},
		// Syntax.
		{"no command", "-t 198.18.0.100:80", "", "", "no command", ""},
		{"two commands", "-A -a -t 198.18.0.100:80", "-a", "", "multiple commands", ""},
		{"no service", "-A -s rr", "-A", "", "needs a service", ""},
		{"no real server", "-a -t 198.18.0.100:80 -w 1", "-a", "", "needs a real server", ""},
		{"-t and -u", "-D -t 198.18.0.100:80 -u 198.18.0.100:80", "-u", "198.18.0.100:80", "not both", ""},
		{"missing value", "-A -t", "-t", "", "needs a value", ""},
		{"option twice", "-A -t 198.18.0.102:80 -s rr -s wrr", "-s", "", "option given twice on one rule (first as -s)", ""},
		{"server option on -A", "-A -t 198.18.0.102:80 -w 1", "-w", "", "belongs to -a", ""},
		{"service option on -a", "-a -t 198.18.0.100:80 -r 198.18.0.13 -s rr", "-s", "", "belongs to -A", ""},
		{"-D takes no scheduler", "-D -t 198.18.0.100:80 -s rr", "-s", "rr", "not an option of -D", ""},
		{"-d takes no weight", "-d -t 198.18.0.100:80 -r 198.18.0.11 -w 1", "-w", "1", "not an option of -d", ""},
		{"-d -m", "-d -t 198.18.0.100:80 -r 198.18.0.11 -m", "-m", "", "drlb does direct routing only", ""},
		{"listing option on a change", "-A -t 198.18.0.102:80 -n", "-n", "", "not an option of -A", ""},
		{"-C takes nothing", "-C -t 198.18.0.100:80", "-C", "-t", "-C takes no options", ""},
		{"unknown option", "-A -t 198.18.0.102:80 --frobnicate", "", "--frobnicate", "unknown or unsupported", ""},
		{"stray word", "-A -t 198.18.0.102:80 rr", "", "rr", "unexpected word", ""},
		{"not a change", "-L -n", "-L", "", "not a change", ""},
		{"value on a command", "--clear=now", "--clear", "", "takes no value", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := baseConfig(t)
			before := dump(base)
			got, err := EditIpvsadm(base, strings.Fields(tc.args))
			if err == nil {
				t.Fatalf("EditIpvsadm(%s) succeeded:\n%s", tc.args, SaveIpvsadm(got, true))
			}
			if got != nil {
				t.Error("a config came back with the error")
			}
			if dump(base) != before {
				t.Error("a refused edit changed the input")
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("%T %v: want an *Error wrapping ErrInvalid", err, err)
			}
			if e.Field != tc.field || e.Value != tc.value || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got field %q value %q msg %q; want %q %q containing %q", e.Field, e.Value, e.Msg, tc.field, tc.value, tc.msg)
			}
			if e.File != "" || e.Line != 0 || e.Column != 0 {
				t.Errorf("a command-line error has no position: %v", err)
			}
			if tc.errorTextStartsWith != "" && !strings.HasPrefix(err.Error(), tc.errorTextStartsWith) {
				t.Errorf("error %q, want it to start with %q", err, tc.errorTextStartsWith)
			}
			// The client's check agrees for what needs no config.
			if cerr := CheckIpvsadm(strings.Fields(tc.args)); cerr != nil && cerr.Error() != err.Error() {
				t.Errorf("CheckIpvsadm: %v, EditIpvsadm: %v", cerr, err)
			}
		})
	}
}

// TestEditIpvsadmBlamesService: what a -a or -e makes wrong with the
// service it lands in is named by the command's -t or -u, with no
// position. It was placed at the service's line in the file the director
// started from, without the file: "3: services[0].mh_table_size: ...".
func TestEditIpvsadmBlamesService(t *testing.T) {
	const small = `interface: eth0
services:
  - vip: 198.18.0.101
    port: 53
    protocol: udp
    scheduler: mh
    mh_table_size: 3
    realservers:
      - {address: 198.18.0.11}
      - {address: 198.18.0.12}
      - {address: 198.18.0.13}
      - {address: 198.18.0.14, weight: 0}
`
	for _, tc := range []struct{ args, want string }{
		{"-a -u 198.18.0.101:53 -r 198.18.0.15 -w 1", `-u: "198.18.0.101:53": a maglev table of 3 slots is smaller than the 4 real servers with a weight`},
		{"-a -u 198.18.0.101:53 -r 198.18.0.16", `-u: "198.18.0.101:53": a maglev table of 3 slots is smaller than the 4 real servers with a weight`},
		{"-e -u 198.18.0.101:53 -r 198.18.0.14 -w 2", `-u: "198.18.0.101:53": a maglev table of 3 slots is smaller than the 4 real servers with a weight`},
		{"--edit-server --udp-service=198.18.0.101:53 -r 198.18.0.14", `--udp-service: "198.18.0.101:53": a maglev table of 3 slots`},
	} {
		t.Run(tc.args, func(t *testing.T) {
			base, err := Parse("drlb.yaml", []byte(small))
			if err != nil {
				t.Fatal(err)
			}
			_, err = EditIpvsadm(base, strings.Fields(tc.args))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v, want an *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(e.Msg, "mh_table_size") {
				t.Errorf("error %q, want it to start with %q and say mh_table_size", err, tc.want)
			}
			if e.File != "" || e.Line != 0 || e.Column != 0 {
				t.Errorf("a command-line error has no position: %v", err)
			}
		})
	}
}

func TestCheckIpvsadm(t *testing.T) {
	for _, args := range []string{
		"-A -t 198.18.0.100:80 -s rr", // exists in a table, not a syntax matter
		"-a -t 198.18.0.100:81 -r 198.18.0.11",
		"-C",
		"-d -t 198.18.0.100:80 -r 198.18.0.11",
	} {
		if err := CheckIpvsadm(strings.Fields(args)); err != nil {
			t.Errorf("CheckIpvsadm(%s): %v", args, err)
		}
	}
	if err := CheckIpvsadm([]string{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-m"}); err == nil || !strings.HasPrefix(err.Error(), "-m: drlb does direct routing only") {
		t.Errorf("CheckIpvsadm -m: %v", err)
	}
}

func TestSplitIpvsadm(t *testing.T) {
	tests := []struct {
		args string
		cmd  string
		opts string // Name=Value ...
	}{
		{"-Ln", "-L", "-n"},
		{"-L -n --stats --exact", "-L", "-n --stats --exact"},
		{"-Lnc", "-L", "-n -c"},
		{"-l --numeric -X --rate", "-L", "--numeric -X --rate"},
		{"-Sn", "-S", "-n"},
		{"--save -n", "-S", "-n"},
		{"-n -L", "-L", "-n"},
		{"-Z", "-Z", ""},
		{"-Z -t 198.18.0.100:80", "-Z", "-t=198.18.0.100:80"},
		{"-L -n -t 198.18.0.100:80", "-L", "-n -t=198.18.0.100:80"},
		{"-A -t 198.18.0.100:80 -p -s rr", "-A", "-t=198.18.0.100:80 -p -s=rr"},
		{"-A -t 198.18.0.100:80 -p 60", "-A", "-t=198.18.0.100:80 -p=60"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -w -1", "-a", "-t=198.18.0.100:80 -r=198.18.0.11 -w=-1"},
		{"-a --tcp-service=198.18.0.100:80 -r 198.18.0.11 -w3", "-a", "--tcp-service=198.18.0.100:80 -r=198.18.0.11 -w=3"},
		{"--set 900 120 300", "--set", "=900 =120 =300"},
		{"--start-daemon master", "--start-daemon", ""},
		{"-h", "-h", ""},
	}
	for _, tc := range tests {
		got, err := SplitIpvsadm(strings.Fields(tc.args))
		if err != nil {
			t.Errorf("SplitIpvsadm(%s): %v", tc.args, err)
			continue
		}
		var opts []string
		for _, o := range got.Options {
			s := o.Name
			if o.Has {
				s += "=" + o.Value
			}
			opts = append(opts, s)
		}
		if got.Command != tc.cmd || strings.Join(opts, " ") != tc.opts {
			t.Errorf("SplitIpvsadm(%s) = %s [%s], want %s [%s]", tc.args, got.Command, strings.Join(opts, " "), tc.cmd, tc.opts)
		}
	}
	for _, tc := range []struct{ args, msg string }{
		{"", "no command"},
		{"-n", "no command"},
		{"-L -S", "multiple commands"},
		{"-L --bogus", "unknown ipvsadm option"},
		{"-L -n -n", "option given twice"},
		{"-L --stats=yes", "takes no value"},
		{"-Z -t", "needs a value"},
	} {
		if _, err := SplitIpvsadm(strings.Fields(tc.args)); err == nil || !strings.Contains(err.Error(), tc.msg) || !errors.Is(err, ErrInvalid) {
			t.Errorf("SplitIpvsadm(%q): %v, want an error containing %q", tc.args, err, tc.msg)
		}
	}
	o := IpvsadmOption{Name: "-u", Canon: "u", Value: "[2001:2::100]:domain", Has: true}
	if p, ap, err := o.Service(); err != nil || p != UDP || ap.String() != "[2001:2::100]:53" {
		t.Errorf("Service: %v %v %v", p, ap, err)
	}
	o = IpvsadmOption{Name: "-f", Canon: "f", Value: "7", Has: true}
	if _, _, err := o.Service(); err == nil || !strings.HasPrefix(err.Error(), `-f: "7": firewall-mark`) {
		t.Errorf("Service -f: %v", err)
	}
}

// TestSaveIpvsadm: the text is ipvsadm-save's (sorted as ipvsadm sorts)
// and Parse reads it back to the same services, with -n and without.
func TestSaveIpvsadm(t *testing.T) {
	for _, name := range []string{"drlb.yaml", "rules.ipvsadm"} {
		c, err := Load(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, numeric := range []bool{true, false} {
			text := SaveIpvsadm(c, numeric)
			suffix := ".save.golden"
			if numeric {
				suffix = ".save-n.golden"
			}
			golden(t, name+suffix, text)
			back, err := Parse("saved", []byte(text))
			if err != nil {
				t.Fatalf("%s: Parse(SaveIpvsadm(numeric=%t)): %v\n%s", name, numeric, err, text)
			}
			sorted := &Config{Services: sortedServices(c.Services)}
			if !equalServices(ipvsadmView(sorted), ipvsadmView(back)) {
				t.Errorf("%s: round trip changed the services:\nbefore:\n%s\nafter:\n%s", name, dump(sorted), dump(back))
			}
			if again := SaveIpvsadm(back, numeric); again != text {
				t.Errorf("%s: saving again is not stable:\n%s\nthen:\n%s", name, text, again)
			}
		}
	}
	base := baseConfig(t)
	if got := SaveIpvsadm(base, true); got != editBaseSaved {
		t.Errorf("SaveIpvsadm:\n%s\nwant:\n%s", got, editBaseSaved)
	}
	if got := SaveIpvsadm(&Config{}, true); got != "" {
		t.Errorf("an empty table saves as %q", got)
	}
}

// TestPortNames: every name printed without -n is one Parse reads, for
// the same port.
func TestPortNames(t *testing.T) {
	for port, name := range portNameOf {
		if p, err := parsePort(name, true); err != nil || p != port {
			t.Errorf("%s: parses as %d, %v; want %d", name, p, err, port)
		}
		if PortName(port) != name {
			t.Errorf("PortName(%d) = %q", port, PortName(port))
		}
	}
	if PortName(0) != "0" || PortName(40000) != "40000" {
		t.Error("an unnamed port prints as its number")
	}
}

// TestSaveIpvsadmOptionOrder: a service line carries its options in the
// order ipvsadm 1.31 prints them (print_service_entry: -s, then -p and
// -M, then -b), so that drlb ctl -S and an ipvsadm-save file compare
// equal line for line.
func TestSaveIpvsadmOptionOrder(t *testing.T) {
	for _, want := range []string{
		"-A -t 198.18.0.100:80 -s sh -p 300 -b sh-fallback,sh-port\n",
		"-A -t 198.18.0.100:0 -s sh -p 600 -M 255.255.255.0 -b sh-fallback\n",
		"-A -u 198.18.0.100:53 -s mh -p 60 -b mh-port\n",
		"-A -t [2001:2::100]:80 -s mh -p 360 -M 64 -b mh-fallback,mh-port\n",
		"-A -t 198.18.0.100:443 -s sh -b sh-port\n",
		"-A -t 198.18.0.100:8080 -s wlc -p 360 -M 255.255.0.0\n",
	} {
		c, err := Parse("rules", []byte(want))
		if err != nil {
			t.Fatalf("Parse(%q): %v", want, err)
		}
		if got := SaveIpvsadm(c, true); got != want {
			t.Errorf("saved as\n%s want (ipvsadm -Sn)\n%s", got, want)
		}
	}
}

package control

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

// TestIpvsadmListings: -L in each of ipvsadm's layouts, byte for byte
// (testdata/ipvsadm-*.golden; go test -update rewrites them).
func TestIpvsadmListings(t *testing.T) {
	cfg := fixtureConfig(t)
	before := fixtureSnapshot()
	after := fixtureLater()
	for _, tc := range []struct {
		golden string
		args   string
	}{
		{"ipvsadm-Ln.golden", "-L -n"},
		{"ipvsadm-L.golden", "-L"},
		{"ipvsadm-Ln-nosort.golden", "-Ln --nosort"},
		{"ipvsadm-Ln-stats.golden", "-L -n --stats"},
		{"ipvsadm-Ln-stats-exact.golden", "-L -n --stats --exact"},
		{"ipvsadm-Ln-rate.golden", "-L -n --rate"},
		{"ipvsadm-Ln-rate-exact.golden", "-l -n --rate -X"},
		{"ipvsadm-Ln-thresholds.golden", "-L -n --thresholds"},
		{"ipvsadm-Ln-persistent-conn.golden", "-L -n --persistent-conn"},
		{"ipvsadm-Ln-tun-info.golden", "-L -n --tun-info"}, // ipvsadm 1.31
		{"ipvsadm-Ln-stats.golden", "-L -n --tun-info --stats"},
		{"ipvsadm-Ln-service.golden", "-L -n -t 198.18.0.100:443"},
		{"ipvsadm-Ln-service6.golden", "-Ln -t [2001:2::100]:http --stats"},
		{"ipvsadm-Lnc.golden", "-Lnc"},
		{"ipvsadm-Lc.golden", "-L -c"},
		{"ipvsadm-Lnc-persistent-conn.golden", "-Lnc --persistent-conn"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			c, err := parseCommand(strings.Fields(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if c.list.conns {
				writeIpvsadmConns(&b, before, c.list)
			} else {
				s, prev := before, (*Snapshot)(nil)
				if c.list.rate {
					s, prev = after, &before
				}
				if err := writeIpvsadmList(&b, s, prev, cfg, c.list); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, tc.golden, b.String())
		})
	}
	var b strings.Builder
	c, _ := parseCommand([]string{"-L", "-n", "-u", "198.18.0.100:80"})
	if err := writeIpvsadmList(&b, before, nil, cfg, c.list); err == nil || err.Error() != `-u: "198.18.0.100:80": No such service` {
		t.Errorf("-L of a missing service: %v", err)
	}
}

func TestLargeNumber(t *testing.T) {
	for _, tc := range []struct {
		n     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{100_000_000, false, "  100000K"},
		{999_999_999, false, "  999999K"},
		{1_000_000_000, false, "    1000M"},
		{99_999_999_999, false, "   99999M"},
		{100_000_000_000, false, "     100G"},
		{100_000_000_000_000, false, "     100T"},
		{99_999_999, true, " 99999999"},
		{100_000_000, true, " 100000000"},
		{7_000_000_000_000_000, true, " 7000000000000000"},
	} {
		if got := largeNumber(tc.n, tc.exact); got != tc.want {
			t.Errorf("largeNumber(%d, %t) = %q, want %q", tc.n, tc.exact, got, tc.want)
		}
	}
}

func TestCheckIpvsadmCommands(t *testing.T) {
	for _, args := range []string{
		"-L", "-Ln", "-l -n --stats --exact", "-L --rate --nosort", "-L -n -c", "-L --sort",
		"-L -t 198.18.0.100:80", "-L --timeout", "-L --daemon", "-Sn", "-S", "-Z", "-h", "-v", "-Lnc --persistent-conn",
		"-Ln --tun-info", "-L --tun-info -c",
		"-A -t 198.18.0.100:80 -s rr", "-C", "-d -t 198.18.0.100:80 -r 198.18.0.11",
	} {
		if err := CheckIpvsadm(strings.Fields(args)); err != nil {
			t.Errorf("CheckIpvsadm(%s): %v", args, err)
		}
	}
	for _, tc := range []struct{ args, msg string }{
		{"-L -c -t 198.18.0.100:80", "-t: \"198.18.0.100:80\": does not mix with -c"},
		{"-L -c --stats", "--stats: does not mix with -c"},
		{"-L --stats -c", "--stats: does not mix with -c"},
		{"-Lnc --persistent-conn --rate", "--rate: does not mix with -c"},
		{"-L -w 3", `-w: "3": not an option of -L`},
		{"-L -f 3", `-f: "3": firewall-mark services are not supported`},
		{"-A -f 1 -6 -s rr", `-f: "1": firewall-mark services are not supported`}, // as ipvsadm -S writes an IPv6 fwmark service
		{"-S --stats", "--stats: not an option of -S"},
		{"-S --tun-info", "--tun-info: not an option of -S"},
		{"-Z -f 1", `-f: "1": firewall-mark services are not supported`},
		{"-Z -t 198.18.0.100:80 -u 198.18.0.100:53", `-u: "198.18.0.100:53": does not mix with another -t or -u`},
		{"-L stray", `"stray": not an option of -L`},
		{"-R", "-R: drlb ctl runs one command at a time"},
		{"--set 900 120 300", "--set: drlb's connection timeouts are in its config file"},
		{"--start-daemon master", "no connection synchronization daemon to start or stop: connections are synchronized between directors by ha.sync"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -m", "-m: drlb does direct routing only"},
		{"-L --bogus", `--bogus": unknown ipvsadm option`},
		{"-L -S", "multiple commands"},
	} {
		err := CheckIpvsadm(strings.Fields(tc.args))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("CheckIpvsadm(%s): %v, want %q", tc.args, err, tc.msg)
		}
	}
}

// fakeEditor is a director's configuration for the endpoint tests.
type fakeEditor struct {
	mu        sync.Mutex
	cfg       *config.Config
	applied   int
	zeroed    int
	zeroedOne []string // ZeroService's services, "tcp 198.18.0.100:80"
	applyErr  error
}

func (f *fakeEditor) Config() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg // EditIpvsadm never changes its input
}

func (f *fakeEditor) Apply(cfg *config.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.applyErr != nil {
		return f.applyErr
	}
	if len(cfg.Services) > 0 {
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	f.cfg = cfg
	f.applied++
	return nil
}

// Edit is Config, edit, then Apply (not atomic: a test fake).
func (f *fakeEditor) Edit(edit func(*config.Config) (*config.Config, error)) error {
	cfg, err := edit(f.Config())
	if err != nil {
		return err
	}
	return f.Apply(cfg)
}

func (f *fakeEditor) ZeroCounters() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zeroed++
}

func (f *fakeEditor) ZeroService(proto config.Protocol, vip netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.cfg.Services {
		if s.Protocol == proto && netip.AddrPortFrom(s.VIP, s.Port) == vip {
			f.zeroedOne = append(f.zeroedOne, proto.String()+" "+vip.String())
			return true
		}
	}
	return false
}

// serveFake serves Handler with ed and reload on a fresh socket.
func serveFake(t *testing.T, ed Editor, reload func() error) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "drlb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	take := func(conns bool) Snapshot {
		s := fixtureSnapshot()
		if !conns {
			s.ConnEntries, s.ConnEntriesOmitted = nil, 0
		}
		return s
	}
	go func() { done <- Serve(ctx, ln, Handler(take, ed, reload)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return path
}

func TestIpvsadmEndpoint(t *testing.T) {
	saved := rateInterval
	rateInterval = 10 * time.Millisecond
	defer func() { rateInterval = saved }()
	ed := &fakeEditor{cfg: fixtureConfig(t)}
	path := serveFake(t, ed, nil)
	ctl := func(args string) Result {
		t.Helper()
		res, err := Ipvsadm(context.Background(), path, strings.Fields(args))
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		return res
	}
	// Changes: applied whole, or refused with nothing applied.
	for _, args := range []string{
		"-A -t 198.18.0.102:80 -s rr",
		"-a -t 198.18.0.102:80 -r 198.18.0.11 -g -w 2",
		"-e -t 198.18.0.100:80 -r 198.18.0.13 -w 4",
		"-d -t 198.18.0.100:80 -r 198.18.0.12",
	} {
		if res := ctl(args); res.Exit != 0 || res.Output != "" || res.Error != "" {
			t.Fatalf("%s: %+v", args, res)
		}
	}
	if ed.applied != 4 {
		t.Fatalf("%d changes applied, want 4", ed.applied)
	}
	for _, tc := range []struct{ args, msg string }{
		{"-a -t 198.18.0.102:80 -r 198.18.0.12 -m", "-m: drlb does direct routing only"},
		{"-A -t 198.18.0.102:80", `-t: "198.18.0.102:80": Service already exists`},
		{"-a -t 198.18.0.102:80 -r 198.18.0.12 -w 70000", `-w: "70000": must be 0..65535`},
		{"-e -t 198.18.0.102:80 -r 198.18.0.99", `-r: "198.18.0.99": No such destination`},
		{"-A -f 1", `-f: "1": firewall-mark services are not supported`},
		{"-L --bogus", `"--bogus": unknown ipvsadm option`},
	} {
		res := ctl(tc.args)
		if res.Exit != 2 || !strings.HasPrefix(res.Error, tc.msg) || res.Output != "" {
			t.Errorf("%s: %+v, want exit 2 and an error starting %q", tc.args, res, tc.msg)
		}
	}
	if ed.applied != 4 {
		t.Fatalf("a refused change was applied (%d applies)", ed.applied)
	}
	want := "-A -t 198.18.0.100:0 -s lc -p 360\n" +
		"-a -t 198.18.0.100:0 -r 198.18.0.12:0 -g -w 1\n" +
		"-A -t 198.18.0.100:80 -s wrr\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3\n" +
		"-a -t 198.18.0.100:80 -r 198.18.0.13:80 -g -w 4\n" +
		"-A -t 198.18.0.100:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port\n" +
		"-a -t 198.18.0.100:443 -r 198.18.0.11:443 -g -w 2\n" +
		"-A -t 198.18.0.102:80 -s rr\n" +
		"-a -t 198.18.0.102:80 -r 198.18.0.11:80 -g -w 2\n" +
		"-A -u 198.18.0.101:53 -s rr\n" +
		"-a -u 198.18.0.101:53 -r 198.18.0.11:53 -g -w 1\n" +
		"-A -t [2001:2::100]:80 -s mh -p 300 -M 64\n" +
		"-a -t [2001:2::100]:80 -r [2001:2::11]:80 -g -w 1\n"
	if res := ctl("-S -n"); res.Exit != 0 || res.Output != want {
		t.Errorf("-S -n after the changes:\n%s\nwant:\n%s", res.Output, want)
	}
	if res := ctl("-Sn"); res.Output != want {
		t.Error("-Sn differs from -S -n")
	}
	if res := ctl("--save"); !strings.Contains(res.Output, "-A -t 198.18.0.100:http -s wrr\n") {
		t.Errorf("--save without -n names ports:\n%s", res.Output)
	}
	// Listings.
	if res := ctl("-L -n"); res.Exit != 0 || !strings.HasPrefix(res.Output, "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n") ||
		!strings.Contains(res.Output, "TCP  198.18.0.100:443 sh (sh-fallback,sh-port) persistent 600 mask 255.255.255.0\n") {
		t.Errorf("-L -n:\n%s", res.Output)
	}
	if res := ctl("-L -n --rate"); res.Exit != 0 || !strings.Contains(res.Output, "      CPS    InPPS") {
		t.Errorf("-L -n --rate: %+v", res)
	}
	if res := ctl("-Lnc"); res.Exit != 0 || !strings.Contains(res.Output, "TCP 14:59  ESTABLISHED 198.18.1.10:40000  198.18.0.100:80    198.18.0.11:80\n") ||
		!strings.Contains(res.Error, "2 more connection entries not listed") {
		t.Errorf("-Lnc: %+v", res)
	}
	if res := ctl("-L --timeout"); res.Output != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("-L --timeout: %+v", res)
	}
	if res := ctl("-Z"); res.Exit != 0 || ed.zeroed != 1 {
		t.Errorf("-Z: %+v, zeroed %d", res, ed.zeroed)
	}
	// One service, as ipvsadm -Z -t VIP:PORT; a missing one fails as
	// ipvsadm's does (exit 1, No such service), zeroing nothing.
	if res := ctl("-Z -t 198.18.0.100:80"); res.Exit != 0 || ed.zeroed != 1 || !slices.Equal(ed.zeroedOne, []string{"tcp 198.18.0.100:80"}) {
		t.Errorf("-Z -t: %+v, zeroed %d, services %v", res, ed.zeroed, ed.zeroedOne)
	}
	if res := ctl("-Z -u 198.18.0.100:80"); res.Exit != 1 || res.Error != `-u: "198.18.0.100:80": No such service` || len(ed.zeroedOne) != 1 || ed.zeroed != 1 {
		t.Errorf("-Z -u of no service: %+v, zeroed %d, services %v", res, ed.zeroed, ed.zeroedOne)
	}
	for _, args := range []string{"-Z -t 198.18.0.100:80 -t 198.18.0.100:443", "-Z -f 1"} {
		if res := ctl(args); res.Exit != 2 || len(ed.zeroedOne) != 1 {
			t.Errorf("%s: %+v, want refused", args, res)
		}
	}
	// A running director serves at least one service: -C (and the -D
	// of the last service) is refused, saying why, and changes nothing.
	if res := ctl("-C"); res.Exit != 2 || !strings.Contains(res.Error, "-C: the table would be empty") || len(ed.cfg.Services) == 0 {
		t.Errorf("-C: %+v, %d services left", res, len(ed.cfg.Services))
	}
	// The director refusing a change: exit 2, the command named.
	ed.applyErr = errors.New("director: change needs a restart")
	if res := ctl("-A -t 198.18.0.103:80"); res.Exit != 2 || res.Error != "-A -t 198.18.0.103:80: refused by the director, nothing changed: director: change needs a restart" {
		t.Errorf("Apply refusing: %+v", res)
	}
}

func TestIpvsadmWithoutEditor(t *testing.T) {
	path := serveFake(t, nil, nil)
	res, err := Ipvsadm(context.Background(), path, []string{"-L", "-n"})
	if err != nil || res.Exit != 0 || !strings.Contains(res.Output, "TCP  198.18.0.100:80 wrr\n") {
		t.Fatalf("-L -n without an editor: %v %+v", err, res)
	}
	res, err = Ipvsadm(context.Background(), path, []string{"-A", "-t", "198.18.0.102:80"})
	if err != nil || res.Exit != 1 || !strings.Contains(res.Error, "serves no changes") {
		t.Fatalf("-A without an editor: %v %+v", err, res)
	}
	res, err = Reload(context.Background(), path)
	if err != nil || res.Exit != 2 || !strings.Contains(res.Error, "started without a config file") {
		t.Fatalf("--reload without a file: %v %+v", err, res)
	}
}

func TestReloadEndpoint(t *testing.T) {
	var calls int
	var fail error
	path := serveFake(t, &fakeEditor{cfg: fixtureConfig(t)}, func() error { calls++; return fail })
	if res, err := Reload(context.Background(), path); err != nil || res.Exit != 0 || calls != 1 {
		t.Fatalf("reload: %v %+v (%d calls)", err, res, calls)
	}
	fail = &config.Error{File: "drlb.yaml", Line: 7, Field: "weight", Value: "-1", Msg: "must be 0..65535"}
	if res, _ := Reload(context.Background(), path); res.Exit != 2 || res.Error != `--reload: nothing changed: drlb.yaml:7: weight: "-1": must be 0..65535` {
		t.Errorf("bad file: %+v", res)
	}
	fail = &os.PathError{Op: "open", Path: "drlb.yaml", Err: syscall.ENOENT}
	if res, _ := Reload(context.Background(), path); res.Exit != 1 || !strings.Contains(res.Error, "no such file") {
		t.Errorf("missing file: %+v", res)
	}
}

// TestSocketOwnerOnly: the socket is its owner's alone, also at a path
// named by -ctl, and a director missing or out of reach is said plainly.
func TestSocketOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "elsewhere", "ctl.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Errorf("socket mode %v, want a socket with 0600", st.Mode())
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		t.Errorf("socket owned by uid %d, want %d", sys.Uid, os.Geteuid())
	}
	_, err = Ipvsadm(context.Background(), filepath.Join(t.TempDir(), "none.sock"), []string{"-L", "-n"})
	if err == nil || !strings.Contains(err.Error(), "is drlb run running") {
		t.Errorf("no director: %v", err)
	}
	if err := dialError("/run/drlb/drlb.sock", &os.SyscallError{Syscall: "connect", Err: syscall.EACCES}, false); !strings.Contains(err.Error(), "permission denied on /run/drlb/drlb.sock") {
		t.Errorf("EACCES: %v", err)
	}
}

// TestExpires: -c's expire column is IPVS's, whose /proc/net/ip_vs_conn
// gives whole seconds left, truncated (jiffies_delta_to_msecs / 1000): an
// entry just refreshed with 900 s reads 14:59, one with 0.6 s left 00:00.
func TestExpires(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want string
	}{
		{899.6, "14:59"}, {900, "15:00"}, {59.99, "00:59"}, {0.6, "00:00"}, {0, "00:00"}, {7200, "120:00"},
	} {
		if got := expires(tc.s); got != tc.want {
			t.Errorf("expires(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestIpvsadmRateSorryServer: -L --rate lists a sorry server standing in
// as a real server (as keepalived's is in IPVS), and its rates are its
// counters' change between the two samples like any other line's, not
// everything it counted since the start divided by the interval.
func TestIpvsadmRateSorryServer(t *testing.T) {
	a := netip.MustParseAddr
	sample := func(at time.Time, conns uint64) Snapshot {
		return Snapshot{Time: at, MaxConns: 4096, Services: []Service{{
			Protocol: "tcp", VIP: a("198.18.0.100"), Port: 80, Scheduler: "rr", Connections: conns, InPackets: conns, InBytes: conns,
			RealServers: []Real{{Address: a("198.18.0.11"), Weight: 1, State: "down"}},
			Sorry:       &Real{Address: a("198.18.0.99"), Weight: 1, State: SorryStandingIn, Connections: conns, InPackets: conns, InBytes: conns},
		}}}
	}
	before := sample(fixtureTime, 1_000_000)
	after := sample(fixtureTime.Add(2*time.Second), 1_000_010)
	c, err := parseCommand([]string{"-L", "-n", "--rate"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := writeIpvsadmList(&b, after, &before, nil, c.list); err != nil {
		t.Fatal(err)
	}
	want := "  -> 198.18.0.99:80                      5        5        0        5        0\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("-L -n --rate with the sorry server standing in:\n%swant the line\n%s", b.String(), want)
	}
}

package main

import (
	"bytes"
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
)

func TestCtlUsage(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ctl", "-s", none}, exitFailure, "is drlb run running"}, // plain ipvsadm lists the table
		{[]string{"ctl", "show"}, exitUsage, "usage: drlb ctl list"},
		{[]string{"ctl", "list", "-o", "yaml"}, exitUsage, `-o "yaml"`},
		{[]string{"ctl", "list", "-stats", "-rate"}, exitUsage, "do not mix"},
		{[]string{"ctl", "list", "-s", none}, exitFailure, "is drlb run running"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
}

// ctlEditor is a director's configuration for the ctl tests.
type ctlEditor struct {
	mu      sync.Mutex
	cfg     *config.Config
	applied int
	zeroed  int
}

func (e *ctlEditor) Config() *config.Config { e.mu.Lock(); defer e.mu.Unlock(); return e.cfg }

// Edit is Config, edit, then Apply (not atomic: a test fake).
func (e *ctlEditor) Edit(edit func(*config.Config) (*config.Config, error)) error {
	cfg, err := edit(e.Config())
	if err != nil {
		return err
	}
	return e.Apply(cfg)
}

func (e *ctlEditor) ZeroCounters() { e.mu.Lock(); defer e.mu.Unlock(); e.zeroed++ }
func (e *ctlEditor) ZeroService(config.Protocol, netip.AddrPort) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.zeroed++
	return true
}
func (e *ctlEditor) Apply(cfg *config.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cfg = cfg
	e.applied++
	return nil
}

func (e *ctlEditor) counts() (applied, zeroed int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applied, e.zeroed
}

// serveCtl serves a control socket at path for ed, as drlb run does.
func serveCtl(t *testing.T, path string, ed *ctlEditor) {
	t.Helper()
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	take := func(bool) control.Snapshot {
		s := control.Snapshot{MaxConns: 4096}
		for _, svc := range ed.Config().Services {
			cs := control.Service{Protocol: svc.Protocol.String(), VIP: svc.VIP, Port: svc.Port, Scheduler: svc.Scheduler}
			for _, r := range svc.RealServers {
				cs.RealServers = append(cs.RealServers, control.Real{Address: r.Address, Weight: r.Weight, State: "up"})
			}
			s.Services = append(s.Services, cs)
		}
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- control.Serve(ctx, ln, control.Handler(take, ed, nil)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func newCtlEditor(t *testing.T) *ctlEditor {
	t.Helper()
	cfg, err := config.Parse("rules", []byte("-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11 -w 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	return &ctlEditor{cfg: cfg}
}

// TestCtlIpvsadm: drlb ctl takes ipvsadm's command lines, with drlb's
// exit statuses: 0 done, 2 refused (naming the option and value, nothing
// applied), 1 no director.
func TestCtlIpvsadm(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "drlb.sock")
	ed := newCtlEditor(t)
	serveCtl(t, sock, ed)
	none := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args   string
		code   int
		stdout string // prefix
		stderr string // exact, "" = empty
	}{
		{"-A -t 198.18.0.100:443 -s sh -b sh-port", exitOK, "", ""},
		{"-a -t 198.18.0.100:443 -r 198.18.0.12 -w 2", exitOK, "", ""},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 5", exitOK, "", ""},
		{"-S -n", exitOK, "-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 5\n" +
			"-A -t 198.18.0.100:443 -s sh -b sh-port\n-a -t 198.18.0.100:443 -r 198.18.0.12:443 -g -w 2\n", ""},
		{"-Ln", exitOK, "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
			"TCP  198.18.0.100:80 wrr\n  -> 198.18.0.11:80               Route   5      0          0         \n" +
			"TCP  198.18.0.100:443 sh (sh-port)\n", ""},
		{"-Z", exitOK, "", ""},
		{"-L -n -t 198.18.0.100:81", exitFailure, "", "drlb ctl: -t: \"198.18.0.100:81\": No such service\n"},     // exit 1, as ipvsadm
		{"", exitOK, "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n", ""}, // as plain ipvsadm: -L
		// Refused, by the director or before it is asked: exit 2.
		{"-a -t 198.18.0.100:80 -r 198.18.0.12 -m", exitUsage, "", "drlb ctl: -m: drlb does direct routing only (-g): masquerading (-m) and tunneling (-i) are not supported\n"},
		{"-A -t 198.18.0.100:80", exitUsage, "", "drlb ctl: -t: \"198.18.0.100:80\": Service already exists\n"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11", exitUsage, "", "drlb ctl: -r: \"198.18.0.11\": Destination already exists\n"},
		{"-d -t 198.18.0.100:80 -r 198.18.0.19", exitUsage, "", "drlb ctl: -r: \"198.18.0.19\": No such destination\n"},
		{"-E -t 198.18.0.100:81 -s rr", exitUsage, "", "drlb ctl: -t: \"198.18.0.100:81\": No such service\n"},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11 -w 65536", exitUsage, "", "drlb ctl: -w: \"65536\": must be 0..65535\n"},
		{"-A -f 7 -s rr", exitUsage, "", "drlb ctl: -f: \"7\": firewall-mark services are not supported: drlb matches protocol, VIP and port\n"},
		{"-L -c --stats", exitUsage, "", "drlb ctl: --stats: does not mix with -c\n"},
		{"--reload", exitUsage, "", "drlb ctl: --reload: this director was started without a config file (drlb run -c): there is nothing to re-read\n"},
		{"--reload now", exitUsage, "", "drlb ctl: --reload takes nothing more, not \"now\"\n"},
	} {
		var stdout, stderr bytes.Buffer
		args := append([]string{"ctl", "-s", sock}, strings.Fields(tc.args)...)
		code := run(context.Background(), args, &stdout, &stderr)
		if code != tc.code || !strings.HasPrefix(stdout.String(), tc.stdout) || stderr.String() != tc.stderr {
			t.Errorf("drlb ctl %s: exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout starting %q, stderr %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
	if applied, zeroed := ed.counts(); applied != 3 || zeroed != 1 {
		t.Errorf("%d changes applied and %d zeroings, want 3 and 1: a refused change must apply nothing", applied, zeroed)
	}
	// Without a director: a bad command is still refused as such (2), a
	// good one cannot run (1).
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"ctl", "-s", none, "-a", "-t", "198.18.0.100:80", "-r", "198.18.0.12", "-i"}, exitUsage, "-i: drlb does direct routing only"},
		{[]string{"ctl", "-s", none, "-L", "-n", "--bogus"}, exitUsage, `"--bogus": unknown ipvsadm option`},
		{[]string{"ctl", "-s", none, "-L", "-n"}, exitFailure, "is drlb run running"},
		{[]string{"ctl", "-s", none, "--reload"}, exitFailure, "is drlb run running"},
		{[]string{"ctl", "-s", "wrr", "-A", "-t", "198.18.0.100:80"}, exitUsage, "a leading -s names the control socket"},
		{[]string{"ctl", "-s", sock, "show"}, exitUsage, "usage: drlb ctl list"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
	// drlb ctl list still works, with the socket before or after list.
	for _, args := range [][]string{{"ctl", "-s", sock, "list"}, {"ctl", "list", "-s", sock}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != exitOK || !strings.HasPrefix(stdout.String(), "IP Virtual Server version drlb (size=4096)\n") {
			t.Errorf("%v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"ctl", "-h"}, &stdout, &stderr); code != exitOK ||
		!strings.Contains(stdout.String(), "-a -t|-u VIP:PORT -r RIP[:PORT] [-g] [-w WEIGHT]") {
		t.Errorf("drlb ctl -h: exit %d\n%s", code, stdout.String())
	}
}

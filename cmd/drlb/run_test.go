package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunConfigQuickStart(t *testing.T) {
	var reals realFlags
	for _, r := range []string{"198.18.0.11,weight=3", "198.18.0.12,mac=02:00:00:00:00:12", "198.18.0.13,w=0"} {
		if err := reals.Set(r); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := runConfig("", "198.18.0.100:80", "", "wrr", "300s", reals, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Services[0]
	if s.Scheduler != "wrr" || s.Port != 80 || s.Persistence.Seconds() != 300 || len(s.RealServers) != 3 {
		t.Fatalf("service %+v", s)
	}
	if w := []int{s.RealServers[0].Weight, s.RealServers[1].Weight, s.RealServers[2].Weight}; w[0] != 3 || w[1] != 1 || w[2] != 0 {
		t.Fatalf("weights %v", w)
	}
	if s.RealServers[1].MAC.String() != "02:00:00:00:00:12" {
		t.Fatalf("mac %v", s.RealServers[1].MAC)
	}
}

// TestRunQuickStartPersistence: -p takes seconds as ipvsadm does, or a
// duration in whole seconds; "5m" was refused, though the help said
// "e.g. 300s".
func TestRunQuickStartPersistence(t *testing.T) {
	var reals realFlags
	if err := reals.Set("198.18.0.11"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    string
		want time.Duration
		bad  bool
	}{
		{"300", 300 * time.Second, false},
		{"300s", 300 * time.Second, false},
		{"5m", 5 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"1.5s", 0, true},
		{"0", 0, true},
		{"five", 0, true},
	} {
		cfg, err := runConfig("", "198.18.0.100:80", "", "rr", tc.p, reals, io.Discard)
		switch {
		case tc.bad && err == nil:
			t.Errorf("-p %s accepted: %v", tc.p, cfg.Services[0].Persistence)
		case !tc.bad && err != nil:
			t.Errorf("-p %s: %v", tc.p, err)
		case !tc.bad && cfg.Services[0].Persistence != tc.want:
			t.Errorf("-p %s: persistence %v, want %v", tc.p, cfg.Services[0].Persistence, tc.want)
		}
	}
}

func TestRunUsageErrors(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("drlb run needs Linux: elsewhere it refuses before parsing flags (TestNeedsLinux)")
	}
	vrrpConf := filepath.Join("..", "..", "config", "testdata", "keepalived", "sample_vrrp3.conf")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run"}, "give -c CONFIG"},
		{[]string{"run", "-t", "198.18.0.100:80"}, "at least one -r"},
		{[]string{"run", "-t", "198.18.0.100:80", "-u", "198.18.0.100:53", "-r", "198.18.0.11"}, "exactly one of -t or -u"},
		{[]string{"run", "-c", "x.yaml", "-t", "198.18.0.100:80"}, "do not mix"},
		{[]string{"run", "-c", vrrpConf, "-s", "wlc"}, "-s: a quick-start flag, which -c does not take"},
		{[]string{"run", "-c", vrrpConf, "-p", "300s", "-s", "wlc"}, "-p -s: a quick-start flag"},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "nonsense"}, `"nonsense" is not an IP address`},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "198.18.0.11,weight=70000"}, "must be 0..65535"},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "198.18.0.11,colour=red"}, "unknown option"},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "198.18.0.11,mac=ff:ff:ff:ff:ff:ff"}, "mac ff:ff:ff:ff:ff:ff must be a unicast MAC"},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "198.18.0.11,mac=00:00:00:00:00:00"}, "must not be all zeros"},
		{[]string{"run", "-t", "198.18.0.100:80", "-s", "fastest", "-r", "198.18.0.11"}, "fastest"},
		{[]string{"run", "-t", "198.18.0.100:80", "-r", "198.18.0.11"}, "no interface"},
		{[]string{"run", "-i", "eth0", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-log-level", "loud"}, "-log-level"},
		{[]string{"run", "-i", "eth0", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-rx-coalesce", "1s"}, "-rx-coalesce 1s: want 0 to 10ms"},
		{[]string{"run", "-i", "eth0", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-rx-coalesce", "-1us"}, "-rx-coalesce -1µs: want 0 to 10ms"},
		{[]string{"run", "-i", "eth1", "-c", vrrpConf}, "-i eth1: " + vrrpConf + ":18: the vrrp_instance runs on interface eth0: give -i eth0 or leave -i out"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr.String(), tc.msg)
		}
	}
}

func TestUsageErrIs(t *testing.T) {
	err := asUsage(errors.New("x"))
	if !errors.Is(err, errUsage) || err.Error() != "x" {
		t.Fatalf("asUsage: %v", err)
	}
}

// TestHoldHUP: SIGHUP must not kill drlb run outside onHUP's listening
// (while the config loads, and in the grace periods and teardown after
// the context ends). It runs in a child process of its own: signal
// handling is process-wide, and a SIGHUP that kills must kill only it.
func TestHoldHUP(t *testing.T) {
	if os.Getenv("DRLB_TEST_HOLDHUP_CHILD") == "1" {
		holdHUP()
		ctx, cancel := context.WithCancel(context.Background())
		onHUP(ctx, func(context.Context) {})
		cancel() // onHUP stops listening: as after SIGTERM
		time.Sleep(50 * time.Millisecond)
		for range 3 {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				os.Exit(3)
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestHoldHUP$")
	cmd.Env = append(os.Environ(), "DRLB_TEST_HOLDHUP_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("a SIGHUP after onHUP stopped listening ended the process: %v\n%s", err, out)
	}
}

// TestRunFlagValues: flag values that make no sense, or contradict each
// other, are usage errors (exit 2) naming the flag and value, found before
// the director starts. -trace-rate 0 or below used to trace 20 frames a
// second, -metrics without a port failed with exit 1 once the sockets
// were open (and without naming the flag), and -xdp-* beside an explicit
// -io afpacket only logged a warning once the director ran. The interface
// does not exist, so that without these checks the director refuses to
// start (exit 1) before it opens anything.
func TestRunFlagValues(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("drlb run needs Linux: elsewhere it refuses before parsing flags (TestNeedsLinux)")
	}
	quick := []string{"run", "-i", "drlbnosuch0", "-t", "198.18.0.100:80", "-r", "198.18.0.11"}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-trace", "-trace-rate", "0"}, "-trace-rate 0: want at least 1"},
		{[]string{"-trace", "-trace-rate", "-5"}, "-trace-rate -5: want at least 1"},
		{[]string{"-trace-rate", "-1"}, "-trace-rate -1"},
		{[]string{"-metrics", "127.0.0.1"}, `-metrics "127.0.0.1": address 127.0.0.1: missing port in address`},
		{[]string{"-metrics", "127.0.0.1:"}, `-metrics "127.0.0.1:": missing port`},
		{[]string{"-metrics", "127.0.0.1:99999"}, `-metrics "127.0.0.1:99999": bad port "99999"`},
		{[]string{"-metrics", "[::1]:-1"}, `-metrics "[::1]:-1": bad port "-1"`},
		{[]string{"-metrics", "🙂"}, `-metrics "🙂"`},
		{[]string{"-io", "afpacket", "-xdp-generic"}, "-xdp-generic: needs -io afxdp"},
		{[]string{"-io", "afpacket", "-xdp-syn", "-xdp-copy"}, "-xdp-copy: needs -io afxdp"},
		{[]string{"-xdp-copy"}, "-xdp-copy: needs -io afxdp"}, // afpacket is the default
	} {
		args := append(append([]string{}, quick...), tc.args...)
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != exitUsage || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr.String(), tc.msg)
		}
	}
}

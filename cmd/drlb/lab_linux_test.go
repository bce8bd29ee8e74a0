package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/lab"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netns"
)

// asDrlb makes this test binary behave as drlb when set in the
// environment: `drlb lab` runs its own executable as the director, and in
// a test that executable is this binary.
const asDrlb = "DRLB_TEST_AS_DRLB"

func TestMain(m *testing.M) {
	if os.Getenv(asDrlb) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if os.Geteuid() == 0 {
		// What a killed earlier run left (its cleanups never ran).
		if err := testbed.CleanupStale(); err != nil {
			fmt.Fprintln(os.Stderr, "removing stale labs:", err)
		}
	}
	os.Exit(m.Run())
}

// drlbCmd runs this binary as `drlb args...` and returns its combined
// output and exit status.
func drlbCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), asDrlb+"=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	default:
		t.Fatalf("drlb %v: %v\n%s", args, err, out)
		return "", -1
	}
}

// labName is unique per test run, so parallel runs do not collide.
func labName(t *testing.T, tag string) string {
	return fmt.Sprintf("lt%s%d", tag, os.Getpid())
}

// namespacesOf lists the lab's namespaces still present.
func namespacesOf(t *testing.T, name string) []string {
	t.Helper()
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestLabNeedsRoot(t *testing.T) {
	notRoot := func() int { return 1000 }
	for _, args := range [][]string{nil, {"--requests", "3"}, {"down"}, {"down", "--name", "x"}} {
		var stdout, stderr bytes.Buffer
		err := labCmd(context.Background(), args, &stdout, &stderr, notRoot)
		if !errors.Is(err, lab.ErrNotRoot) {
			t.Fatalf("lab %v as non-root: %v, want ErrNotRoot", args, err)
		}
		if errors.Is(err, errUsage) {
			t.Fatalf("lab %v as non-root is a usage error (exit 2), want exit 1", args)
		}
		if want := "needs root (network namespaces): run it with sudo"; err.Error() != want {
			t.Fatalf("message %q, want %q", err, want)
		}
	}
}

// TestLabAsNobody runs drlb lab as an unprivileged user, for real: exit
// status 1 and a plain message.
func TestLabAsNobody(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("drlb lab needs Linux: elsewhere it refuses before anything else (TestNeedsLinux)")
	}
	if os.Geteuid() != 0 {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"lab"}, &stdout, &stderr); code != exitFailure {
			t.Fatalf("exit %d, want %d", code, exitFailure)
		}
		if want := "drlb lab: needs root (network namespaces): run it with sudo\n"; stderr.String() != want {
			t.Fatalf("stderr %q, want %q", stderr.String(), want)
		}
		return
	}
	// As root: copy this binary where nobody may run it, and run it as nobody.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, dir := testutil.CopyForNobody(t, exe)
	for _, args := range [][]string{{"lab"}, {"lab", "down"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), asDrlb+"=1")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testutil.Nobody}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
			t.Fatalf("drlb %v as nobody: %v, want exit status 1:\n%s", args, err, out)
		}
		if want := "drlb lab: needs root (network namespaces): run it with sudo\n"; string(out) != want {
			t.Fatalf("drlb %v as nobody printed %q, want %q", args, out, want)
		}
	}
}

func TestLabBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scheduler", "fastest"}, "--scheduler"},
		{[]string{"--realservers", "500"}, "--realservers"},
		{[]string{"--requests", "-1"}, "--requests"},
		{[]string{"--nosuch"}, "nosuch"},
		{[]string{"serve"}, "-name"},
		{[]string{"--scenario", "nosuch"}, "arp-flux"},
		{[]string{"--scenario", "arp-flux", "--requests", "3", "--scheduler", "mh"}, "builds its own lab: drop --requests, --scheduler"},
		{[]string{"--scenario", "mtu", "--keep"}, "--keep"},
	} {
		var stdout, stderr bytes.Buffer
		err := labCmd(context.Background(), tc.args, &stdout, &stderr, func() int { return 0 })
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error()+stderr.String(), tc.want) {
			t.Errorf("lab %v: %v (stderr %q), want a usage error naming %s", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestLabRun runs `drlb lab` end to end, as a newcomer would.
func TestLabRun(t *testing.T) {
	testutil.NeedRoot(t)
	name := labName(t, "r")
	dir := t.TempDir()
	t.Cleanup(func() { _ = lab.Down(name, io.Discard) })
	page := filepath.Join(dir, "lab.html")
	out, code := drlbCmd(t, "lab", "--name", name, "--pcap-dir", dir, "--trace", "--requests", "12", "--html", page)
	if code != 0 {
		t.Fatalf("drlb lab exited %d:\n%s", code, out)
	}
	for _, want := range []string{
		"== 1. The network", "+- director", "sysctl -w net.ipv4.ip_forward=0",
		"-A -t 198.18.0.100:80 -s wrr", "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 3",
		"ip addr add 198.18.0.100/32 dev lo", "drlb doctor", "rs1=6 rs2=4 rs3=2",
		"who-has 198.18.0.100 tell 198.18.0.1", "is-at 02:00:c6:12:00:02",
		"byte-identical", "the director saw 0 of them", "frames with source 198.18.0.100 on the director's eth0: 0",
		"forward new tcp 198.18.1.10:", "| real server 198.18.0.1", "All 11 checks passed.", "torn down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("output has a FAIL")
	}
	for _, f := range []string{"client-eth0", "router-eth1", "router-eth0", "director-eth0", "rs1-eth0", "rs2-eth0", "rs3-eth0"} {
		if n := pcapFrames(t, filepath.Join(dir, f+".pcap")); n == 0 {
			t.Errorf("%s.pcap has no frames", f)
		}
	}
	if left := namespacesOf(t, name); len(left) > 0 {
		t.Errorf("namespaces left after drlb lab: %v", left)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
	// The page: the topology and the walked request, drawn.
	checkDrawings(t, page, 2, "client", "router", "director", "rs1")
	if d := pageDrawings(t, page); len(d) > 1 && !slices.ContainsFunc(d[1], func(s string) bool { return strings.Contains(s, "drlb answers") }) {
		t.Errorf("the walked request's drawing lacks drlb's ARP answer: %q", d[1])
	}
	docsDrawing(t, page, 1)
	t.Run("renders in Chromium", func(t *testing.T) { renderPage(t, absPath(t, page)) })
}

// pcapFrames reads a pcap file and counts its frames.
func pcapFrames(t *testing.T, path string) int {
	t.Helper()
	frames := testutil.ReadPcap(t, path)
	for i, p := range frames {
		if len(p.Data) < 14 || p.Time.IsZero() {
			t.Fatalf("%s: frame %d: %d bytes at %v", path, i+1, len(p.Data), p.Time)
		}
	}
	return len(frames)
}

// TestLabKeepAndDown: --keep leaves a working lab that refuses a twin,
// and `drlb lab down` removes it with its processes.
func TestLabKeepAndDown(t *testing.T) {
	testutil.NeedRoot(t)
	name := labName(t, "k")
	t.Cleanup(func() { _ = lab.Down(name, io.Discard) })
	out, code := drlbCmd(t, "lab", "--keep", "--name", name, "--pcap-dir", t.TempDir(), "--realservers", "2", "--scheduler", "rr", "--requests", "4")
	if code != 0 || !strings.Contains(out, "drlb lab down --name "+name) || !strings.Contains(out, "ip netns exec "+name+"-client") {
		t.Fatalf("drlb lab --keep exited %d:\n%s", code, out)
	}
	if got := len(namespacesOf(t, name)); got != 6 {
		t.Fatalf("kept lab has %d namespaces, want 6", got)
	}
	// The director and the web servers outlived drlb lab.
	for i := 0; i < 4; i++ {
		if server := getIn(t, name+"-client", "http://198.18.0.100/"); server != fmt.Sprintf("rs%d", i%2+1) && server != fmt.Sprintf("rs%d", (i+1)%2+1) {
			t.Fatalf("kept lab answered by %q", server)
		}
	}
	out, code = drlbCmd(t, "lab", "--name", name)
	if code != exitUsage || !strings.Contains(out, "already up") || !strings.Contains(out, "drlb lab down --name "+name) {
		t.Fatalf("a second lab %s: exit %d, want 2 with a message:\n%s", name, code, out)
	}
	out, code = drlbCmd(t, "lab", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "removed") {
		t.Fatalf("drlb lab down exited %d:\n%s", code, out)
	}
	if left := namespacesOf(t, name); len(left) > 0 {
		t.Fatalf("namespaces left after drlb lab down: %v", left)
	}
	out, code = drlbCmd(t, "lab", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "nothing to remove") {
		t.Fatalf("drlb lab down twice: exit %d:\n%s", code, out)
	}
}

// getIn makes one HTTP request from inside the named namespace and returns
// the real server that answered.
func getIn(t *testing.T, ns, url string) string {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		// Dialled inside the namespace, the socket stays there.
		var c net.Conn
		err := testutil.Do(h, func() (err error) {
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s in %s: %v", url, ns, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Real-Server")
}

// TestLabDownFindsOrphans: if a kept lab's namespaces are removed by
// something else, drlb lab down still finds and stops its processes (they
// carry the lab's name on their command line).
func TestLabDownFindsOrphans(t *testing.T) {
	testutil.NeedRoot(t)
	name := labName(t, "o")
	t.Cleanup(func() { _ = lab.Down(name, io.Discard) })
	out, code := drlbCmd(t, "lab", "--keep", "--name", name, "--pcap-dir", t.TempDir(), "--realservers", "2", "--scheduler", "rr", "--requests", "2")
	if code != 0 {
		t.Fatalf("drlb lab --keep exited %d:\n%s", code, out)
	}
	tagged := func() []string {
		var found []string
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if err == nil && (strings.Contains(string(b), "\x00-lab\x00"+name+"\x00") || strings.Contains(string(b), "drlb-lab:"+name+"\x00")) {
				found = append(found, strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		return found
	}
	if got := tagged(); len(got) != 3 { // the director and two web servers
		t.Fatalf("kept lab processes: %q, want 3", got)
	}
	if err := testbed.Cleanup(name + "-"); err != nil {
		t.Fatal(err)
	}
	out, code = drlbCmd(t, "lab", "down", "--name", name)
	if code != 0 || !strings.Contains(out, "kill -TERM") {
		t.Fatalf("drlb lab down exited %d:\n%s", code, out)
	}
	if left := tagged(); len(left) > 0 {
		t.Fatalf("processes left after drlb lab down: %q", left)
	}
}

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// ctlRun runs `drlb ctl -s sock ARGS` (bin: the drlb binary) as root, or
// as the user cred names, and returns its standard output and error and
// its exit status.
func ctlRun(t *testing.T, bin, sock string, cred *syscall.Credential, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"ctl", "-s", sock}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		cmd.Dir = filepath.Dir(bin)
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("drlb ctl %v: %v", args, err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("drlb ctl %v did not end within 10 s", args)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return o.String(), e.String(), 0
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	}
	t.Fatalf("drlb ctl %v: %v", args, err)
	return "", "", 0
}

// ipvsService is one service of `drlb ctl -L -n` (or `-L -n --stats`)
// parsed: the fields after its address (scheduler and flags; or the
// counters), and its real servers' fields after their addresses
// (Forward Weight ActiveConn InActConn; or the counters), by address.
type ipvsService struct {
	key    string // "TCP  198.18.0.100:80", as printed
	fields []string
	reals  map[string][]string
	order  []string // the real servers' addresses as printed
}

var ipvsVersionLine = regexp.MustCompile(`^IP Virtual Server version 1\.2\.1 \(size=[0-9]+\)$`)

// Headers of ipvsadm's listings, spaces folded.
const (
	listHeader  = "Prot LocalAddress:Port Scheduler Flags\n-> RemoteAddress:Port Forward Weight ActiveConn InActConn"
	statsHeader = "Prot LocalAddress:Port Conns InPkts OutPkts InBytes OutBytes\n-> RemoteAddress:Port"
)

// parseIpvsadm parses an ipvsadm listing with the given header (spaces
// folded): the version line, the header, then each service line ("TCP  "
// or "UDP  ") followed by its real servers ("  -> "). The services come
// back in the listing's order.
func parseIpvsadm(t *testing.T, out, header string) []*ipvsService {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 3 || !ipvsVersionLine.MatchString(lines[0]) {
		t.Fatalf("not an ipvsadm listing:\n%s", out)
	}
	if got := strings.Join(strings.Fields(lines[1]), " ") + "\n" + strings.Join(strings.Fields(lines[2]), " "); got != header {
		t.Fatalf("ipvsadm listing's header %q, want %q:\n%s", got, header, out)
	}
	var svcs []*ipvsService
	for _, l := range lines[3:] {
		f := strings.Fields(l)
		switch {
		case (strings.HasPrefix(l, "TCP  ") || strings.HasPrefix(l, "UDP  ")) && len(f) >= 2:
			svcs = append(svcs, &ipvsService{key: f[0] + "  " + f[1], fields: f[2:], reals: map[string][]string{}})
		case strings.HasPrefix(l, "  -> ") && len(f) >= 2 && len(svcs) > 0:
			s := svcs[len(svcs)-1]
			s.reals[f[1]] = f[2:]
			s.order = append(s.order, f[1])
		default:
			t.Fatalf("ipvsadm listing: line %q is neither a service nor a real server:\n%s", l, out)
		}
	}
	return svcs
}

// shape is an ipvsadm -L -n listing without its connection counts: each
// service line (protocol, address, scheduler, flags) and each real
// server's address, forwarding method and weight, in the listing's order,
// one per line. It is what an ipvsadm table says about the configuration.
func shape(svcs []*ipvsService) string {
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "%s %s\n", s.key, strings.Join(s.fields, " "))
		for _, a := range s.order {
			r := s.reals[a]
			if len(r) < 2 {
				fmt.Fprintf(&b, "  -> %s ?%v\n", a, r)
				continue
			}
			fmt.Fprintf(&b, "  -> %s %s %s\n", a, r[0], r[1])
		}
	}
	return b.String()
}

// find returns the service printed as key ("TCP  198.18.0.100:80"), or nil.
func find(svcs []*ipvsService, key string) *ipvsService {
	for _, s := range svcs {
		if s.key == key {
			return s
		}
	}
	return nil
}

// counter is column i of a --stats --exact row, a number.
func counter(t *testing.T, row []string, i int) uint64 {
	t.Helper()
	if i >= len(row) {
		t.Fatalf("--stats row %v has no column %d", row, i)
	}
	n, err := strconv.ParseUint(row[i], 10, 64)
	if err != nil {
		t.Fatalf("--stats row %v, column %d: %v", row, i, err)
	}
	return n
}

// Columns of -L -n --stats rows.
const (
	statConns = iota
	statInPkts
	statOutPkts
	statInBytes
	statOutBytes
)

// TestCtlLive: the steps of TestReloadLive, and more, made with `drlb
// ctl` in ipvsadm's syntax against a running director while the same
// client loop runs (a new connection every ~20 ms, four keep-alive
// connections making a request every ~50 ms):
//
//  1. -a adds rs3: it takes new connections, and -L -n shows it;
//  2. -e -w 0 drains rs1: no new connections, its keep-alive ones go on,
//     -L -n shows weight 0 and ActiveConn equal to them;
//  3. -d deletes rs2: its keep-alive connections end fast with a reset
//     from the VIP (expected, not failures), no new connection fails;
//  4. -A and -a add a service on a second VIP with rs3: answered, and the
//     router's ARP for it answered by the director;
//  5. --reload after the file changed structurally (scheduler rr -> wlc,
//     rs2 back) applies it; --reload with a broken file exits 2 naming
//     file:line:column, and -S -n is the same before and after;
//  6. -Z zeroes the --stats counters (and they rise again with traffic);
//  7. drlb ctl as a user other than root: exit 1, "permission denied",
//     nothing read, nothing changed (socket mode 0600, and 0666 too);
//  8. -S -n round-trips: config.Load reads it back to the same rules and
//     services as the applied file, and a director restarted with
//     `drlb run -c saved` lists the same -L -n table and -S -n rules.
//
// Throughout, no request fails and no keep-alive connection breaks but
// those on the deleted rs2 (keepalived is known to lose requests on a
// reload: its issues #1228 and #2240); the counts are logged.
func TestCtlLive(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	rs1, rs2, rs3 := l.RealServers[0], l.RealServers[1], l.RealServers[2]
	vip := l.VIP
	vip2 := netip.MustParseAddr("198.18.0.101")
	serveSecondVIP(t, l, rs3, vip2)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drlb.yaml")
	sock := filepath.Join(dir, "drlb.sock")
	svc := func(v netip.Addr) string { return fmt.Sprintf("%s:%d", v, testbed.HTTPPort) }
	rip := func(h *testbed.Host) string { return svc(h.IPv4) }
	tcp := func(v netip.Addr) string { return "TCP  " + svc(v) }

	// ctl runs drlb ctl as root against the first director and wants exit 0.
	var p *directorProc
	ctlAt := func(sock string, args ...string) string {
		t.Helper()
		out, errOut, code := ctlRun(t, drlbBinary, sock, nil, args...)
		if code != 0 {
			t.Fatalf("drlb ctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	ctl := func(args ...string) string { t.Helper(); return ctlAt(sock, args...) }
	list := func() []*ipvsService { t.Helper(); return parseIpvsadm(t, ctl("-L", "-n"), listHeader) }
	stats := func() []*ipvsService {
		t.Helper()
		return parseIpvsadm(t, ctl("-L", "-n", "--stats", "--exact"), statsHeader)
	}
	// wantShape checks -L -n against what ipvsadm would show.
	wantShape := func(step string, want string) []*ipvsService {
		t.Helper()
		svcs := list()
		if got := shape(svcs); got != want {
			t.Fatalf("%s: drlb ctl -L -n shows\n%s\nwant\n%s", step, got, want)
		}
		return svcs
	}
	row := func(svcs []*ipvsService, v netip.Addr, h *testbed.Host) []string {
		if s := find(svcs, tcp(v)); s != nil {
			return s.reals[rip(h)]
		}
		return nil
	}
	// waitActive polls -L -n until h's ActiveConn on v is n (bounded).
	waitActive := func(v netip.Addr, h *testbed.Host, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := row(list(), v, h)
			if len(r) == 4 && r[2] == strconv.Itoa(n) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("-L -n: %s row on %s is %v, want ActiveConn %d", h.Name, svc(v), r, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	applied := 0
	// edit runs a change through drlb ctl and waits until the director
	// logged it applied. It returns when the command started.
	edit := func(args ...string) time.Time {
		t.Helper()
		applied++
		start := time.Now()
		if out := ctl(args...); out != "" {
			t.Errorf("drlb ctl %s printed %q; ipvsadm prints nothing", strings.Join(args, " "), out)
		}
		p.waitLog("configuration applied", applied, 10*time.Second)
		t.Logf("drlb ctl %s: applied in %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		return start
	}
	edits := 0

	writeYAML(t, l, cfgPath, yamlService(vip, "rr", weighted{rs1, 1}, weighted{rs2, 1}))
	p = startDirectorN(t, l, 2, "run", "-c", cfgPath, "-ctl", sock)
	wantShape("start", fmt.Sprintf("%s rr\n  -> %s Route 1\n  -> %s Route 1\n", tcp(vip), rip(rs1), rip(rs2)))

	// Four keep-alive connections first: rr puts two on rs1, two on rs2.
	loop := newClientLoop(t, l, 4)
	if on := loop.on(); on[rs1.Name] != 2 || on[rs2.Name] != 2 {
		t.Fatalf("keep-alive connections on %v, want two on rs1 and two on rs2", on)
	}
	loop.run(3000, 2000)
	loop.settle("1")

	// (1) -a: rs3 added.
	edit("-a", "-t", svc(vip), "-r", rip(rs3), "-g", "-w", "1")
	edits++
	wantShape("-a rs3", fmt.Sprintf("%s rr\n  -> %s Route 1\n  -> %s Route 1\n  -> %s Route 1\n", tcp(vip), rip(rs1), rip(rs2), rip(rs3)))
	loop.settle("2")

	// (2) -e -w 0: rs1 drained; its two keep-alive connections are its
	// only active ones.
	edit("-e", "-t", svc(vip), "-r", rip(rs1), "-g", "-w", "0")
	edits++
	wantShape("-e rs1 -w 0", fmt.Sprintf("%s rr\n  -> %s Route 0\n  -> %s Route 1\n  -> %s Route 1\n", tcp(vip), rip(rs1), rip(rs2), rip(rs3)))
	loop.settle("3")
	waitActive(vip, rs1, loop.on()[rs1.Name])

	// (3) -d: rs2 deleted; its keep-alive connections end at their next
	// request, with a reset.
	loop.deleting()
	deleted := edit("-d", "-t", svc(vip), "-r", rip(rs2))
	edits++
	wantShape("-d rs2", fmt.Sprintf("%s rr\n  -> %s Route 0\n  -> %s Route 1\n", tcp(vip), rip(rs1), rip(rs3)))
	loop.settle("4")

	// (4) -A, -a: a service on a second VIP, with rs3.
	edit("-A", "-t", svc(vip2), "-s", "rr")
	edit("-a", "-t", svc(vip2), "-r", rip(rs3), "-g")
	edits += 2
	twoServices := fmt.Sprintf("%s rr\n  -> %s Route 0\n  -> %s Route 1\n%s rr\n  -> %s Route 1\n",
		tcp(vip), rip(rs1), rip(rs3), tcp(vip2), rip(rs3))
	wantShape("-A, -a on "+vip2.String(), twoServices)
	loop.setTargets(vip, vip2)
	loop.settle("5")
	// The router asked for the new VIP; the director answered.
	if mac := neighborMAC(t, l, l.Router, vip2); !bytes.Equal(mac, l.Director.MAC) {
		t.Errorf("the router's ARP entry for %s is %v, want the director's %v", vip2, mac, l.Director.MAC)
	}
	save := ctl("-S", "-n")
	if want := fmt.Sprintf("-A -t %[1]s -s rr\n-a -t %[1]s -r %[2]s -g -w 0\n-a -t %[1]s -r %[3]s -g -w 1\n-A -t %[4]s -s rr\n-a -t %[4]s -r %[3]s -g -w 1\n",
		svc(vip), rip(rs1), rip(rs3), svc(vip2)); save != want {
		t.Fatalf("drlb ctl -S -n after the edits:\n%s\nwant\n%s", save, want)
	}

	// (5) --reload with a structural change: vip's scheduler rr -> wlc,
	// rs2 back. rs1 stays drained: its keep-alive connections go on.
	good := []string{
		yamlService(vip, "wlc", weighted{rs1, 0}, weighted{rs2, 1}, weighted{rs3, 1}),
		yamlService(vip2, "rr", weighted{rs3, 1}),
	}
	writeYAML(t, l, cfgPath, good...)
	appliedYAML := filepath.Join(dir, "applied.yaml")
	writeYAML(t, l, appliedYAML, good...)
	applied++
	if out := ctl("--reload"); out != "" {
		t.Errorf("drlb ctl --reload printed %q", out)
	}
	p.waitLog("configuration applied", applied, 10*time.Second)
	reloaded := fmt.Sprintf("%s wlc\n  -> %s Route 0\n  -> %s Route 1\n  -> %s Route 1\n%s rr\n  -> %s Route 1\n",
		tcp(vip), rip(rs1), rip(rs2), rip(rs3), tcp(vip2), rip(rs3))
	wantShape("--reload", reloaded)
	wantSave := fmt.Sprintf("-A -t %[1]s -s wlc\n-a -t %[1]s -r %[2]s -g -w 0\n-a -t %[1]s -r %[3]s -g -w 1\n-a -t %[1]s -r %[4]s -g -w 1\n-A -t %[5]s -s rr\n-a -t %[5]s -r %[4]s -g -w 1\n",
		svc(vip), rip(rs1), rip(rs2), rip(rs3), svc(vip2))
	if save := ctl("-S", "-n"); save != wantSave {
		t.Fatalf("drlb ctl -S -n after --reload:\n%s\nwant\n%s", save, wantSave)
	}
	t.Logf("drlb ctl --reload: applied (rr -> wlc, rs2 added)")
	loop.settle("6")
	waitActive(vip, rs1, loop.on()[rs1.Name])

	// --reload with a broken file: exit 2 naming file:line:column; the
	// running table stays.
	writeYAML(t, l, cfgPath, yamlService(vip, "wlc", weighted{rs1, 0}, weighted{rs2, -1}, weighted{rs3, 1}), good[1])
	before := ctl("-S", "-n")
	out, errOut, code := ctlRun(t, drlbBinary, sock, nil, "--reload")
	wantErr := fmt.Sprintf(`%s:10:17: services[0].realservers[1].weight: "-1": must be 0..65535`, cfgPath)
	if code != 2 || out != "" || !strings.Contains(errOut, wantErr) {
		t.Errorf("drlb ctl --reload with a broken file: exit %d, output %q, error %q; want exit 2 and %q", code, out, errOut, wantErr)
	}
	t.Logf("drlb ctl --reload with a broken file: exit %d: %s", code, strings.TrimSpace(errOut))
	loop.settle("7")
	if after := ctl("-S", "-n"); after != before {
		t.Errorf("a refused --reload changed -S -n:\n%s\nwas\n%s", after, before)
	}
	wantShape("refused --reload", reloaded)
	if n := strings.Count(p.logs.String(), "configuration applied"); n != applied {
		t.Errorf("%d configurations applied, want %d: the broken file was applied", n, applied)
	}

	// (6) -Z: the counters go back to 0, the connections stay, and the
	// counters rise again with the traffic. New connections keep coming
	// while -Z runs: a service may count those started since (and one in
	// flight), no more.
	pre := stats()
	if n := counter(t, find(pre, tcp(vip)).fields, statConns); n < 100 {
		t.Fatalf("-L -n --stats before -Z: %s counts %d connections, want a hundred or more", tcp(vip), n)
	}
	from := map[netip.Addr]int{vip: loop.startedTo(vip), vip2: loop.startedTo(vip2)}
	if out := ctl("-Z"); out != "" {
		t.Errorf("drlb ctl -Z printed %q", out)
	}
	edits++
	zeroed := stats()
	for _, v := range []netip.Addr{vip, vip2} {
		s := find(zeroed, tcp(v))
		since := loop.startedTo(v) - from[v]
		if n := counter(t, s.fields, statConns); n > uint64(since+1) {
			t.Errorf("-L -n --stats after -Z: %s counts %d connections; %d were started since -Z", tcp(v), n, since)
		}
		if a, b := counter(t, s.fields, statInPkts), counter(t, find(pre, tcp(v)).fields, statInPkts); a >= b {
			t.Errorf("-L -n --stats after -Z: %s InPkts %d, was %d before", tcp(v), a, b)
		}
		for _, r := range s.reals {
			if r[statOutPkts] != "0" || r[statOutBytes] != "0" {
				t.Errorf("-L -n --stats after -Z: %s row %v: Out columns are 0 in DR", tcp(v), r)
			}
		}
	}
	if r := find(zeroed, tcp(vip)).reals[rip(rs1)]; counter(t, r, statConns) != 0 {
		t.Errorf("-L -n --stats after -Z: the drained rs1 counts %v connections, want 0", r)
	}
	t.Logf("-L -n --stats: %s %v before -Z, %v after", tcp(vip), find(pre, tcp(vip)).fields, find(zeroed, tcp(vip)).fields)
	loop.settle("8")
	again := stats()
	for _, v := range []netip.Addr{vip, vip2} {
		if a, z := counter(t, find(again, tcp(v)).fields, statConns), counter(t, find(zeroed, tcp(v)).fields, statConns); a <= z {
			t.Errorf("-L -n --stats: %s counts %d connections 1.5 s after -Z, %d right after: not rising", tcp(v), a, z)
		}
	}
	r1, z1 := find(again, tcp(vip)).reals[rip(rs1)], find(zeroed, tcp(vip)).reals[rip(rs1)]
	if counter(t, r1, statConns) != 0 || counter(t, r1, statInPkts) <= counter(t, z1, statInPkts) {
		t.Errorf("-L -n --stats: the drained rs1 is %v 1.5 s after -Z, %v right after: want no connections and packets from its keep-alive ones", r1, z1)
	}
	t.Logf("-L -n --stats 1.5 s after -Z: %s %v", tcp(vip), find(again, tcp(vip)).fields)
	waitActive(vip, rs1, loop.on()[rs1.Name])

	// (7) drlb ctl as nobody: refused, reads nothing, changes nothing.
	// The binary and the socket's directory must be reachable by nobody
	// (t.TempDir's are root's, 0700); the socket is the director's own,
	// 0600, then 0666 so that the director's own check of the peer is
	// what refuses.
	bin, _ := testutil.CopyForNobody(t, drlbBinary)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	nobody := testutil.Nobody
	saveBefore, statsBefore := ctl("-S", "-n"), stats()
	refused := 0
	for _, mode := range []os.FileMode{0o600, 0o666} {
		if err := os.Chmod(sock, mode); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"-L", "-n"},
			{"-S", "-n"},
			{"-Z"},
			{"-a", "-t", svc(vip), "-r", rip(rs2), "-g", "-w", "5"},
			{"-d", "-t", svc(vip), "-r", rip(rs3)},
			{"-C"},
			{"--reload"},
			{"list"},
		} {
			out, errOut, code := ctlRun(t, bin, sock, nobody, args...)
			if args[0] == "-L" {
				t.Logf("socket mode %v: drlb ctl -L -n as uid 65534: exit %d: %s", mode, code, strings.TrimSpace(errOut))
			}
			if code != 1 || out != "" || !strings.Contains(errOut, "permission denied") || strings.Contains(errOut, "198.18.0.1") {
				t.Errorf("socket mode %v: drlb ctl %s as uid 65534: exit %d, output %q, error %q; want exit 1 saying permission denied and showing nothing",
					mode, strings.Join(args, " "), code, out, errOut)
			}
			refused++
		}
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		t.Fatal(err)
	}
	loop.settle("9")
	if save := ctl("-S", "-n"); save != saveBefore {
		t.Errorf("-S -n changed while uid 65534 ran drlb ctl:\n%s\nwas\n%s", save, saveBefore)
	}
	statsAfter := stats()
	for _, v := range []netip.Addr{vip, vip2} {
		if a, b := counter(t, find(statsAfter, tcp(v)).fields, statConns), counter(t, find(statsBefore, tcp(v)).fields, statConns); a < b {
			t.Errorf("%s counts %d connections after uid 65534 ran drlb ctl -Z, %d before: zeroed", tcp(v), a, b)
		}
	}
	if n := strings.Count(p.logs.String(), "configuration applied"); n != applied {
		t.Errorf("%d configurations applied, want %d: uid 65534 changed the director", n, applied)
	}
	wantShape("after uid 65534", reloaded)

	loop.stop()
	loop.checkNew(300, []servedCheck{
		{"rs3 before -a", "1", vip, rs3, false},
		{"rs1 before -e -w 0", "1", vip, rs1, true},
		{"rs2 before -d", "1", vip, rs2, true},
		{"rs3 after -a", "2", vip, rs3, true},
		{"rs1 after -e -w 0", "3", vip, rs1, false},
		{"rs1 drained, after -d", "4", vip, rs1, false},
		{"rs2 after -d", "4", vip, rs2, false},
		{"rs3 after -d", "4", vip, rs3, true},
		{"the new VIP after -A, -a", "5", vip2, rs3, true},
		{"rs1 drained, after --reload", "6", vip, rs1, false},
		// wlc sends new connections to the server with the fewest (active
		// x 256 + inactive): rs2, just added, where rs3 holds a hundred
		// or more closing ones.
		{"rs2 back after --reload", "6", vip, rs2, true},
		{"the new VIP after --reload", "6", vip2, rs3, true},
		{"rs1 after the refused --reload", "7", vip, rs1, false},
		{"rs2 after the refused --reload", "7", vip, rs2, true},
		{"the new VIP after the refused --reload", "7", vip2, rs3, true},
		{"rs1 after -Z", "8", vip, rs1, false},
		{"the VIP after -Z", "8", vip, nil, true},
		{"the new VIP after -Z", "8", vip2, rs3, true},
		{"rs1 after uid 65534", "9", vip, rs1, false},
		{"the VIP after uid 65534", "9", vip, nil, true},
		{"the new VIP after uid 65534", "9", vip2, rs3, true},
	})
	loop.checkKeepAlives(rs1, rs2, deleted)
	requests, failed := loop.report(rs2)
	t.Logf("%d requests, %d failed, across %d drlb ctl edits (-a, -e -w 0, -d, -A, -a, -Z), 2 reloads (1 applied, 1 refused) and %d refused commands as uid 65534",
		requests, failed, edits, refused)

	// (8) -S -n round-trips. The rules saved read back (config.Load) to
	// the same rules, and to the services of the file applied last.
	saved := ctl("-S", "-n")
	if saved != wantSave {
		t.Fatalf("drlb ctl -S -n:\n%s\nwant\n%s", saved, wantSave)
	}
	rules := filepath.Join(dir, "rules")
	if err := os.WriteFile(rules, []byte(saved), 0o644); err != nil {
		t.Fatal(err)
	}
	fromRules, err := config.Load(rules)
	if err != nil {
		t.Fatalf("config.Load(drlb ctl -S -n): %v", err)
	}
	if again := config.SaveIpvsadm(fromRules, true); again != saved {
		t.Errorf("drlb ctl -S -n read back and saved again:\n%s\nwant\n%s", again, saved)
	}
	fromYAML, err := config.Load(appliedYAML)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := withoutLines(fromRules.Services), withoutLines(fromYAML.Services); !reflect.DeepEqual(a, b) {
		t.Errorf("drlb ctl -S -n read back:\n%+v\nthe file applied:\n%+v", a, b)
	}
	if out, err := exec.Command(drlbBinary, "check", "-c", rules).CombinedOutput(); err != nil {
		t.Errorf("drlb check -c (drlb ctl -S -n): %v\n%s", err, out)
	}
	// A director restarted on the saved rules runs the same table.
	table := shape(list())
	p.stop()
	sock2 := filepath.Join(dir, "drlb2.sock")
	startDirectorN(t, l, 3, "run", "-i", l.Director.Iface, "-c", rules, "-ctl", sock2)
	if got := shape(parseIpvsadm(t, ctlAt(sock2, "-L", "-n"), listHeader)); got != table {
		t.Errorf("drlb run -c (drlb ctl -S -n): -L -n shows\n%s\nthe first director showed\n%s", got, table)
	}
	if got := ctlAt(sock2, "-S", "-n"); got != saved {
		t.Errorf("drlb run -c (drlb ctl -S -n): -S -n is\n%s\nwant\n%s", got, saved)
	}
	for i := 0; i < 10; i++ {
		v := []netip.Addr{vip, vip2}[i%2]
		server, err := askNew(t.Context(), l, v)
		switch {
		case err != nil:
			t.Errorf("drlb run -c (drlb ctl -S -n): request to %s: %v", v, err)
		case server == rs1.Name || v == vip2 && server != rs3.Name:
			t.Errorf("drlb run -c (drlb ctl -S -n): request to %s answered by %s", v, server)
		}
	}
}

// withoutLines returns copies of svcs without their file lines, which
// differ between two files saying the same.
func withoutLines(svcs []config.Service) []config.Service {
	out := make([]config.Service, len(svcs))
	for i, s := range svcs {
		s.Line = 0
		s.RealServers = append([]config.RealServer(nil), s.RealServers...)
		for j := range s.RealServers {
			s.RealServers[j].Line = 0
		}
		out[i] = s
	}
	return out
}

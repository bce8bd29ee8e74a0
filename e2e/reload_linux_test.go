package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestReloadLive: while clients open a new connection every ~20 ms and
// four keep-alive connections make requests, SIGHUP the director with (1)
// a real server added, (2) one drained, (3) the drained one deleted, (4)
// a service added on a new VIP with its real server, (5) a broken file.
// No request fails and no keep-alive connection breaks, except those to
// the deleted server, which fail fast with a reset as with IPVS. Every
// step is checked in drlb ctl list. The client side is clientLoop, shared
// with TestCtlLive. It runs with AF_PACKET and with AF_XDP on a link
// with two receive queues (a worker per queue: the new VIP reaches every
// queue's XDP program and every worker's sockets).
func TestReloadLive(t *testing.T) {
	testutil.NeedRoot(t)
	for _, tc := range []struct {
		name   string
		queues int
		args   []string
	}{
		{"afpacket", 0, nil},
		{"afxdp-2queues", 2, []string{"-io", "afxdp"}},
	} {
		t.Run(tc.name, func(t *testing.T) { testReloadLive(t, tc.queues, tc.args) })
	}
}

func testReloadLive(t *testing.T, queues int, args []string) {
	l := newLab(t, testbed.Options{RealServers: 3, DirectorQueues: queues})
	if queues > 0 {
		// XDP frames carry no partial checksums (TestAFXDP).
		if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
			t.Fatal(err)
		}
	}
	rs1, rs2, rs3 := l.RealServers[0], l.RealServers[1], l.RealServers[2]
	vip2 := netip.MustParseAddr("198.18.0.101")
	serveSecondVIP(t, l, rs3, vip2)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "drlb.yaml")
	sock := filepath.Join(dir, "drlb.sock")
	write := func(services ...string) { t.Helper(); writeYAML(t, l, cfgPath, services...) }
	svc := func(v netip.Addr, reals ...weighted) string { return yamlService(v, "rr", reals...) }
	ctl := func() string {
		t.Helper()
		out, err := exec.Command(drlbBinary, "ctl", "list", "-s", sock).CombinedOutput()
		if err != nil {
			t.Fatalf("drlb ctl list: %v\n%s", err, out)
		}
		return string(out)
	}
	// row is a real server's line of drlb ctl list, fields folded:
	// "-> ADDR:80 Route WEIGHT ACTIVE INACTIVE" ("" when absent).
	row := func(list string, h *testbed.Host) string {
		return fieldsOf(list, fmt.Sprintf("  -> %s:%d", h.IPv4, testbed.HTTPPort))
	}
	// waitRow polls drlb ctl list until h's row starts with want (bounded).
	waitRow := func(h *testbed.Host, want string) string {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			list := ctl()
			if got := row(list, h); strings.HasPrefix(got+" ", want+" ") || want == "" && got == "" {
				return list
			}
			if time.Now().After(deadline) {
				t.Fatalf("drlb ctl list: %s row %q, want %q\n%s", h.Name, row(list, h), want, list)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	write(svc(l.VIP, weighted{rs1, 1}, weighted{rs2, 1}))
	p := startDirectorN(t, l, 2, append([]string{"run", "-c", cfgPath, "-ctl", sock}, args...)...)
	applied := 0
	// hup signals drlb and waits until it applied the file; it returns
	// when the signal went.
	hup := func(what string) time.Time {
		t.Helper()
		applied++
		sent := time.Now()
		p.signal(syscall.SIGHUP)
		p.waitLog("configuration applied", applied, 10*time.Second)
		t.Logf("(%d) %s: applied", applied, what)
		return sent
	}

	// Four keep-alive connections first: rr puts two on rs1, two on rs2.
	loop := newClientLoop(t, l, 4)
	if on := loop.on(); on[rs1.Name] != 2 || on[rs2.Name] != 2 {
		t.Fatalf("keep-alive connections on %v, want two on rs1 and two on rs2", on)
	}
	// The traffic, bounded in count and time; stopped at the end.
	loop.run(3000, 2000)

	waitRow(rs1, "-> "+rs1.IPv4.String()+":80 Route 1")
	loop.settle("1")

	// (1) rs3 added, in front of the others.
	write(svc(l.VIP, weighted{rs3, 1}, weighted{rs1, 1}, weighted{rs2, 1}))
	hup("rs3 added")
	waitRow(rs3, "-> "+rs3.IPv4.String()+":80 Route 1")
	loop.settle("2")

	// (2) rs2 drained: its two keep-alive connections are its only ones.
	write(svc(l.VIP, weighted{rs3, 1}, weighted{rs1, 1}, weighted{rs2, 0}))
	hup("rs2 drained")
	loop.settle("3")
	waitRow(rs2, "-> "+rs2.IPv4.String()+":80 Route 0 2")

	// (3) rs2 deleted: its connections end at their next request.
	write(svc(l.VIP, weighted{rs3, 1}, weighted{rs1, 1}))
	deleted := hup("rs2 deleted")
	waitRow(rs2, "")
	loop.settle("4")

	// (4) A service on a new VIP, with rs3.
	write(svc(l.VIP, weighted{rs3, 1}, weighted{rs1, 1}), svc(vip2, weighted{rs3, 1}))
	hup("service added on " + vip2.String())
	list := ctl()
	if !strings.Contains(list, "TCP  "+vip2.String()+":80 rr") || !strings.Contains(list, fmt.Sprintf("-> %s:80", rs3.IPv4)) {
		t.Fatalf("drlb ctl list lacks the new service:\n%s", list)
	}
	loop.setTargets(l.VIP, vip2)
	loop.settle("5")

	// (5) A broken file: refused with its line, nothing changes.
	write(svc(l.VIP, weighted{rs3, 1}, weighted{rs1, -1}))
	before := ctl()
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused", 1, 10*time.Second)
	if !strings.Contains(p.logs.String(), cfgPath+":10:17: services[0].realservers[1].weight: \\\"-1\\\": must be 0..65535") {
		t.Errorf("refusal does not place the error at drlb.yaml:10:17:\n%s", p.logs.String())
	}
	loop.settle("6")
	after := ctl()
	for _, h := range []*testbed.Host{rs1, rs3} {
		if b, a := row(before, h), row(after, h); len(strings.Fields(b)) < 4 || !strings.HasPrefix(a, strings.Join(strings.Fields(b)[:4], " ")) {
			t.Errorf("%s changed by a refused reload: %q -> %q", h.Name, b, a)
		}
	}
	if !strings.Contains(after, "TCP  "+vip2.String()+":80 rr") || row(after, rs2) != "" {
		t.Errorf("a refused reload changed the services:\n%s", after)
	}
	if n := strings.Count(p.logs.String(), "configuration applied"); n != applied {
		t.Errorf("%d configurations applied, want %d: the broken file was applied", n, applied)
	}

	loop.stop()

	// Requests on new connections: none failed, each step took effect.
	loop.checkNew(200, []servedCheck{
		{"rs3 before it was added", "1", l.VIP, rs3, false},
		{"rs3 once added", "2", l.VIP, rs3, true},
		{"rs2 while drained", "3", l.VIP, rs2, false},
		{"rs2 once deleted", "4", l.VIP, rs2, false},
		{"rs1 throughout", "4", l.VIP, rs1, true},
		{"the new VIP", "5", vip2, rs3, true},
	})
	// Keep-alive connections: those on rs1 never broke; those on the
	// deleted rs2 ended with a reset at their first request after the
	// delete, within a second.
	loop.checkKeepAlives(rs1, rs2, deleted)
	requests, failed := loop.report(rs2)
	t.Logf("across 4 applied reloads and 1 refused: %d requests, %d failed", requests, failed)
}

// TestReloadRefusedByKernel: a director that must forward (-blackhole-vip)
// reloads a file with a new VIP that already has a route of the
// operator's: the blackhole route cannot go in, and the whole reload is
// refused, as start-up refuses such a VIP. The running services stay, the
// operator's route is untouched, drlb does not answer ARP for the new
// VIP (its frames would not reach it), and the old VIP keeps its
// blackhole route. Before, the reload was applied with the route's
// failure only logged: the new VIP answered by ARP, and a forwarding
// kernel forwarded duplicates of its frames.
func TestReloadRefusedByKernel(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 1})
	rs := l.RealServers[0]
	vip2 := netip.MustParseAddr("198.18.0.102") // on the LAN, used by no host
	if err := l.Do(l.Director, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/"+l.Director.Iface+"/forwarding", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	nh, lk := lanLink(t, l.Director)
	// The operator's own route for the new VIP: through rs1.
	theirs := &netlink.Route{LinkIndex: lk.Attrs().Index, Dst: &net.IPNet{IP: vip2.AsSlice(), Mask: net.CIDRMask(32, 32)}, Gw: rs.IPv4.AsSlice()}
	if err := nh.RouteAdd(theirs); err != nil {
		t.Fatal(err)
	}
	routeTo := func(v netip.Addr) (netlink.Route, bool) {
		t.Helper()
		routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.Equal(v.AsSlice()) {
				return r, true
			}
		}
		return netlink.Route{}, false
	}

	dir := t.TempDir()
	cfgPath, sock := filepath.Join(dir, "drlb.yaml"), filepath.Join(dir, "drlb.sock")
	one := yamlService(l.VIP, "rr", weighted{rs, 1})
	writeYAML(t, l, cfgPath, one)
	p := startDirectorN(t, l, 1, "run", "-c", cfgPath, "-ctl", sock, "-blackhole-vip")
	p.waitLog("installed a blackhole route", 1, 5*time.Second)

	writeYAML(t, l, cfgPath, one, yamlService(vip2, "rr", weighted{rs, 1}))
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused", 1, 10*time.Second)
	if !strings.Contains(p.logs.String(), "blackhole route for "+vip2.String()) {
		t.Errorf("the refusal does not name the new VIP's blackhole route:\n%s", p.logs.String())
	}
	out, err := exec.Command(drlbBinary, "ctl", "list", "-s", sock).CombinedOutput()
	if err != nil {
		t.Fatalf("drlb ctl list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), vip2.String()) || !strings.Contains(string(out), l.VIP.String()) {
		t.Errorf("a refused reload changed the services:\n%s", out)
	}
	if r, ok := routeTo(vip2); !ok || r.Type == unix.RTN_BLACKHOLE || !r.Gw.Equal(rs.IPv4.AsSlice()) {
		t.Errorf("the operator's route for %v: %+v (present %v), want it as it was", vip2, r, ok)
	}
	if r, ok := routeTo(l.VIP); !ok || r.Type != unix.RTN_BLACKHOLE {
		t.Errorf("the running VIP's blackhole route: %+v (present %v)", r, ok)
	}
	// The router asks for the new VIP (a datagram to it makes the router
	// ARP, as in resolveVIP; no tool whose failure could keep the request
	// from going out): nobody may answer its ARP request.
	uc, err := l.DialUDP(l.Router, netip.AddrPortFrom(vip2, 9))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := uc.Write([]byte("who has the new VIP")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // an ARP reply takes milliseconds
	if mac := neighborMAC(t, l, l.Router, vip2); len(mac) != 0 {
		t.Errorf("the router learnt %v at %v after a refused reload", vip2, mac)
	}
}

// TestReloadRefusesVIPOnDirector: a reload or a ctl -A that adds a VIP
// the director's own interface holds is refused, naming where it is and
// the fix, as start-up refuses it; the running services stay. It used to
// be applied: the director's kernel answered the new VIP's ARP and its
// connections beside drlb.
func TestReloadRefusesVIPOnDirector(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 1})
	rs := l.RealServers[0]
	vip2 := netip.MustParseAddr("198.18.0.103") // on the LAN, used by no host
	nh, lk := lanLink(t, l.Director)
	if err := nh.AddrAdd(lk, &netlink.Addr{IPNet: &net.IPNet{IP: vip2.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath, sock := filepath.Join(dir, "drlb.yaml"), filepath.Join(dir, "drlb.sock")
	one := yamlService(l.VIP, "rr", weighted{rs, 1})
	writeYAML(t, l, cfgPath, one)
	p := startDirectorN(t, l, 1, "run", "-c", cfgPath, "-ctl", sock)

	writeYAML(t, l, cfgPath, one, yamlService(vip2, "rr", weighted{rs, 1}))
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused", 1, 10*time.Second)
	want := "configured on " + l.Director.Iface
	if logs := p.logs.String(); !strings.Contains(logs, "services[1].vip "+vip2.String()) || !strings.Contains(logs, want) {
		t.Errorf("the refusal does not name the service and where the VIP is (%q):\n%s", want, logs)
	}
	out, err := exec.Command(drlbBinary, "ctl", "-s", sock, "-A", "-t", netip.AddrPortFrom(vip2, 80).String(), "-s", "rr").CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("drlb ctl -A -t %s:80: %v\n%s\nwant it refused, saying %q", vip2, err, out, want)
	}
	out, err = exec.Command(drlbBinary, "ctl", "list", "-s", sock).CombinedOutput()
	if err != nil {
		t.Fatalf("drlb ctl list: %v\n%s", err, out)
	}
	if strings.Contains(string(out), vip2.String()) || !strings.Contains(string(out), l.VIP.String()) {
		t.Errorf("a refused change changed the services:\n%s", out)
	}
}

// TestReloadRemovedVIPNotAnnounced: a VIP that a reload removes while
// drlb still sends its start-up gratuitous ARP (5, 1 s apart) gets none
// after the reload. Each one would draw the router's traffic for it back
// to a director that no longer answers for it, from the director it was
// moved to. The kept VIP's announcements go on, so the capture sees them.
func TestReloadRemovedVIPNotAnnounced(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 1})
	rs := l.RealServers[0]
	vip2 := netip.MustParseAddr("198.18.0.101")
	cfgPath := filepath.Join(t.TempDir(), "drlb.yaml")
	svc := func(v netip.Addr) string { return yamlService(v, "rr", weighted{rs, 1}) }
	writeYAML(t, l, cfgPath, svc(l.VIP), svc(vip2))

	var mu sync.Mutex
	seen := map[netip.Addr][]time.Time{} // gratuitous ARP heard by the router, per VIP
	startCapture(t, l, l.Router, l.Router.Iface, func(f []byte) {
		if len(f) < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 1 || !bytes.Equal(f[28:32], f[38:42]) {
			return
		}
		mu.Lock()
		v := netip.AddrFrom4([4]byte(f[28:32]))
		seen[v] = append(seen[v], time.Now())
		mu.Unlock()
	})
	heard := func(v netip.Addr, since time.Time) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, at := range seen[v] {
			if at.After(since) {
				n++
			}
		}
		return n
	}

	p := startDirectorN(t, l, 1, "run", "-c", cfgPath)
	for deadline := time.Now().Add(5 * time.Second); heard(vip2, time.Time{}) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no gratuitous ARP for %s within 5 s of the start", vip2)
		}
	}
	writeYAML(t, l, cfgPath, svc(l.VIP))
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration applied", 1, 10*time.Second)
	// A frame sent before the reload ended is heard within microseconds;
	// drlb's next one for vip2 was due a second after the last.
	applied := time.Now().Add(100 * time.Millisecond)
	time.Sleep(5 * time.Second) // past the last start-up announcement
	if n := heard(l.VIP, applied); n == 0 {
		t.Fatalf("no gratuitous ARP for the kept VIP %s after the reload either: the capture shows nothing", l.VIP)
	}
	if n := heard(vip2, applied); n != 0 {
		t.Errorf("%d gratuitous ARP for %s after the reload that removed it (%d before, %d for the kept VIP %s after)",
			n, vip2, heard(vip2, time.Time{})-n, heard(l.VIP, applied), l.VIP)
	}
}

// TestInterfaceDeletedEndsDirector: the director's interface deleted
// (a VLAN, bond or veth set up anew), drlb run ends with status 1 and
// says why, so that systemd's Restart=on-failure starts it on the new
// one. It used to wait for the old one for good, forwarding nothing.
func TestInterfaceDeletedEndsDirector(t *testing.T) {
	testutil.NeedRoot(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"afpacket", nil},
		{"afxdp", []string{"-io", "afxdp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, testbed.Options{RealServers: 1})
			cfgPath := filepath.Join(t.TempDir(), "drlb.yaml")
			writeYAML(t, l, cfgPath, yamlService(l.VIP, "rr", weighted{l.RealServers[0], 1}))
			p := startDirectorN(t, l, 1, append([]string{"run", "-c", cfgPath}, tc.args...)...)
			if err := l.Do(l.Director, func() error {
				lk, err := netlink.LinkByName(l.Director.Iface)
				if err != nil {
					return err
				}
				return netlink.LinkDel(lk)
			}); err != nil {
				t.Fatalf("deleting %s: %v", l.Director.Iface, err)
			}
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatalf("drlb still runs 10 s after its interface was deleted:\n%s", p.logs.String())
			}
			p.checked = true // ended on purpose: not a failure of stop's
			var ee *exec.ExitError
			if !errors.As(p.err, &ee) || ee.ExitCode() != 1 {
				t.Errorf("drlb ended with %v, want exit status 1", p.err)
			}
			if want := "interface deleted: " + l.Director.Iface + " was deleted"; !strings.Contains(p.logs.String(), want) {
				t.Errorf("drlb's output does not say %q:\n%s", want, p.logs.String())
			}
		})
	}
}

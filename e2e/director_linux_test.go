package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// get fetches url from h; close asks for a new connection per request.
func get(t *testing.T, c *http.Client, url string, close bool) (server, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = close
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return resp.Header.Get(testbed.ServerHeader), string(b)
}

// distribution makes n new connections from h to the VIP and counts the
// answers per real server, checking each answer names its server.
func distribution(t *testing.T, l *testbed.Lab, h *testbed.Host, n int) map[string]int {
	t.Helper()
	c := l.HTTPClient(h)
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("http://%s/", l.VIP)
	got := map[string]int{}
	for i := 0; i < n; i++ {
		server, body := get(t, c, url, true)
		if body != server+"\n" {
			t.Fatalf("request %d: body %q from %q", i, body, server)
		}
		got[server]++
	}
	return got
}

func TestDirector(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3, LANClient: true})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "drlb.yaml")

	t.Run("rr spreads 300 connections evenly and replies bypass the director", func(t *testing.T) {
		writeConfig(t, l, cfg, "rr", nil)
		// Captures: on the director, every frame of the VIP both ways; on
		// the router, every ARP reply about the VIP.
		var in, out, srcVIP int
		dcap := startCapture(t, l, l.Director, l.Director.Iface, func(f []byte) {
			src, dst, ok := ipv4Addrs(f)
			if !ok {
				return
			}
			switch {
			case src == l.VIP:
				srcVIP++
			case dst == l.VIP && bytes.Equal(f[6:12], l.Director.MAC):
				out++
			case dst == l.VIP && bytes.Equal(f[0:6], l.Director.MAC):
				in++
			}
		})
		var vipAnswers, foreignAnswers int
		rcap := startCapture(t, l, l.Router, l.Router.Iface, func(f []byte) {
			if len(f) < 42 || f[12] != 0x08 || f[13] != 0x06 || f[21] != 2 {
				return // ARP replies only
			}
			if netip.AddrFrom4([4]byte(f[28:32])) == l.VIP {
				if bytes.Equal(f[22:28], l.Director.MAC) {
					vipAnswers++
				} else {
					foreignAnswers++
				}
			}
		})
		// Make the router forget the VIP so it asks again during the test.
		flushNeighbors(t, l, l.Router)
		startDirector(t, l, "run", "-c", cfg)

		got := distribution(t, l, l.Client, 300)
		for _, rs := range l.RealServers {
			if got[rs.Name] != 100 {
				t.Errorf("rr: %s answered %d of 300, want 100 (%v)", rs.Name, got[rs.Name], got)
			}
		}
		unlock := dcap.settle()
		if srcVIP != 0 {
			t.Errorf("%d frames with source VIP crossed the director: replies must go straight to the client", srcVIP)
		}
		if in == 0 || out != in {
			t.Errorf("director received %d VIP frames and sent %d: it must send exactly what it receives", in, out)
		}
		unlock()
		unlock = rcap.settle()
		if vipAnswers == 0 || foreignAnswers != 0 {
			t.Errorf("router saw %d ARP answers for the VIP from the director and %d from others (real servers must stay silent)", vipAnswers, foreignAnswers)
		}
		unlock()
		if mac := neighborMAC(t, l, l.Router, l.VIP); !bytes.Equal(mac, l.Director.MAC) {
			t.Errorf("router's neighbor entry for the VIP is %v, want the director's %v", mac, l.Director.MAC)
		}
		t.Logf("rr: %v; director in %d / out %d VIP frames; router saw %d VIP ARP answers, all from the director", got, in, out, vipAnswers)
	})

	t.Run("wrr 3:2:1 gives 150/100/50", func(t *testing.T) {
		writeConfig(t, l, cfg, "wrr", []int{3, 2, 1})
		startDirector(t, l, "run", "-c", cfg)
		got := distribution(t, l, l.Client, 300)
		for i, want := range []int{150, 100, 50} {
			if n := got[l.RealServers[i].Name]; n != want {
				t.Errorf("wrr: %s answered %d, want %d (%v)", l.RealServers[i].Name, n, want, got)
			}
		}
	})

	t.Run("uploads, downloads, UDP, keep-alive, LAN client, IPv6, curl", func(t *testing.T) {
		writeConfig(t, l, cfg, "rr", nil)
		startDirector(t, l, "run", "-c", cfg)
		c := l.HTTPClient(l.Client)
		defer c.CloseIdleConnections()

		// 1 MB up and down through each real server (rr: three in a row).
		for i := 0; i < 3; i++ {
			upload(t, c, fmt.Sprintf("http://%s/upload", l.VIP), 1<<20)
			download(t, c, fmt.Sprintf("http://%s/bytes?n=%d", l.VIP, 1<<20), 1<<20)
		}

		// 1000 UDP datagrams, each echoed.
		conn, err := l.DialUDP(l.Client, netip.AddrPortFrom(l.VIP, testbed.EchoPort))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		buf := make([]byte, 2048)
		echoed := 0
		for i := 0; i < 1000; i++ {
			msg := fmt.Sprintf("datagram %d", i)
			if _, err := conn.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("datagram %d: no echo: %v", i, err)
			}
			if strings.HasSuffix(string(buf[:n]), ": "+msg) {
				echoed++
			}
		}
		if echoed != 1000 {
			t.Errorf("%d of 1000 datagrams echoed", echoed)
		}

		// One keep-alive connection making 100 requests stays on one server.
		c = l.HTTPClient(l.Client) // a fresh pool: one new connection
		defer c.CloseIdleConnections()
		servers := map[string]int{}
		conns := 0
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
			if !i.Reused {
				conns++
			}
		}}
		for i := 0; i < 100; i++ {
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, fmt.Sprintf("http://%s/", l.VIP), nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("keep-alive request %d: %v", i, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			servers[resp.Header.Get(testbed.ServerHeader)]++
		}
		if len(servers) != 1 || conns != 1 {
			t.Errorf("keep-alive: %d connections, servers %v; want one connection on one server", conns, servers)
		}

		// A client on the LAN itself, and an IPv6 client.
		if got := distribution(t, l, l.LANClient, 30); len(got) != 3 {
			t.Errorf("LAN client reached %v, want all three real servers", got)
		}
		c6 := l.HTTPClient(l.Client)
		defer c6.CloseIdleConnections()
		seen6 := map[string]bool{}
		for i := 0; i < 6; i++ {
			server, _ := get(t, c6, fmt.Sprintf("http://[%s]/", l.VIP6), true)
			seen6[server] = true
		}
		if len(seen6) != 3 {
			t.Errorf("IPv6 VIP reached %v, want all three real servers", seen6)
		}

		// curl, when installed, as a second real client.
		if curl, err := exec.LookPath("curl"); err == nil {
			var out []byte
			err := l.Do(l.Client, func() error {
				var err error
				out, err = exec.Command(curl, "-sS", "--noproxy", "*", "--max-time", "5", fmt.Sprintf("http://%s/", l.VIP)).CombinedOutput()
				return err
			})
			if err != nil || !strings.HasPrefix(string(out), "rs") {
				t.Errorf("curl through the VIP: %v: %s", err, out)
			}
		} else if os.Getenv("CI") == "true" {
			// .ci/run installs curl: without it the subtest's curl check
			// would pass unrun.
			t.Error("CI=true: curl not installed, refusing to skip the curl client")
		} else {
			t.Log("curl not installed: the Go client alone was used")
		}
	})

	t.Run("mh: a restarted director keeps open connections", func(t *testing.T) {
		writeConfig(t, l, cfg, "mh", nil)
		p := startDirector(t, l, "run", "-c", cfg)
		type session struct {
			client *http.Client
			server string
		}
		var sessions []session
		for i := 0; i < 6; i++ {
			// Each client has its own transport, so its own connection.
			c := l.HTTPClient(l.Client)
			defer c.CloseIdleConnections()
			server, _ := get(t, c, fmt.Sprintf("http://%s/", l.VIP), false)
			sessions = append(sessions, session{c, server})
		}
		p.stop()
		startDirector(t, l, "run", "-c", cfg)
		for i, s := range sessions {
			for j := 0; j < 5; j++ {
				reused := false
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, fmt.Sprintf("http://%s/", l.VIP), nil)
				resp, err := s.client.Do(req)
				if err != nil {
					t.Fatalf("session %d after restart: %v", i, err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if got := resp.Header.Get(testbed.ServerHeader); got != s.server || !reused {
					t.Fatalf("session %d after restart: answered by %s on a reused connection=%v, want %s on the same connection", i, got, reused, s.server)
				}
			}
		}
	})

	t.Run("weight 0 drains: no new connections, the open one continues", func(t *testing.T) {
		writeConfig(t, l, cfg, "rr", nil)
		p := startDirector(t, l, "run", "-c", cfg)
		keep := l.HTTPClient(l.Client)
		defer keep.CloseIdleConnections()
		drained, _ := get(t, keep, fmt.Sprintf("http://%s/", l.VIP), false)
		weights := []int{1, 1, 1}
		for i, rs := range l.RealServers {
			if rs.Name == drained {
				weights[i] = 0
			}
		}
		writeConfig(t, l, cfg, "rr", weights)
		p.signal(syscall.SIGHUP)
		p.waitLog("weight changed", 3, 5*time.Second) // one per service
		got := distribution(t, l, l.Client, 20)
		if got[drained] != 0 {
			t.Errorf("quiesced %s got %d new connections: %v", drained, got[drained], got)
		}
		for i := 0; i < 5; i++ {
			if server, _ := get(t, keep, fmt.Sprintf("http://%s/", l.VIP), false); server != drained {
				t.Fatalf("open connection moved from %s to %s while draining", drained, server)
			}
		}
	})
}

func upload(t *testing.T, c *http.Client, url string, n int) {
	t.Helper()
	body := make([]byte, n)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)
	resp, err := c.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("upload %d bytes: %v", n, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(got)) != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload of %d bytes to %s arrived damaged: digest %q", n, resp.Header.Get(testbed.ServerHeader), got)
	}
}

func download(t *testing.T, c *http.Client, url string, n int64) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != n {
		t.Fatalf("download from %s: %d of %d bytes, %v", resp.Header.Get(testbed.ServerHeader), got, n, err)
	}
}

// neighborMAC returns h's neighbor entry for addr on its LAN interface.
func neighborMAC(t *testing.T, l *testbed.Lab, h *testbed.Host, addr netip.Addr) net.HardwareAddr {
	t.Helper()
	nh, link := lanLink(t, h)
	fam := netlink.FAMILY_V4
	if !addr.Is4() {
		fam = netlink.FAMILY_V6
	}
	neighs, err := nh.NeighList(link.Attrs().Index, fam)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == addr {
			return n.HardwareAddr
		}
	}
	return nil
}

// flushNeighbors empties h's neighbor table on its LAN interface.
func flushNeighbors(t *testing.T, l *testbed.Lab, h *testbed.Host) {
	t.Helper()
	nh, link := lanLink(t, h)
	neighs, _ := nh.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	for i := range neighs {
		_ = nh.NeighDel(&neighs[i])
	}
}

// TestDirectorRefusesBadSetup: a director that would misbehave refuses to
// start and says what to change; quick-start flags work without a file.
func TestDirectorRefusesBadSetup(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 1})
	quick := []string{"run", "-i", l.Director.Iface, "-t", netip.AddrPortFrom(l.VIP, testbed.HTTPPort).String(), "-s", "rr",
		"-r", l.RealServers[0].IPv4.String()}

	refuse := func(t *testing.T, want ...string) {
		t.Helper()
		var out []byte
		err := l.Do(l.Director, func() error {
			// Bounded: a regression that lets drlb start would
			// otherwise hold the test until go test's timeout,
			// which runs no cleanup.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, drlbBinary, privateCtl(t, quick)...)
			cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
			cmd.WaitDelay = 5 * time.Second
			var err error
			out, err = cmd.CombinedOutput()
			return err
		})
		if err == nil {
			t.Fatalf("drlb started on a bad setup:\n%s", out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Fatalf("refusal does not mention %q:\n%s", w, out)
			}
		}
	}
	setSysctl := func(t *testing.T, key, val string) {
		t.Helper()
		if err := l.Do(l.Director, func() error {
			return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644)
		}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("VIP bound on the director", func(t *testing.T) {
		nh := testutil.NetlinkHandle(t, l.Director.NS)
		lo, err := nh.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(l.VIP.String() + "/32")
		if err := nh.AddrAdd(lo, addr); err != nil {
			t.Fatal(err)
		}
		defer nh.AddrDel(lo, addr)
		refuse(t, "refusing to start", "configured on lo", "ip addr del "+l.VIP.String()+"/32 dev lo")
	})
	t.Run("forwarding on", func(t *testing.T) {
		setSysctl(t, "net/ipv4/conf/"+l.Director.Iface+"/forwarding", "1")
		defer setSysctl(t, "net/ipv4/conf/"+l.Director.Iface+"/forwarding", "0")
		refuse(t, "refusing to start", "forwarding", "net.ipv4.ip_forward=0")
	})
	t.Run("forwarding on with -blackhole-vip: no duplicates, route removed on exit", func(t *testing.T) {
		key := "net/ipv4/conf/" + l.Director.Iface + "/forwarding"
		setSysctl(t, key, "1")
		defer setSysctl(t, key, "0")
		rs := l.RealServers[0]
		var syns int
		startCapture(t, l, rs, rs.Iface, func(f []byte) {
			src, dst, ok := ipv4Addrs(f)
			// TCP SYN (flags byte 13 of the TCP header, no ACK) from the client to the VIP.
			if ok && src == l.Client.IPv4 && dst == l.VIP && len(f) > 14+20+14 && f[14+9] == 6 && f[14+20+13]&0x12 == 0x02 {
				syns++
			}
		})
		// Give the director's kernel a next hop for the VIP (here a
		// neighbor entry VIP -> rs1; in the field a route, or a VIP
		// outside the LAN routed back by the router): now its own copy of
		// each VIP frame would be forwarded to rs1 as a duplicate.
		nh, lk := lanLink(t, l.Director)
		neigh := &netlink.Neigh{LinkIndex: lk.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: l.VIP.AsSlice(), HardwareAddr: rs.MAC}
		if err := nh.NeighSet(neigh); err != nil {
			t.Fatal(err)
		}
		defer nh.NeighDel(neigh)
		p := startDirectorN(t, l, 1, append(quick, "-blackhole-vip")...)
		p.waitLog("installed a blackhole route", 1, 5*time.Second)
		hasRoute := func() bool {
			routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range routes {
				if r.Type == unix.RTN_BLACKHOLE && r.Dst != nil && r.Dst.IP.Equal(l.VIP.AsSlice()) {
					return true
				}
			}
			return false
		}
		if !hasRoute() {
			t.Fatal("no blackhole route for the VIP while drlb runs")
		}
		c := l.HTTPClient(l.Client)
		defer c.CloseIdleConnections()
		for i := 0; i < 5; i++ {
			get(t, c, fmt.Sprintf("http://%s/", l.VIP), true)
		}
		time.Sleep(200 * time.Millisecond)
		p.stop()
		if syns != 5 {
			t.Errorf("the real server saw %d SYNs for 5 connections: the kernel's copy was forwarded too", syns)
		}
		if hasRoute() {
			t.Error("the blackhole route outlived drlb")
		}
	})
	t.Run("missing interface", func(t *testing.T) {
		saved := quick[2]
		quick[2] = "nosuch0"
		defer func() { quick[2] = saved }()
		refuse(t, "nosuch0", "does not exist")
	})
	t.Run("quick start flags serve the VIP, -trace narrates", func(t *testing.T) {
		p := startDirectorN(t, l, 1, append(quick, "-trace")...)
		c := l.HTTPClient(l.Client)
		defer c.CloseIdleConnections()
		if server, _ := get(t, c, fmt.Sprintf("http://%s/", l.VIP), true); server != l.RealServers[0].Name {
			t.Fatalf("answered by %q", server)
		}
		rs := l.RealServers[0]
		p.waitLog(fmt.Sprintf(" -> %s:80 [S] | service tcp %s:80 (rr) | real server %s | sent dst %s src %s, IP packet unchanged",
			l.VIP, l.VIP, rs.IPv4, rs.MAC, l.Director.MAC), 1, 5*time.Second)
		p.waitLog("trace: forward new tcp ", 1, time.Second)
	})
}

// TestDoctorInLab: on a correct lab, drlb doctor passes for the director
// and for every real server; on a real server that answers ARP for the VIP
// it fails with the fix, and drlb realserver up repairs it.
func TestDoctorInLab(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 2})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	drlb := func(h *testbed.Host, args ...string) (string, error) {
		var out []byte
		err := l.Do(h, func() error {
			var err error
			out, err = exec.Command(drlbBinary, args...).CombinedOutput()
			return err
		})
		return string(out), err
	}
	out, err := drlb(l.Director, "doctor", "-c", cfg)
	if err != nil || !strings.Contains(out, "full-size frames get through") {
		t.Fatalf("doctor on the director: %v\n%s", err, out)
	}
	// A real server with a smaller MTU: small pings pass, full-size ones
	// are lost, and doctor says so.
	setMTU := func(h *testbed.Host, mtu int) {
		nh, lk := lanLink(t, h)
		if err := nh.LinkSetMTU(lk, mtu); err != nil {
			t.Fatal(err)
		}
	}
	setMTU(l.RealServers[1], 1400)
	out, err = drlb(l.Director, "doctor", "-c", cfg)
	setMTU(l.RealServers[1], l.MTU)
	if err == nil || !strings.Contains(out, "its MTU is smaller than the director's") || !strings.Contains(out, l.RealServers[1].IPv4.String()) {
		t.Fatalf("doctor missed rs2's MTU 1400: %v\n%s", err, out)
	}
	rs := l.RealServers[0]
	args := []string{"doctor", "-role", "realserver", "-iface", rs.Iface, "-vip", l.VIP.String(), "-director", l.Director.IPv4.String()}
	if out, err := drlb(rs, args...); err != nil {
		t.Fatalf("doctor on %s: %v\n%s", rs.Name, err, out)
	}
	// Break ARP suppression, as a forgotten sysctl on a new server would.
	// The kernel uses the larger of all and eth0, so both must go.
	if err := l.Do(rs, func() error {
		for _, scope := range []string{"all", rs.Iface} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+scope+"/arp_ignore", []byte("0"), 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err = drlb(rs, args...)
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "arp_ignore") {
		t.Fatalf("doctor missed arp_ignore=0: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "rs.json")
	if out, err := drlb(rs, "realserver", "up", "--vip", l.VIP.String(), "--iface", rs.Iface, "--state", state); err != nil {
		t.Fatalf("realserver up: %v\n%s", err, out)
	}
	if out, err := drlb(rs, args...); err != nil {
		t.Fatalf("doctor after realserver up: %v\n%s", err, out)
	}
}

// TestHealthChecks: keepalived-style checks mark real servers down and up.
// The checks probe a port (8080) that only some real servers listen on.
func TestHealthChecks(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	listen := func(rs *testbed.Host) net.Listener {
		ln, err := l.Listen(context.Background(), rs, "tcp", netip.AddrPortFrom(rs.IPv4, 8080).String())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	write := func(interval string) {
		t.Helper()
		var b strings.Builder
		fmt.Fprintf(&b, "interface: %s\nservices:\n  - vip: %s\n    port: 80\n    scheduler: rr\n    realservers:\n", l.Director.Iface, l.VIP)
		for _, rs := range l.RealServers {
			fmt.Fprintf(&b, "      - {address: %s, check: {type: tcp, port: 8080, interval: %s, timeout: 200ms, retries: 2}}\n", rs.IPv4, interval)
		}
		if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("100ms")
	listen(l.RealServers[0])
	p := startDirectorN(t, l, len(l.RealServers), "run", "-c", cfg)
	p.waitLog("real server down", 2, 5*time.Second) // rs2 and rs3 fail their checks
	if got := distribution(t, l, l.Client, 9); got[l.RealServers[0].Name] != 9 {
		t.Fatalf("with rs2 and rs3 down, connections went to %v; want all on rs1", got)
	}
	listen(l.RealServers[1])
	p.waitLog("real server up again", 1, 5*time.Second)
	got := distribution(t, l, l.Client, 10)
	if got[l.RealServers[0].Name] == 0 || got[l.RealServers[1].Name] == 0 || got[l.RealServers[2].Name] != 0 {
		t.Fatalf("after rs2 came back: %v; want rs1 and rs2 only", got)
	}
	// A reload that only tunes the checks (the interval) keeps their
	// verdicts, as keepalived's does: rs3, still failing, stays out. Its
	// HTTP port answers, so a reload that brought it back until its
	// check failed again (retries × interval) would send it clients.
	write("150ms")
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration applied", 1, 5*time.Second)
	got = distribution(t, l, l.Client, 10)
	if got[l.RealServers[0].Name] == 0 || got[l.RealServers[1].Name] == 0 || got[l.RealServers[2].Name] != 0 {
		t.Fatalf("after a reload that only changed the checks' interval: %v; want rs1 and rs2 only (rs3's check still fails)", got)
	}
}

// TestCtl: drlb ctl reads the running director's table over its socket,
// like ipvsadm -Ln, and /metrics serves the same counters.
func TestCtl(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 2})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", []int{2, 1})
	// Short closing timeouts, so idle expiry can be seen within the test.
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "timeouts: {tcp_fin: 1s, tcp_close: 1s}")
	f.Close()
	sock := filepath.Join(t.TempDir(), "drlb.sock")
	startDirector(t, l, "run", "-c", cfg, "-ctl", sock)
	// Two keep-alive connections stay ESTABLISHED: ActiveConn 1 on each.
	var clients []*http.Client
	for i := 0; i < 2; i++ {
		c := l.HTTPClient(l.Client)
		defer c.CloseIdleConnections()
		get(t, c, fmt.Sprintf("http://%s/", l.VIP), false)
		clients = append(clients, c)
	}
	ctl := func(args ...string) string {
		out, err := exec.Command(drlbBinary, append([]string{"ctl", "list", "-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("drlb ctl list %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	list := ctl()
	for _, want := range []string{
		"TCP  198.18.0.100:80 rr",
		fmt.Sprintf("-> %s:80", l.RealServers[0].IPv4),
		"UDP  198.18.0.100:7 rr",
		"TCP  [2001:2::100]:80 rr",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("drlb ctl list lacks %q:\n%s", want, list)
		}
	}
	if got := fieldsOf(list, fmt.Sprintf("  -> %s:80", l.RealServers[0].IPv4)); got != fmt.Sprintf("-> %s:80 Route 2 1 0", l.RealServers[0].IPv4) {
		t.Errorf("rs1 row %q, want weight 2, 1 active, 0 inactive:\n%s", got, list)
	}
	if stats := ctl("-stats"); !strings.Contains(fieldsOf(stats, "TCP  198.18.0.100:80"), "TCP 198.18.0.100:80 2 ") {
		t.Errorf("stats: want 2 connections on the service:\n%s", stats)
	}
	var snap struct {
		Services []struct {
			RealServers []struct {
				State string `json:"state"`
				MAC   string `json:"mac"`
			} `json:"realservers"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(ctl("-o", "json")), &snap); err != nil || len(snap.Services) != 3 {
		t.Fatalf("json: %v %+v", err, snap)
	}
	if rs := snap.Services[0].RealServers[0]; rs.State != "up" || rs.MAC != l.RealServers[0].MAC.String() {
		t.Errorf("json real server %+v, want up with MAC %s", rs, l.RealServers[0].MAC)
	}
	resp, err := control.Client(sock).Get("http://drlb/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drlb_service_connections_total{port="80",protocol="tcp",vip="198.18.0.100"} 2`,
		`drlb_link_dropped_frames_total{kind="rx"} 0`,
		`drlb_link_dropped_frames_total{kind="rx_syn"} 0`,
		`drlb_link_dropped_frames_total{kind="tx_failed"} 0`,
		`drlb_neighbor_events_total{event="accepted"}`,
		`drlb_arp_events_total{event="replies"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
	// ipvsadm -Lnc: both connections, ESTABLISHED, each to its server.
	conns := ctl("-conns")
	if strings.Count(conns, "ESTABLISHED") != 2 || !strings.Contains(conns, l.Client.IPv4.String()) {
		t.Errorf("drlb ctl list -conns:\n%s", conns)
	}
	// The same through ipvsadm's own command line: -Ln, -Lnc, and -Sn,
	// which drlb run -c reads back.
	ipvsadm := func(args ...string) string {
		out, err := exec.Command(drlbBinary, append([]string{"ctl", "-s", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("drlb ctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ln := ipvsadm("-Ln")
	if !strings.HasPrefix(ln, "IP Virtual Server version 1.2.1 (size=") ||
		fieldsOf(ln, fmt.Sprintf("  -> %s:80", l.RealServers[0].IPv4)) != fmt.Sprintf("-> %s:80 Route 2 1 0", l.RealServers[0].IPv4) {
		t.Errorf("drlb ctl -Ln:\n%s", ln)
	}
	if lnc := ipvsadm("-Lnc"); strings.Count(lnc, "ESTABLISHED") != 2 {
		t.Errorf("drlb ctl -Lnc:\n%s", lnc)
	}
	saved := ipvsadm("-Sn")
	if back, err := config.Parse("saved", []byte(saved)); err != nil || len(back.Services) != 3 ||
		back.Services[0].RealServers[0].Weight != 2 || back.Services[0].RealServers[1].Weight != 1 {
		t.Errorf("drlb ctl -Sn does not read back: %v\n%s", err, saved)
	}
	// The clients close; with no more traffic, the idle sweeper expires the
	// entries (FIN_WAIT, 1 s here) and the table empties.
	for _, c := range clients {
		c.CloseIdleConnections()
	}
	deadline := time.Now().Add(10 * time.Second) // 1 s FIN_WAIT + one sweep pass (4 s) + slack
	for {
		row := fieldsOf(ctl(), fmt.Sprintf("  -> %s:80", l.RealServers[0].IPv4))
		if row == fmt.Sprintf("-> %s:80 Route 2 0 0", l.RealServers[0].IPv4) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle entries never expired: rs1 row %q\n%s", row, ctl("-conns"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// fieldsOf returns the first line starting with prefix, spaces folded.
func fieldsOf(text, prefix string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

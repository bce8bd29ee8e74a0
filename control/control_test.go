package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
)

var (
	dirMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	vip    = netip.MustParseAddr("198.18.0.100")
)

// busyForwarder is a forwarder that has seen a few connections.
func busyForwarder(t *testing.T) *forwarder.Forwarder {
	t.Helper()
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 4096, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr", Persistence: 300 * time.Second, PersistenceBits: 32,
		RealServers: []config.RealServer{
			{Address: netip.MustParseAddr("198.18.0.11"), Weight: 3, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x11}},
			{Address: netip.MustParseAddr("198.18.0.12"), Weight: 1},
		},
	}}}
	f, err := forwarder.New(cfg, forwarder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: dirMAC}
	now := time.Now().UnixNano()
	for i := 0; i < 3; i++ {
		c := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), uint16(40000+i))
		f.Process(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil), &forwarder.Meta{Time: now})
		f.Process(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 1, nil), &forwarder.Meta{Time: now})
	}
	f.Process(framegen.ARPRequest(l2, netip.MustParseAddr("198.18.1.1"), vip), &forwarder.Meta{Time: now})
	return f
}

func snapshot(t *testing.T) Snapshot {
	return Take(busyForwarder(t), 4096, map[int]time.Duration{0: 300 * time.Second})
}

func TestWriteList(t *testing.T) {
	var b bytes.Buffer
	WriteList(&b, snapshot(t))
	want := `IP Virtual Server version drlb (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 rr persistent 300
  -> 198.18.0.11:80               Route   3      3          0
  -> 198.18.0.12:80               Route   1      0          0          (unresolved)
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	// After a SYN flood the listing ends with what the table's defence did.
	s := snapshot(t)
	s.Overload = &Overload{Pressure: true, PressureEpisodes: 2, SynEvicted: 1234, SynStateless: 56789, TrustedClients: 7}
	b.Reset()
	WriteList(&b, s)
	tail := "\nConnection table pressure ON (SYNs go through without entry, new SYN_RECV entries get a short timeout); 2 episodes, 56789 SYNs forwarded without entry, 1234 SYN_RECV entries evicted; 7 clients trusted after a handshake\n"
	if b.String() != want+tail {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want+tail)
	}
	// The bare SYNs the kernel forwarded itself (-kernel-syns) below that,
	// once there are any.
	s.KernelSYNs = 5000
	b.Reset()
	WriteList(&b, s)
	if ktail := tail + "Kernel SYNs: 5000 bare SYNs forwarded by the kernel itself under table pressure (also among the SYNs forwarded without entry)\n"; b.String() != want+ktail {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want+ktail)
	}
	s.KernelSYNs = 0
	b.Reset()
	WriteList(&b, s)
	if b.String() != want+tail {
		t.Fatalf("no kernel SYNs, got:\n%s\nwant:\n%s", b.String(), want+tail)
	}
	s.Overload = &Overload{} // never under pressure: ipvsadm's listing, nothing more
	b.Reset()
	WriteList(&b, s)
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	// Kernel SYNs without a pressure line (none read): a section of their own.
	s.Overload, s.KernelSYNs = nil, 5000
	b.Reset()
	WriteList(&b, s)
	if ktail := "\nKernel SYNs: 5000 bare SYNs forwarded by the kernel itself under table pressure (also among the SYNs forwarded without entry)\n"; b.String() != want+ktail {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want+ktail)
	}
	// The kernel's SYN forwarding held (-kernel-syns alone): said below
	// the count, or alone in a section of its own before any SYN; on,
	// nothing more.
	held := "Kernel SYNs held: another tc program runs before drlb's at tc ingress (or drlb's was detached); drlb takes every SYN itself\n"
	s.KernelSYNsState = KernelSYNsHeld
	b.Reset()
	WriteList(&b, s)
	if ktail := "\nKernel SYNs: 5000 bare SYNs forwarded by the kernel itself under table pressure (also among the SYNs forwarded without entry)\n" + held; b.String() != want+ktail {
		t.Fatalf("kernel SYNs held, got:\n%s\nwant:\n%s", b.String(), want+ktail)
	}
	s.KernelSYNs = 0
	b.Reset()
	WriteList(&b, s)
	if b.String() != want+"\n"+held {
		t.Fatalf("kernel SYNs held, none forwarded, got:\n%s\nwant:\n%s", b.String(), want+"\n"+held)
	}
	// Failed (a write to the kernel failed): said, whatever else holds.
	s.KernelSYNsState = KernelSYNsFailed
	b.Reset()
	WriteList(&b, s)
	if failed := "\nKernel SYNs failed: a write to the kernel failed (see the log); drlb takes every SYN itself until it restarts\n"; b.String() != want+failed {
		t.Fatalf("kernel SYNs failed, got:\n%s\nwant:\n%s", b.String(), want+failed)
	}
	s.KernelSYNsState = KernelSYNsOn
	b.Reset()
	WriteList(&b, s)
	if b.String() != want {
		t.Fatalf("kernel SYNs on, none forwarded, got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteStatsAndRate(t *testing.T) {
	s := snapshot(t)
	var b bytes.Buffer
	WriteStats(&b, s)
	if got := fieldsOf(b.String(), "TCP"); got != "TCP 198.18.0.100:80 3 6 0 240 0" {
		t.Fatalf("stats line %q:\n%s", got, b.String())
	}
	later := s
	later.Time = s.Time.Add(2 * time.Second)
	later.Services = append([]Service(nil), s.Services...)
	later.Services[0].Connections += 10
	b.Reset()
	WriteRate(&b, s, later)
	if got := fieldsOf(b.String(), "TCP"); got != "TCP 198.18.0.100:80 5 0 0 0 0" {
		t.Fatalf("rate line %q (10 connections in 2 s = 5 CPS):\n%s", got, b.String())
	}
	// A service deleted between the samples: the rest are matched by
	// service, not by position.
	a := netip.MustParseAddr
	before := Snapshot{Time: s.Time, Services: []Service{
		{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 80, Connections: 1e6},
		{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 443, Connections: 10}}}
	after := Snapshot{Time: s.Time.Add(time.Second), Services: []Service{
		{Protocol: "tcp", VIP: a("198.18.0.100"), Port: 443, Connections: 15}}}
	b.Reset()
	WriteRate(&b, before, after)
	if got := fieldsOf(b.String(), "TCP"); got != "TCP 198.18.0.100:443 5 0 0 0 0" {
		t.Fatalf("rate line %q after a deletion, want 5 CPS:\n%s", got, b.String())
	}
	if human(123456) != "123K" || human(99) != "99" {
		t.Fatal("human")
	}
}

func TestSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "drlb.sock")
	f := busyForwarder(t)
	take := func(conns bool) Snapshot {
		s := Take(f, 4096, nil)
		s.Link = map[string]uint64{"rx": 7}
		s.ARP = map[string]uint64{"replies": 2}
		s.Neighbors = map[string]uint64{"accepted": 1}
		if conns {
			f.RangeConnEntries(time.Now().UnixNano(), func(c forwarder.ConnEntry) bool { s.ConnEntries = append(s.ConnEntries, ConnEntryOf(c)); return true })
		}
		return s
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(take, nil, nil)) }()

	s, err := Get(context.Background(), path, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 1 || s.Services[0].RealServers[0].Active != 3 || s.Frames["new"] != 1 || s.Frames["persistent"] != 2 || s.Frames["not-ip"] != 1 {
		t.Fatalf("snapshot over the socket: %+v", s)
	}
	withConns, err := Get(context.Background(), path, true)
	if err != nil || len(withConns.ConnEntries) != 4 { // 3 connections and the persistence template
		t.Fatalf("conns: %v %+v", err, withConns.ConnEntries)
	}
	var b bytes.Buffer
	WriteConnEntries(&b, withConns)
	if !strings.Contains(b.String(), "ESTABLISHED 198.18.1.10:40000") || !strings.Contains(b.String(), "198.18.0.11:80") {
		t.Errorf("WriteConnEntries:\n%s", b.String())
	}
	// A second director on the same socket is refused, not hijacked.
	if _, err := Listen(path); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Listen: %v, want ErrInUse", err)
	}
	resp, err := Client(path).Get("http://drlb/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`drlb_realserver_active_connections{port="80",protocol="tcp",realserver="198.18.0.11",vip="198.18.0.100"} 3`,
		`drlb_realserver_up{port="80",protocol="tcp",realserver="198.18.0.12",vip="198.18.0.100"} 0`,
		`drlb_frames_total{reason="persistent"} 2`,
		`drlb_frames_total{reason="table-full"} 0`, // every reason, from the start
		`drlb_link_dropped_frames_total{kind="rx"} 7`,
		`drlb_arp_events_total{event="replies"} 2`,
		`drlb_neighbor_events_total{event="accepted"} 1`,
		`drlb_service_connections_total{port="80",protocol="tcp",vip="198.18.0.100"} 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A stale socket (its director gone) is replaced.
	ln2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	if _, err := Get(context.Background(), filepath.Join(t.TempDir(), "none.sock"), false); err == nil || !strings.Contains(err.Error(), "is drlb run running") {
		t.Fatalf("Get without a director: %v", err)
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

// TestServeWaitsForRequestsInFlight: once its context ends, Serve returns
// only after the requests in flight have ended, so that what its caller
// tears down next (blackhole routes, the tc drop) is not changed under it
// by a ctl change still being applied.
func TestServeWaitsForRequestsInFlight(t *testing.T) {
	path := filepath.Join(t.TempDir(), "drlb.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	inHandler, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inHandler)
		<-release
		io.WriteString(w, "applied")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h) }()
	got := make(chan string, 1)
	go func() {
		resp, err := Client(path).Get("http://drlb/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-inHandler
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if s := <-got; s != "applied" {
		t.Errorf("the request in flight got %q, want its answer", s)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestListenKeepsFiles: -ctl naming a file that is not a socket (the
// config, by mistake) is refused and the file left alone; a stale socket
// is replaced.
func TestListenKeepsFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "drlb.yaml")
	if err := os.WriteFile(file, []byte("interface: eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(file); err == nil {
		ln.Close()
		t.Fatal("Listen on a regular file succeeded")
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "interface: eth0\n" {
		t.Fatalf("the file was changed: %q, %v", data, err)
	}
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody answers: a killed drlb's
	ln, err = Listen(stale)
	if err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	ln.Close()
}

// TestSorryServerShown: the sorry server shows in drlb ctl list always,
// with its role, and in the ipvsadm listing while it stands in, as
// keepalived's sorry server does in ipvsadm's (a real server then).
func TestSorryServerShown(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 4096, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr", PersistenceBits: 32,
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1}}, // unresolved: not live
		SorryServer: &config.SorryServer{Address: netip.MustParseAddr("198.18.0.99")}}}}
	f, err := forwarder.New(cfg, forwarder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := Take(f, 4096, nil)
	var b bytes.Buffer
	WriteList(&b, s)
	if !strings.Contains(b.String(), "198.18.0.99:80") || !strings.Contains(b.String(), "(sorry server, standing in)") {
		t.Errorf("drlb ctl list:\n%s", b.String())
	}
	b.Reset()
	c, err := parseCommand([]string{"-Ln"})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeIpvsadmList(&b, s, nil, cfg, c.list); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "  -> 198.18.0.99:80               Route   1") {
		t.Errorf("ipvsadm -Ln while the sorry server stands in:\n%s", b.String())
	}
	s.Services[0].Sorry.State = SorryStandby
	b.Reset()
	if err := writeIpvsadmList(&b, s, nil, cfg, c.list); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "198.18.0.99") {
		t.Errorf("ipvsadm -Ln lists the sorry server on standby:\n%s", b.String())
	}
}

// TestClientErrors: no socket is "no director answers"; a director that
// takes the connection and then does not answer is said so, with the
// warning that a change may have been applied.
func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Get(context.Background(), filepath.Join(dir, "none.sock"), false); err == nil || !strings.Contains(err.Error(), "no director answers") {
		t.Errorf("no socket: %v", err)
	}
	path := filepath.Join(dir, "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Get(ctx, path, false); err == nil || !strings.Contains(err.Error(), "did not answer") || strings.Contains(err.Error(), "change") {
		t.Errorf("a mute director, asked for its table: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := Reload(ctx2, path); err == nil || !strings.Contains(err.Error(), "a change may have been applied") {
		t.Errorf("a mute director, sent a change: %v", err)
	}
}

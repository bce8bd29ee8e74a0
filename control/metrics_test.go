package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
)

// scrapeMetrics is what /metrics serves for s (the handler called
// directly: no socket, no traffic).
func scrapeMetrics(t *testing.T, s Snapshot) string {
	t.Helper()
	rec := httptest.NewRecorder()
	MetricsHandler(func(bool) Snapshot { return s }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// TestKernelFlowsMetrics: drlb_kernel_flows_held is 1 while kernel flows
// are held, 0 while they run, and absent without them; drlb_kernel_flows
// is the flows handed out.
func TestKernelFlowsMetrics(t *testing.T) {
	for _, tc := range []struct {
		state string
		want  []string
	}{
		{"", nil},
		{KernelFlowsOn, []string{"drlb_kernel_flows_held 0", "drlb_kernel_flows 7"}},
		{KernelFlowsHeld, []string{"drlb_kernel_flows_held 1", "drlb_kernel_flows 7"}},
	} {
		s := fixtureSnapshot()
		s.KernelFlows, s.KernelFlowsOut = tc.state, 7
		body := scrapeMetrics(t, s)
		if tc.want == nil && strings.Contains(body, "drlb_kernel_flows") {
			t.Errorf("kernel flows off: the metrics have drlb_kernel_flows*")
		}
		for _, want := range tc.want {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("kernel flows %q: the metrics lack %s", tc.state, want)
			}
		}
	}
}

// TestXDPMetrics: drlb_xdp_attached is 1 while the XDP program is attached
// (in either mode), 0 once detached, and absent with AF_PACKET.
func TestXDPMetrics(t *testing.T) {
	for _, tc := range []struct{ xdp, want string }{
		{"", ""},
		{"driver", "drlb_xdp_attached 1"},
		{"generic", "drlb_xdp_attached 1"},
		{XDPDetached, "drlb_xdp_attached 0"},
	} {
		s := fixtureSnapshot()
		s.XDP = tc.xdp
		body := scrapeMetrics(t, s)
		if tc.want == "" {
			if strings.Contains(body, "drlb_xdp_attached") {
				t.Errorf("AF_PACKET: the metrics have drlb_xdp_attached")
			}
			continue
		}
		if !strings.Contains(body, tc.want+"\n") {
			t.Errorf("xdp %q: the metrics lack %s", tc.xdp, tc.want)
		}
	}
}

// TestWorkerXDPMetrics: with AF_XDP sockets each worker's frames through
// AF_XDP are a counter beside its frames; with AF_PACKET there is none.
func TestWorkerXDPMetrics(t *testing.T) {
	for _, afxdp := range []string{"", "copy"} {
		s := fixtureSnapshot()
		s.AFXDP = afxdp
		s.Workers = []Worker{{Frames: 10, Entries: 2, XDPFrames: 4}, {Frames: 20, Entries: 3, XDPFrames: 0}}
		body := scrapeMetrics(t, s)
		for _, want := range []string{`drlb_worker_frames_total{worker="0"} 10`, `drlb_worker_frames_total{worker="1"} 20`} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("af_xdp %q: the metrics lack %s", afxdp, want)
			}
		}
		has := strings.Contains(body, `drlb_worker_xdp_frames_total{worker="0"} 4`+"\n") && strings.Contains(body, `drlb_worker_xdp_frames_total{worker="1"} 0`+"\n")
		if afxdp == "" && strings.Contains(body, "drlb_worker_xdp_frames_total") || afxdp != "" && !has {
			t.Errorf("af_xdp %q: drlb_worker_xdp_frames_total wrong:\n%s", afxdp, body)
		}
	}
}

// TestMetricsFromTheStart: series that depend on a mode appear with it,
// at 0, not at their first increase (which rate() and increase() would
// lose): the kernel's forwarded frames and full-map flows with kernel
// flows, rx_xdp drops with AF_XDP. Full-map flows are flows, not frames:
// a counter of their own, not a kind of drlb_link_dropped_frames_total.
func TestMetricsFromTheStart(t *testing.T) {
	s := fixtureSnapshot()
	s.KernelFlows, s.AFXDP = KernelFlowsOn, "copy"
	s.Link = map[string]uint64{"rx": 1}
	body := scrapeMetrics(t, s)
	for _, want := range []string{"drlb_kernel_forwarded_frames_total 0", "drlb_kernel_flows_full_total 0", `drlb_link_dropped_frames_total{kind="rx_xdp"} 0`} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("the metrics lack %s", want)
		}
	}
	s.Link["kernel_flows_full"] = 5
	body = scrapeMetrics(t, s)
	if !strings.Contains(body, "drlb_kernel_flows_full_total 5\n") || strings.Contains(body, `kind="kernel_flows_full"`) {
		t.Errorf("full-map flows not in a counter of their own:\n%s", body)
	}
}

// TestKernelSYNsHeldMetric: drlb_kernel_syns_held is 1 while the kernel's
// SYN forwarding is held, 0 while it may run, and absent without
// -kernel-syns.
func TestKernelSYNsHeldMetric(t *testing.T) {
	for _, tc := range []struct{ state, want string }{
		{"", ""},
		{KernelSYNsOn, "drlb_kernel_syns_held 0"},
		{KernelSYNsHeld, "drlb_kernel_syns_held 1"},
		{KernelSYNsFailed, "drlb_kernel_syns_held 1"},
	} {
		s := fixtureSnapshot()
		s.KernelSYNsState = tc.state
		body := scrapeMetrics(t, s)
		if tc.want == "" {
			if strings.Contains(body, "drlb_kernel_syns_held") {
				t.Errorf("kernel SYNs off: the metrics have drlb_kernel_syns_held")
			}
			continue
		}
		if !strings.Contains(body, tc.want+"\n") || !strings.Contains(body, "# TYPE drlb_kernel_syns_held gauge\n") {
			t.Errorf("kernel SYNs %q: the metrics lack the gauge %s", tc.state, tc.want)
		}
	}
}

// TestKernelSYNsMetric: drlb_kernel_syns_total is the bare SYNs the
// kernel forwarded itself under pressure, there from the start at 0.
func TestKernelSYNsMetric(t *testing.T) {
	for _, n := range []uint64{0, 1234} {
		s := fixtureSnapshot()
		s.KernelSYNs = n
		body := scrapeMetrics(t, s)
		if want := fmt.Sprintf("drlb_kernel_syns_total %d\n", n); !strings.Contains(body, want) {
			t.Errorf("kernel SYNs %d: the metrics lack %s", n, strings.TrimSpace(want))
		}
		if !strings.Contains(body, "# TYPE drlb_kernel_syns_total counter\n") {
			t.Errorf("kernel SYNs %d: drlb_kernel_syns_total is not a counter", n)
		}
	}
}

// TestMetricsOneSnapshot: a scrape takes one snapshot, BGP's metrics
// included: every series of a scrape is of one moment, and the workers'
// locks and the sockets' statistics are taken once.
func TestMetricsOneSnapshot(t *testing.T) {
	var takes atomic.Int32
	h := MetricsHandler(func(bool) Snapshot {
		takes.Add(1)
		s := fixtureSnapshot()
		s.BGP = &BGPStatus{Drained: true}
		return s
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if n := takes.Load(); n != 1 || !strings.Contains(rec.Body.String(), "drlb_bgp_drained 1\n") {
		t.Errorf("a scrape took %d snapshots (want 1), BGP drained in it: %v", n, strings.Contains(rec.Body.String(), "drlb_bgp_drained 1"))
	}
}

// TestSorryServerCounted: what a sorry server carries is in the service's
// counters, so it is in the metrics and in drlb ctl list -stats too, or the
// service's totals exceed the sum of its rows with nothing to say where
// the rest went (keepalived's sorry server is a real server of IPVS, in
// ipvsadm --stats and in any IPVS exporter).
func TestSorryServerCounted(t *testing.T) {
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 4096, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1}}, // unresolved: not live
		SorryServer: &config.SorryServer{Address: netip.MustParseAddr("198.18.0.99"), MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x99}}}}}
	f, err := forwarder.New(cfg, forwarder.Options{MAC: dirMAC})
	if err != nil {
		t.Fatal(err)
	}
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: dirMAC}
	c := netip.MustParseAddrPort("198.18.1.10:40000")
	now := time.Now().UnixNano()
	for _, flags := range []string{"S", "A"} {
		if res := f.Process(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), flags, 1, 1, nil), &forwarder.Meta{Time: now}); res.Verdict != forwarder.Forward {
			t.Fatalf("%s to the sorry server: %v", flags, res)
		}
	}
	s := Take(f, 4096, nil)
	svc := s.Services[0]
	if svc.InPackets != 2 || svc.Connections != 1 {
		t.Fatalf("service counters %+v: want 2 packets, 1 connection", svc)
	}
	body := scrapeMetrics(t, s)
	labels := `{port="80",protocol="tcp",sorryserver="198.18.0.99",vip="198.18.0.100"}`
	for _, want := range []string{
		"drlb_sorryserver_connections_total" + labels + " 1",
		"drlb_sorryserver_packets_total" + labels + " 2",
		"drlb_sorryserver_active_connections" + labels + " 1",
		"drlb_sorryserver_standing_in" + labels + " 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("the metrics lack %s", want)
		}
	}
	var b bytes.Buffer
	WriteStats(&b, s)
	if !strings.Contains(b.String(), "  -> 198.18.0.99:80") {
		t.Errorf("drlb ctl list -stats has no row for the sorry server that carried the service's packets:\n%s", b.String())
	}
	b.Reset()
	WriteRate(&b, s, s)
	if !strings.Contains(b.String(), "  -> 198.18.0.99:80") {
		t.Errorf("drlb ctl list -rate has no row for the sorry server:\n%s", b.String())
	}
}

// TestZeroKeepsMetricsMonotonic: ipvsadm -Z zeroes the counters the
// listings show (drlb ctl list --stats, -Ln --stats, the JSON), while
// /metrics keeps the totals, counters that must never go back (rate() and
// increase() would read a reset); traffic after the zero adds to both.
func TestZeroKeepsMetricsMonotonic(t *testing.T) {
	f := busyForwarder(t) // 3 connections to 198.18.0.11: 6 packets, 240 bytes
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: dirMAC}
	connect := func(port uint16) {
		c := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.20"), port)
		now := time.Now().UnixNano()
		f.Process(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil), &forwarder.Meta{Time: now})
		f.Process(framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 2, 1, nil), &forwarder.Meta{Time: now})
	}
	const (
		svc  = `{port="80",protocol="tcp",vip="198.18.0.100"}`
		real = `{port="80",protocol="tcp",realserver="198.18.0.11",vip="198.18.0.100"}`
	)
	check := func(when string, listed, total [3]uint64) {
		t.Helper()
		s := Take(f, 4096, nil)
		// What drlb ctl list reads: the JSON, through the socket.
		js, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var got Snapshot
		if err := json.Unmarshal(js, &got); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		WriteStats(&b, got)
		want := fmt.Sprintf("%d %d 0 %d 0", listed[0], listed[1], listed[2])
		if line := fieldsOf(b.String(), "TCP"); line != "TCP 198.18.0.100:80 "+want {
			t.Errorf("%s: drlb ctl list --stats service line %q, want counters %s", when, line, want)
		}
		if line := fieldsOf(b.String(), "  -> 198.18.0.11:80"); line != "-> 198.18.0.11:80 "+want {
			t.Errorf("%s: drlb ctl list --stats real server line %q, want counters %s", when, line, want)
		}
		c, err := parseCommand([]string{"-Ln", "--stats"})
		if err != nil {
			t.Fatal(err)
		}
		b.Reset()
		if err := writeIpvsadmList(&b, s, nil, nil, c.list); err != nil {
			t.Fatal(err)
		}
		if line := fieldsOf(b.String(), "TCP"); line != "TCP 198.18.0.100:80 "+want {
			t.Errorf("%s: -Ln --stats service line %q, want counters %s", when, line, want)
		}
		body := scrapeMetrics(t, s)
		for _, m := range []string{
			fmt.Sprintf("drlb_service_connections_total%s %d", svc, total[0]),
			fmt.Sprintf("drlb_service_packets_total%s %d", svc, total[1]),
			fmt.Sprintf("drlb_service_bytes_total%s %d", svc, total[2]),
			fmt.Sprintf("drlb_realserver_connections_total%s %d", real, total[0]),
			fmt.Sprintf("drlb_realserver_packets_total%s %d", real, total[1]),
			fmt.Sprintf("drlb_realserver_bytes_total%s %d", real, total[2]),
		} {
			if !strings.Contains(body, m+"\n") {
				t.Errorf("%s: /metrics lacks %s", when, m)
			}
		}
	}
	check("before -Z", [3]uint64{3, 6, 240}, [3]uint64{3, 6, 240})
	f.ZeroCounters()
	check("after -Z", [3]uint64{}, [3]uint64{3, 6, 240})
	connect(41000)
	check("traffic after -Z", [3]uint64{1, 2, 80}, [3]uint64{4, 8, 320})
	if !f.ZeroService(config.TCP, netip.AddrPortFrom(vip, 80)) {
		t.Fatal("ZeroService did not find the service")
	}
	check("after -Z -t", [3]uint64{}, [3]uint64{4, 8, 320})
	connect(41001)
	connect(41002)
	check("traffic after -Z -t", [3]uint64{2, 4, 160}, [3]uint64{6, 12, 480})
}

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// Upload throughput (bulk TCP from the client to a real server, 64 MB per
// measurement): through the VIP with drlb forwarding under several offload
// settings (see offloadCase), and for each the same upload straight to rs1's
// own address over equivalent links, which never touches the director. One
// run measures all of them on the same lab, so the ratios
// through-director/direct are what to compare across machines. Every upload
// is also checked by digest. Run with -benchtime 1x.

// throughputBytes bounds each measurement.
const throughputBytes = 64 << 20

func BenchmarkUploadThroughput(b *testing.B) {
	testutil.NeedRoot(b)
	l, err := testbed.New(context.Background(), testbed.Options{RealServers: 3})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := l.StartServices(ctx); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(b.TempDir(), "drlb.yaml")
	writeBenchConfig(b, l, cfg)
	body := make([]byte, throughputBytes)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])

	rs1 := "http://" + netip.AddrPortFrom(l.RealServers[0].IPv4, testbed.HTTPPort).String() + "/upload"
	vip := "http://" + netip.AddrPortFrom(l.VIP, testbed.HTTPPort).String() + "/upload"
	// Each mode through the director has a direct twin with the same
	// links: "wire" modes segment the client's frames at a switch port in
	// both (the director's port, or rs1's), so the ratio isolates drlb.
	rs := l.RealServers[0]
	modes := []struct {
		metric string
		url    string
		oc     offloadCase
		direct bool // straight to rs1, oc applied to rs1's port and GRO
	}{
		{"direct", rs1, offloadCases[0], true},
		{"veth", vip, offloadCases[0], false},
		{"direct-gro-off", rs1, offloadCases[4], true},
		{"gro-off", vip, offloadCases[4], false},
		{"direct-gro-on", rs1, offloadCases[5], true},
		{"gro-on", vip, offloadCases[5], false},
	}
	rates := map[string]float64{}
	for _, m := range modes {
		var rate float64
		if m.direct {
			setOffload(b, l, rs, rs.Iface, ethtool.GRO, m.oc.directorGRO)
			setWire(b, l, rs, m.oc.wire, m.oc.fullCsum)
			rate = timedUpload(b, l, m.url, body, digest)
			setOffload(b, l, rs, rs.Iface, ethtool.GRO, false)
			setWire(b, l, rs, false, false)
		} else {
			setOffload(b, l, l.Director, l.Director.Iface, ethtool.GRO, m.oc.directorGRO)
			setWire(b, l, l.Director, m.oc.wire, m.oc.fullCsum)
			stop := runDirector(b, l, cfg)
			rate = timedUpload(b, l, m.url, body, digest)
			stop()
		}
		rates[m.metric] = rate
		where := "through the VIP"
		if m.direct {
			where = "straight to rs1"
		}
		b.Logf("%-14s %7.1f MB/s  %s: %s", m.metric, rate, where, m.oc.name)
	}
	for _, m := range modes {
		b.ReportMetric(rates[m.metric], m.metric+"-MB/s")
	}
	for _, r := range [][2]string{{"veth", "direct"}, {"gro-off", "direct-gro-off"}, {"gro-on", "direct-gro-on"}} {
		if rates[r[1]] > 0 {
			b.ReportMetric(rates[r[0]]/rates[r[1]], r[0]+"/direct")
		}
	}
}

// writeBenchConfig is writeConfig for a *testing.B: TCP VIP:80, rr.
func writeBenchConfig(b *testing.B, l *testbed.Lab, path string) {
	if err := os.WriteFile(path, []byte(benchService(l, "tcp", testbed.HTTPPort, "rr")), 0o644); err != nil {
		b.Fatal(err)
	}
}

// runDirector starts drlb in the director's namespace (no control
// socket), waits (bounded) until it has resolved every real server, and
// returns a stop function, which b's cleanup also calls: a failed upload
// must not leave drlb running.
func runDirector(b *testing.B, l *testbed.Lab, cfg string) (stop func()) {
	return startDrlbOn(b, l, l.Director, len(l.RealServers), nil, "run", "-c", cfg, "-ctl", "").stop
}

// timedUpload POSTs body from the client to url on a new connection and
// returns MB/s (10^6 bytes) from the first byte sent to the digest received.
func timedUpload(b *testing.B, l *testbed.Lab, url string, body []byte, digest string) float64 {
	c := l.HTTPClient(l.Client)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Close = true
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		b.Fatalf("upload to %s: %v", url, err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	elapsed := time.Since(start)
	if err != nil || strings.TrimSpace(string(got)) != digest {
		b.Fatalf("upload to %s (%s) arrived damaged: digest %q, %v", url, resp.Header.Get(testbed.ServerHeader), got, err)
	}
	return float64(len(body)) / 1e6 / elapsed.Seconds()
}

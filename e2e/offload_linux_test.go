package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// Offloads (ARCHITECTURE.md#kernel-pitfalls): what the director's raw socket reads
// depends on the offload switches, and a director that works with one
// combination can stall bulk uploads with another. Each case below sets the
// switches first and starts drlb afterwards, then moves 1 MB and 10 MB up
// and down through the VIP, over IPv4 and IPv6, checking every upload by
// digest and every download by length. Uploads are what crosses the
// director in bulk (DR: downloads leave the real server straight to the
// client, only their ACKs cross the director).

// offloadCase is one combination of offload switches.
type offloadCase struct {
	name string
	// directorGRO: generic-receive-offload on the director's eth0. On, the
	// director's kernel merges a flow's segments into super-frames before
	// drlb reads them, as a physical NIC does by default.
	directorGRO bool
	// wire makes the switch's port towards the director behave like a
	// wire: TSO off there, so the bridge segments the client's TSO
	// super-frames into MTU-sized frames. Without it, veth carries the
	// client's super-frames end to end (through the router and the
	// bridge) and the director's GRO never runs: veth hands a frame to
	// GRO only when the sending peer does not do TSO.
	wire bool
	// fullCsum also turns tx-checksumming off on that port (the kernel
	// turns TSO off with it), so the frames carry full checksums as on a
	// real wire rather than the client's partial ones.
	fullCsum bool
}

var offloadCases = []offloadCase{
	{name: "veth super-frames, GRO off"},
	{name: "veth super-frames, GRO on", directorGRO: true},
	{name: "wire, partial checksums, GRO off", wire: true},
	{name: "wire, partial checksums, GRO on", directorGRO: true, wire: true},
	{name: "wire, full checksums, GRO off", wire: true, fullCsum: true},
	{name: "wire, full checksums, GRO on (a physical NIC)", directorGRO: true, wire: true, fullCsum: true},
}

// offloadSizes are the transfer sizes, each made three times in a row so
// that rr takes each to rs1, rs2 and rs3.
var offloadSizes = []int{1 << 20, 10 << 20}

// setOffload switches feature f of iface inside h's namespace.
func setOffload(t testing.TB, l *testbed.Lab, h *testbed.Host, iface string, f ethtool.Feature, on bool) {
	t.Helper()
	if err := l.Do(h, func() error { return ethtool.Set(iface, f, on) }); err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
}

// setWire makes the switch's port towards h a wire (see offloadCase) or
// restores veth's defaults. Order matters: TSO depends on tx-checksumming.
func setWire(t testing.TB, l *testbed.Lab, h *testbed.Host, wire, fullCsum bool) {
	t.Helper()
	port := h.BridgePort
	setOffload(t, l, l.Switch, port, ethtool.TxChecksum, !fullCsum)
	setOffload(t, l, l.Switch, port, ethtool.TSO, !wire)
}

func TestOffloads(t *testing.T) {
	testutil.NeedRoot(t)
	l := newLab(t, testbed.Options{RealServers: 3})
	cfg := filepath.Join(t.TempDir(), "drlb.yaml")
	writeConfig(t, l, cfg, "rr", nil)
	bodies := map[int][]byte{}
	for _, n := range offloadSizes {
		bodies[n] = make([]byte, n)
		_, _ = rand.Read(bodies[n])
	}

	for _, oc := range offloadCases {
		t.Run(oc.name, func(t *testing.T) {
			setOffload(t, l, l.Director, l.Director.Iface, ethtool.GRO, oc.directorGRO)
			setWire(t, l, l.Director, oc.wire, oc.fullCsum)
			var frames frameStats
			dcap := startCapture(t, l, l.Director, l.Director.Iface, func(f []byte) {
				frames.add(l, f)
			})
			startDirector(t, l, "run", "-c", cfg)

			c := l.HTTPClient(l.Client)
			defer c.CloseIdleConnections()
			for _, vip := range []netip.Addr{l.VIP, l.VIP6} {
				base := "http://" + netip.AddrPortFrom(vip, testbed.HTTPPort).String()
				for _, n := range offloadSizes {
					up, down := map[string]int{}, map[string]int{}
					for range len(l.RealServers) {
						up[uploadDigest(t, c, base+"/upload", bodies[n])]++
					}
					for range len(l.RealServers) {
						down[downloadAll(t, c, fmt.Sprintf("%s/bytes?n=%d", base, n), n)]++
					}
					for _, rs := range l.RealServers {
						if up[rs.Name] != 1 || down[rs.Name] != 1 {
							t.Errorf("%v, %d bytes: uploads reached %v, downloads %v; want each real server once (rr)", vip, n, up, down)
							break
						}
					}
				}
			}

			unlock := dcap.settle()
			s := frames
			unlock()
			t.Logf("director GRO %v, wire %v, full checksums %v: %s", oc.directorGRO, oc.wire, oc.fullCsum, s)
			if s.in[0].frames == 0 || s.in[1].frames == 0 {
				t.Errorf("the capture on the director saw no VIP frames (%s): the test proved nothing", s)
			}
			// Super-frames are what the case is about where veth passes the
			// client's TSO frames through or the director's GRO builds them.
			// Log only: how many GRO merges depends on timing.
			if want := !oc.wire || oc.directorGRO; want && s.in[0].super+s.in[1].super == 0 {
				t.Logf("note: no frame over %d bytes reached the director in this case", wireFrame)
			}
		})
	}
}

// offloadTimeout bounds one transfer: a director that mishandles
// super-frames stalls uploads rather than failing them.
const offloadTimeout = 30 * time.Second

// uploadDigest POSTs body on a new connection, checks the digest the real
// server returns and names that server.
func uploadDigest(t *testing.T, c *http.Client, url string, body []byte) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), offloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // a new connection each time, so rr moves on
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("upload of %d bytes to %s: %v", len(body), url, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	sum := sha256.Sum256(body)
	server := resp.Header.Get(testbed.ServerHeader)
	if err != nil || resp.StatusCode != http.StatusOK || strings.TrimSpace(string(got)) != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload of %d bytes to %s via %s arrived damaged: status %d, digest %q, %v", len(body), server, url, resp.StatusCode, got, err)
	}
	return server
}

// downloadAll GETs url on a new connection, checks that n bytes arrive and
// names the real server that sent them.
func downloadAll(t *testing.T, c *http.Client, url string, n int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), offloadTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("download %s: %v", url, err)
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	server := resp.Header.Get(testbed.ServerHeader)
	if err != nil || resp.StatusCode != http.StatusOK || got != int64(n) {
		t.Fatalf("download %s from %s: status %d, %d of %d bytes, %v", url, server, resp.StatusCode, got, n, err)
	}
	return server
}

// wireFrame is the largest frame a 1500-byte MTU puts on a wire (without
// FCS or VLAN tag); a larger one is a super-frame built by TSO or GRO.
const wireFrame = 1514

// frameStats counts the VIP frames a capture on the director saw, per
// direction (in: to the director's MAC, out: from it). The capture may miss
// frames under load, so the counts are lower bounds, for the log only.
type frameStats struct {
	in, out [2]dirStats // [0] IPv4, [1] IPv6
}

type dirStats struct {
	frames, super, largest int
}

func (d *dirStats) add(n int) {
	d.frames++
	if n > wireFrame {
		d.super++
	}
	d.largest = max(d.largest, n)
}

// add counts f if it is addressed to the VIP or VIP6. The capture reads at
// most 64 KiB per frame, so a 64 KiB super-frame counts as 65536 bytes.
func (s *frameStats) add(l *testbed.Lab, f []byte) {
	if len(f) < 14 {
		return
	}
	off, et := 14, binary.BigEndian.Uint16(f[12:])
	if et == 0x8100 && len(f) >= 18 {
		off, et = 18, binary.BigEndian.Uint16(f[16:])
	}
	fam := -1
	switch {
	case et == 0x0800 && len(f) >= off+20 && netip.AddrFrom4([4]byte(f[off+16:off+20])) == l.VIP:
		fam = 0
	case et == 0x86dd && len(f) >= off+40 && netip.AddrFrom16([16]byte(f[off+24:off+40])) == l.VIP6:
		fam = 1
	default:
		return
	}
	switch {
	case bytes.Equal(f[0:6], l.Director.MAC):
		s.in[fam].add(len(f))
	case bytes.Equal(f[6:12], l.Director.MAC):
		s.out[fam].add(len(f))
	}
}

func (s frameStats) String() string {
	var b strings.Builder
	for fam, name := range []string{"IPv4", "IPv6"} {
		if fam > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s in %d frames (%d over %d bytes, largest %d), out %d (%d over, largest %d)", name,
			s.in[fam].frames, s.in[fam].super, wireFrame, s.in[fam].largest,
			s.out[fam].frames, s.out[fam].super, s.out[fam].largest)
	}
	return b.String()
}

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// TestKernelFlows: with -kernel-flows the kernel forwards the frames of
// established connections itself: an 8 MB upload over one connection
// arrives intact, most of its segments never reach drlb's sockets
// (kernel_forwarded), the server's packet counter still counts them,
// and new connections still spread rr. With AF_XDP the XDP program
// forwards them, in generic mode (native XDP_TX on a veth is dropped
// unless its peer takes it); with AF_PACKET the tc program, which the
// sockets' filters leave them to, with two workers.
func TestKernelFlows(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// super: the router keeps TX checksum offload and TSO, so the
		// upload reaches the director as super-frames (GSO), which the
		// AF_PACKET side forwards whole; else in segments of the MTU.
		super bool
	}{
		{name: "afxdp", args: []string{"-io", "afxdp", "-xdp-flows", "-xdp-generic"}},
		{name: "afpacket", args: []string{"-io", "afpacket", "-kernel-flows", "-workers", "2"}},
		{name: "afpacket-super-frames", args: []string{"-io", "afpacket", "-kernel-flows"}, super: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.NeedRoot(t)
			l := newLab(t, testbed.Options{RealServers: 3})
			cfg := filepath.Join(t.TempDir(), "drlb.yaml")
			writeConfig(t, l, cfg, "rr", nil)
			if !tc.super {
				if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
					t.Fatal(err)
				}
			}
			sock := filepath.Join(t.TempDir(), "ctl.sock")
			p := startDirector(t, l, append([]string{"run", "-c", cfg, "-ctl", sock}, tc.args...)...)
			p.waitLog("kernel flows on", 1, 10*time.Second)
			c := l.HTTPClient(l.Client)
			c.Timeout = 30 * time.Second // frames the kernel loses fail the test, not the package's timeout
			const size = 8 << 20
			upload(t, c, fmt.Sprintf("http://%s/upload", l.VIP), size)
			c.CloseIdleConnections()
			got := distribution(t, l, l.Client, 30)
			for _, rs := range l.RealServers {
				if got[rs.Name] != 10 {
					t.Errorf("rr with kernel flows: %s answered %d of 30, want 10 (%v)", rs.Name, got[rs.Name], got)
				}
			}
			// The kernel's counts reach drlb every 500 ms: read until
			// they cover the upload, or 5 s.
			segments := uint64(size / 1448) // 8 MB in segments of at most 1448 bytes: 5,800 or more frames
			if tc.super {
				segments = size / 65536 // super-frames of at most 64 KiB: 128 or more
			}
			var s control.Snapshot
			var packets uint64
			deadline := time.Now().Add(5 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				var err error
				s, err = control.Get(ctx, sock, false)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				packets = 0
				for _, rs := range s.Services[0].RealServers {
					packets += rs.InPackets
				}
				if packets >= segments && s.KernelForwarded >= segments/2 || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("kernel forwarded %d frames; frames by reason %v; the servers counted %d packets", s.KernelForwarded, s.Frames, packets)
			if s.KernelForwarded < segments/2 {
				t.Errorf("the kernel forwarded %d frames of an 8 MB upload, want most of its %d segments", s.KernelForwarded, segments)
			}
			if packets < segments {
				t.Errorf("the servers' packet counters say %d, fewer than the upload's %d segments", packets, segments)
			}
			p.stop()
			if tc.name == "afxdp" && xdpOn(t, l, l.Director) {
				t.Error("XDP program still attached after drlb stopped")
			}
		})
	}
}

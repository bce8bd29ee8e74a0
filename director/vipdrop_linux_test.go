package director

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/drlb/drlb/link"
)

// xdpLike is an AF_XDP port as attachVIPDrop sees one: a Port with an
// XDP mode.
type xdpLike struct{ link.Port }

func (xdpLike) XDPMode() string { return "driver" }

// TestAttachVIPDropAFXDP: the kernel's copy of VIP frames is dropped at
// tc ingress for an AF_XDP port on one queue too, not only for AF_PACKET
// or several queues: the XDP program passes VIP frames to the kernel
// (over 1792 bytes, before its sockets are in the XSKMAP, all once
// detached from outside), which drlb's AF_PACKET socket beside the AF_XDP
// ones has read by tc ingress. The interface does not exist, so the
// attempt fails at its lookup (logged: nothing is attached), which shows
// the drop was tried; -keep-kernel-copy and a VLAN trunk still skip it.
func TestAttachVIPDropAFXDP(t *testing.T) {
	const ifname = "drlbnosuch0" // no such interface: nothing attaches
	port, peer := link.Pipe()
	defer port.Close()
	defer peer.Close()
	for _, tc := range []struct {
		name   string
		port   link.Port
		keep   bool
		vlan   int
		tried  bool
		logged string
	}{
		{name: "AF_XDP, one queue", port: xdpLike{port}, tried: true},
		{name: "AF_PACKET", port: port, tried: true},
		{name: "AF_XDP, -keep-kernel-copy", port: xdpLike{port}, keep: true},
		{name: "AF_XDP, VLAN trunk", port: xdpLike{port}, vlan: 100, logged: "on a VLAN trunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
			cfg.Interface, cfg.VLAN = ifname, tc.vlan
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, nil))
			if d := attachVIPDrop(cfg, tc.port, cfg.VIPs(), Options{KeepKernelCopy: tc.keep}, log); d != nil {
				d.Close()
				t.Fatalf("a drop attached to %s, which does not exist", ifname)
			}
			out := logs.String()
			tried := strings.Contains(out, "is not dropped") && strings.Contains(out, ifname)
			if tried != tc.tried {
				t.Errorf("drop tried: %v, want %v; log:\n%s", tried, tc.tried, out)
			}
			if !strings.Contains(out, tc.logged) {
				t.Errorf("the log does not say %q:\n%s", tc.logged, out)
			}
		})
	}
}

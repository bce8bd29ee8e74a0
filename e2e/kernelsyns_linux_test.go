package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
)

// TestKernelSYNs: with -kernel-syns, while a spoofed SYN flood from the
// LAN keeps the connection table under pressure, the kernel forwards
// bare SYNs itself (AF_PACKET: each worker's socket filter leaves them to
// the tc program; AF_XDP: the XDP program, in generic mode here since
// native XDP_TX on a veth is dropped unless its peer takes it), drlb
// counts them (kernel_syns), and clients it has never seen get their new
// connections served: their SYN goes to the server the stateless hash
// picks, and drlb adopts the ACK that follows. Without a tc program to
// send them (-keep-kernel-copy) the SYNs stay drlb's, and it says so.
// With another tool's program ahead of drlb's at tc ingress (one that
// lets every frame through: a SYN left to drlb's would be lost) the
// SYNs are held: drlb serves them itself, the kernel forwards none, and
// forwards them again once that program is gone.
func TestKernelSYNs(t *testing.T) {
	testutil.NeedRoot(t)
	tg := testutil.NeedTool(t, "trafgen")
	const (
		conns     = 40
		floodRate = "40000pps"
	)
	for _, tc := range []struct {
		name string
		args []string
		off  bool // -kernel-syns off: no tc program to send the SYNs
		held bool // a program ahead of drlb's at tc ingress until the clients are served
		v6   bool // the flood and the clients over IPv6
	}{
		{name: "afpacket", args: []string{"-io", "afpacket", "-kernel-syns", "-workers", "2"}},
		{name: "afxdp", args: []string{"-io", "afxdp", "-kernel-syns", "-xdp-generic"}},
		{name: "afpacket-held", args: []string{"-io", "afpacket", "-kernel-syns"}, held: true},
		{name: "afpacket-ipv6", args: []string{"-io", "afpacket", "-kernel-syns", "-workers", "2"}, v6: true},
		{name: "afxdp-ipv6", args: []string{"-io", "afxdp", "-kernel-syns", "-xdp-generic"}, v6: true},
		{name: "afpacket-keep-kernel-copy", args: []string{"-io", "afpacket", "-kernel-syns", "-keep-kernel-copy"}, off: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLab(t, testbed.Options{RealServers: 2, LANClient: true})
			// AF_XDP carries no partial-checksum state: the router
			// completes its checksums, as frames off a wire are.
			if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(t.TempDir(), "drlb.yaml")
			var b strings.Builder
			fmt.Fprintf(&b, "interface: %s\nmax_conns: 256\nservices:\n", l.Director.Iface)
			for _, vip := range []netip.Addr{l.VIP, l.VIP6} {
				fmt.Fprintf(&b, "  - vip: %q\n    port: %d\n    protocol: tcp\n    scheduler: rr\n    realservers:\n", vip, testbed.HTTPPort)
				for _, rs := range l.RealServers {
					addr := rs.IPv4
					if vip.Is6() {
						addr = rs.IPv6
					}
					fmt.Fprintf(&b, "      - {address: %q}\n", addr)
				}
			}
			if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(t.TempDir(), "ctl.sock")
			p := startDirectorN(t, l, 2*len(l.RealServers), append([]string{"run", "-c", cfg, "-ctl", sock}, tc.args...)...)
			if tc.off {
				p.waitLog("-kernel-syns off", 1, 10*time.Second)
				return
			}
			detach := func() {}
			if tc.held {
				_, detach = testutil.TCXPassAll(t, l.Director.NS, l.Director.Iface, true)
				p.waitLog("kernel SYNs held: another tc program runs before drlb's", 1, 5*time.Second)
			}
			strangers := addClientAddrsOf(t, l, conns, tc.v6)
			vip, flood := l.VIP, synFloodConf(l)
			if tc.v6 {
				vip, flood = l.VIP6, synFloodConf6(l)
			}
			conf := writeTrafgenConf(t, flood)
			ctx, cancel := context.WithCancel(context.Background())
			flooding := make(chan error, 1)
			go func() {
				// Bounded in count and time.
				_, err := runTrafgen(ctx, l, tg, conf, 1_200_000, 30*time.Second, "--rate", floodRate)
				flooding <- err
			}()
			defer func() {
				cancel()
				if err := <-flooding; err != nil {
					t.Errorf("flood: %v", err)
				}
			}()
			if tc.held {
				pressure := func(s control.Snapshot) bool { return s.Overload != nil && s.Overload.Pressure }
				if s := ctlSnapshotWhen(t, sock, 15*time.Second, pressure); !pressure(s) {
					t.Fatal("no table pressure under the flood")
				}
			} else {
				p.waitLog(`under pressure" on=true`, 1, 15*time.Second)
			}
			served := 0
			for _, from := range strangers {
				c, stop := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := askNewFrom(c, l, from, vip); err != nil {
					t.Errorf("a new connection from %v under the flood: %v", from, err)
				} else {
					served++
				}
				stop()
			}
			if tc.held {
				s := ctlSnapshot(t, sock, false)
				t.Logf("held: served %d of %d never-seen clients; the kernel forwarded %d SYNs; frames by reason %v; link drops %v", served, conns, s.KernelSYNs, s.Frames, s.Link)
				if s.KernelSYNs != 0 || strings.Contains(p.logs.String(), `under pressure" on=true`) {
					t.Errorf("held, yet the kernel forwarded %d SYNs", s.KernelSYNs)
				}
				if s.KernelSYNsState != control.KernelSYNsHeld {
					t.Errorf("held, yet ctl says kernel SYNs %q", s.KernelSYNsState)
				}
				detach()
				p.waitLog("kernel SYNs resumed", 1, 5*time.Second)
				p.waitLog(`under pressure" on=true`, 1, 5*time.Second)
			}
			s := ctlSnapshotWhen(t, sock, 5*time.Second, func(s control.Snapshot) bool { return s.KernelSYNs >= 1000 })
			if s.KernelSYNsState != control.KernelSYNsOn {
				t.Errorf("ctl says kernel SYNs %q, want %q", s.KernelSYNsState, control.KernelSYNsOn)
			}
			t.Logf("served %d of %d never-seen clients; the kernel forwarded %d SYNs; frames by reason %v; link drops %v", served, conns, s.KernelSYNs, s.Frames, s.Link)
			if s.KernelSYNs < 1000 {
				t.Errorf("the kernel forwarded %d SYNs of the flood, want 1000 or more", s.KernelSYNs)
			}
			if s.Frames["pressure-adopted"] == 0 && !tc.held {
				t.Error("no connection adopted by the stateless hash: the clients' SYNs did not go through the kernel")
			}
		})
	}
}

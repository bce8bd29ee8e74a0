package director

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
	"github.com/vishvananda/netlink"
)

// TestSyncSendsFromListedAddress: a director whose interface holds
// another IPv4 address first (a management address) syncs from the one
// ha.sync.peers lists for it. Bound to the first, it sent from an address
// its peers drop as unknown_peer, and sent its own updates to itself.
func TestSyncSendsFromListedAddress(t *testing.T) {
	ns := testutil.NewNS(t)
	testutil.Veth(t, testutil.End{NS: ns, Name: "sync0", Addr: netip.MustParsePrefix("198.18.0.50/24")},
		testutil.End{NS: ns, Name: "sync1"})
	h := testutil.NetlinkHandle(t, ns)
	l, err := h.LinkByName("sync0")
	if err != nil {
		t.Fatal(err)
	}
	listed := netip.MustParseAddr("198.18.0.2")
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: listed.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "sync.key")
	if err := os.WriteFile(keyFile, syncKey, 0o600); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("198.18.0.3")
	cfg := syncConfig(listed, peer)
	cfg.HA.Sync.KeyFile = keyFile
	var opts Options
	err = testutil.Do(ns, func() error {
		// As Run does: IPv4 is the interface's first address.
		first, _ := ownAddress("sync0", true)
		opts = Options{IPv4: first, VRRP: newFakeVRRP()}
		return openSync("sync0", cfg.HA.Sync, &opts)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opts.Sync.Close() })
	if opts.IPv4 != netip.MustParseAddr("198.18.0.50") {
		t.Fatalf("the interface's first address is %v, want 198.18.0.50", opts.IPv4)
	}
	dirPort, wire := link.Pipe()
	defer wire.Close()
	defer dirPort.Close()
	d, err := New(cfg, dirPort, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.AddrPortFrom(peer, connsync.Port)}
	if d.sync.self != listed || !slices.Equal(d.sync.peers, want) {
		t.Fatalf("sync from %v to %v, want from %v to %v", d.sync.self, d.sync.peers, listed, want)
	}
}

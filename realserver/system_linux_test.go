package realserver

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/vishvananda/netlink"
)

// TestLiveUpDown runs on a thread inside a fresh namespace of the test's
// own, gone when the test ends: nothing it makes can touch the root
// namespace.
func TestLiveUpDown(t *testing.T) {
	ns := testutil.NewNS(t)
	err := testutil.Do(ns, func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "peer0"}); err != nil {
			return fmt.Errorf("adding veth eth0: %v", err)
		}
		lo, _ := h.LinkByName("lo")
		h.LinkSetUp(lo)
		sys := NewSystem("", h)
		// A new namespace inherits IPv4 conf from the root one: start from 0.
		for _, p := range []string{"net/ipv4/conf/all/arp_ignore", "net/ipv4/conf/all/arp_announce", "net/ipv4/conf/eth0/arp_ignore", "net/ipv4/conf/eth0/arp_announce"} {
			if err := sys.WriteSysctl(p, "0"); err != nil {
				return err
			}
		}
		state := filepath.Join(t.TempDir(), "rs.json")
		for _, vip := range []string{"198.18.0.100", "2001:2::100"} {
			c := Config{VIP: netip.MustParseAddr(vip), Iface: "eth0", StateFile: state}
			p := vipPrefix(c.VIP)
			if _, err := Up(sys, c); err != nil {
				return fmt.Errorf("Up %s: %v", vip, err)
			}
			steps, err := Up(sys, c)
			if err != nil || !slices.ContainsFunc(steps, func(s Step) bool { return s.Skipped == "already set" }) {
				t.Errorf("second Up %s = %q, %v", vip, stepStrings(steps), err)
			}
			if has, err := sys.HasAddr("lo", p); !has || err != nil {
				t.Errorf("%s not on lo after Up (%v)", p, err)
			}
			if c.VIP.Is4() {
				for _, tc := range [][2]string{{"net/ipv4/conf/all/arp_ignore", "1"}, {"net/ipv4/conf/eth0/arp_announce", "2"}} {
					if v, _ := sys.ReadSysctl(tc[0]); v != tc[1] {
						t.Errorf("%s = %q after Up, want %s", tc[0], v, tc[1])
					}
				}
			}
			if _, err := Down(sys, c); err != nil {
				t.Errorf("Down %s: %v", vip, err)
			}
			if has, _ := sys.HasAddr("lo", p); has {
				t.Errorf("%s still on lo after Down", p)
			}
			if v, _ := sys.ReadSysctl("net/ipv4/conf/all/arp_ignore"); v != "0" {
				t.Errorf("arp_ignore = %q after Down, want 0", v)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

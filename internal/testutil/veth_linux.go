package testutil

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// testNet is the only network the builders configure: 198.18.0.0/15, set
// aside for benchmarking (RFC 2544), never routed on the Internet.
var testNet = netip.MustParsePrefix("198.18.0.0/15")

// End is one end of a veth pair.
type End struct {
	NS   netns.NsHandle   // the namespace it lives in (e.g. from NewNS)
	Name string           // interface name
	MAC  net.HardwareAddr // nil: the kernel picks one
	Addr netip.Prefix     // zero: no address; else inside 198.18.0.0/15
	// Queues is how many receive and transmit queues the end has (0:
	// the kernel's default: one, or for b as many as a has).
	Queues int
}

// Veth creates a veth pair a <-> b, the ends in their namespaces (they may
// share one), configures the optional MACs and addresses, brings both up
// and waits until the kernel reports them operationally up. t.Cleanup
// deletes the pair. Both namespaces must be the test's own (see
// NetlinkHandle) and addresses must lie in 198.18.0.0/15.
func Veth(t testing.TB, a, b End) {
	t.Helper()
	for _, e := range []End{a, b} {
		if e.Addr.IsValid() && !(testNet.Contains(e.Addr.Addr()) && e.Addr.Bits() >= testNet.Bits()) {
			t.Fatalf("testutil: address %v for %s is outside %v", e.Addr, e.Name, testNet)
		}
	}
	ha, hb := NetlinkHandle(t, a.NS), NetlinkHandle(t, b.NS)
	la := netlink.NewLinkAttrs()
	la.Name = a.Name
	la.HardwareAddr = a.MAC
	la.NumTxQueues, la.NumRxQueues = a.Queues, a.Queues
	v := &netlink.Veth{LinkAttrs: la, PeerName: b.Name, PeerHardwareAddr: b.MAC, PeerNamespace: netlink.NsFd(int(b.NS)),
		PeerNumTxQueues: uint32(b.Queues), PeerNumRxQueues: uint32(b.Queues)}
	if err := ha.LinkAdd(v); err != nil {
		t.Fatalf("testutil: add veth %s/%s: %v", a.Name, b.Name, err)
	}
	t.Cleanup(func() {
		// Deleting one end deletes both; gone already is fine (the
		// namespace may have been closed, or the test deleted it).
		if l, err := ha.LinkByName(a.Name); err == nil {
			_ = ha.LinkDel(l)
		}
	})
	for _, side := range []struct {
		h *netlink.Handle
		e End
	}{{ha, a}, {hb, b}} {
		l, err := side.h.LinkByName(side.e.Name)
		if err != nil {
			t.Fatalf("testutil: find %s: %v", side.e.Name, err)
		}
		if p := side.e.Addr; p.IsValid() {
			ipn := &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := side.h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
				t.Fatalf("testutil: address %v on %s: %v", p, side.e.Name, err)
			}
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatalf("testutil: %s up: %v", side.e.Name, err)
		}
	}
	WaitOperUp(t, ha, a.Name)
	WaitOperUp(t, hb, b.Name)
}

// WaitOperUp waits (up to 10s) until the kernel reports name operationally
// up. Until then (linkwatch may take up to a second) the device has no
// queueing discipline and frames written to it vanish without an error.
func WaitOperUp(t testing.TB, h *netlink.Handle, name string) {
	t.Helper()
	for range 1000 {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("testutil: find %s: %v", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("testutil: %s did not come up", name)
}

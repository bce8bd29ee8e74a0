package testutil

import (
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNS creates a network namespace for the test, with lo up, and returns a
// handle on it. It calls NeedRoot first. The namespace has no name (nothing
// in /var/run/netns): it lives while the handle, or anything made in it, is
// open, and t.Cleanup closes the handle however the test ends, so even a
// killed test binary leaves nothing behind.
func NewNS(t testing.TB) netns.NsHandle {
	t.Helper()
	NeedRoot(t)
	var ns netns.NsHandle
	var err error
	// netns.New moves the thread into the new namespace: a spare one.
	onSpareThread(func() { ns, err = netns.New() })
	if err != nil {
		t.Fatalf("testutil: new network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h := NetlinkHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("testutil: lo up in the new namespace: %v", err)
	}
	return ns
}

// NetlinkHandle returns a netlink handle working in ns, closed by
// t.Cleanup. It refuses the test process's own namespace (and init's):
// tests configure only namespaces of their own.
func NetlinkHandle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	refuseHostNS(t, ns)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("testutil: netlink handle in %v: %v", ns, err)
	}
	t.Cleanup(h.Close)
	return h
}

// hostNS identifies the namespaces a test must never configure: the one
// this process started in, taken before any test could switch a thread,
// and init's. (Not /proc/self/ns/net: /proc/self is the main thread, and a
// goroutine that locked it and moved it into a test namespace leaves it
// there for good.)
var hostNS = func() []unix.Stat_t {
	var ids []unix.Stat_t
	for _, path := range []string{"/proc/thread-self/ns/net", "/proc/1/ns/net"} {
		var st unix.Stat_t
		if unix.Stat(path, &st) == nil { // init's may be out of reach
			ids = append(ids, st)
		}
	}
	return ids
}()

// refuseHostNS fails the test if ns is not an open namespace handle, or is
// a namespace of the host (see hostNS).
func refuseHostNS(t testing.TB, ns netns.NsHandle) {
	t.Helper()
	var st unix.Stat_t
	if !ns.IsOpen() || unix.Fstat(int(ns), &st) != nil {
		t.Fatalf("testutil: %v is not an open network namespace", ns)
	}
	for _, h := range hostNS {
		if st.Dev == h.Dev && st.Ino == h.Ino {
			t.Fatalf("testutil: refusing to configure the host's network namespace")
		}
	}
}

package link

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Namespace helpers for the tests that need root. Everything happens in
// namespaces created here, with 198.18.0.0/15 addresses, and is torn down
// by t.Cleanup even when the test fails.

var nsSeq atomic.Int64

// needRoot skips without root, but fails under CI=true, where the tests
// must run.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true: this test needs root (network namespaces, AF_PACKET)")
	}
	t.Skip("needs root: network namespaces and AF_PACKET sockets")
}

// newNS creates a uniquely named network namespace with lo up.
func newNS(t testing.TB) netns.NsHandle {
	t.Helper()
	name := fmt.Sprintf("drlb-link-%d-%d", os.Getpid(), nsSeq.Add(1))
	var ns netns.NsHandle
	err := onThread(func() error {
		var err error
		ns, err = netns.NewNamed(name) // also moves this thread, which then dies
		return err
	})
	if err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	h := nsHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("namespace %s: lo up: %v", name, err)
	}
	return ns
}

// onThread runs fn on a locked OS thread that is thrown away afterwards, so
// a namespace switch inside fn never leaks to other goroutines.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with us
		errc <- fn()
	}()
	return <-errc
}

// inNS runs fn with the calling thread in ns; sockets opened by fn stay in
// ns for their whole life.
func inNS(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter namespace: %w", err)
		}
		return fn()
	})
}

// nsHandle is a netlink handle working in ns, closed at cleanup.
func nsHandle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// veth creates a veth pair nameX (in nsX) <-> nameY (in nsY), both up, with
// the given MACs and optional addresses (a zero prefix means none).
func veth(t testing.TB, nsX netns.NsHandle, nameX string, macX net.HardwareAddr, addrX netip.Prefix,
	nsY netns.NsHandle, nameY string, macY net.HardwareAddr, addrY netip.Prefix) {
	t.Helper()
	hx, hy := nsHandle(t, nsX), nsHandle(t, nsY)
	la := netlink.NewLinkAttrs()
	la.Name = nameX
	la.HardwareAddr = macX
	v := &netlink.Veth{LinkAttrs: la, PeerName: nameY, PeerHardwareAddr: macY, PeerNamespace: netlink.NsFd(int(nsY))}
	if err := hx.LinkAdd(v); err != nil {
		t.Fatalf("add veth %s/%s: %v", nameX, nameY, err)
	}
	for _, side := range []struct {
		h    *netlink.Handle
		name string
		addr netip.Prefix
	}{{hx, nameX, addrX}, {hy, nameY, addrY}} {
		l, err := side.h.LinkByName(side.name)
		if err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		if side.addr.IsValid() {
			ipn := &net.IPNet{IP: side.addr.Addr().AsSlice(), Mask: net.CIDRMask(side.addr.Bits(), side.addr.Addr().BitLen())}
			if err := side.h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
				t.Fatalf("address %v on %s: %v", side.addr, side.name, err)
			}
		}
		if err := side.h.LinkSetUp(l); err != nil {
			t.Fatalf("%s up: %v", side.name, err)
		}
	}
	waitOperUp(t, hx, nameX)
	waitOperUp(t, hy, nameY)
}

// waitOperUp waits until the kernel reports name operationally up. Until
// then (linkwatch may take up to a second) the device has no queueing
// discipline and frames written to it vanish without an error.
func waitOperUp(t testing.TB, h *netlink.Handle, name string) {
	t.Helper()
	for range 1000 {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("find %s: %v", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s did not come up", name)
}

// openIn opens a Port on ifname inside ns, closed at cleanup.
func openIn(t testing.TB, ns netns.NsHandle, ifname string, cfg Config) Port {
	t.Helper()
	var p Port
	err := inNS(ns, func() error {
		var err error
		p, err = Open(ifname, cfg)
		return err
	})
	if err != nil {
		t.Fatalf("Open %s: %v", ifname, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

package testutil

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// TestVethBetweenNamespaces: a datagram crosses a veth between two new
// namespaces, sockets opened in Do stay where they were opened, the host
// never sees the links, and cleanup removes them.
func TestVethBetweenNamespaces(t *testing.T) {
	NeedRoot(t)
	var keep netns.NsHandle // a second handle on nsA, to look after cleanup
	f := runFake(t, func(tb testing.TB) {
		nsA, nsB := NewNS(tb), NewNS(tb)
		if nsA.Equal(nsB) {
			tb.Fatalf("two NewNS calls gave the same namespace")
		}
		Veth(tb,
			End{NS: nsA, Name: "ta0", MAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xa0}, Addr: netip.MustParsePrefix("198.18.7.1/24")},
			End{NS: nsB, Name: "tb0", Addr: netip.MustParsePrefix("198.18.7.2/24")})
		fd, err := unix.Dup(int(nsA))
		if err != nil {
			tb.Fatalf("dup: %v", err)
		}
		keep = netns.NsHandle(fd)

		if _, err := netlink.LinkByName("ta0"); err == nil {
			tb.Errorf("ta0 is in the host's namespace")
		}
		if l, err := NetlinkHandle(tb, nsA).LinkByName("ta0"); err != nil || l.Attrs().HardwareAddr.String() != "02:00:00:00:00:a0" {
			tb.Errorf("ta0 in nsA: %v, %v", l, err)
		}
		var pc net.PacketConn
		if err := Do(nsB, func() (err error) { pc, err = net.ListenPacket("udp4", "198.18.7.2:0"); return }); err != nil {
			tb.Fatalf("listen in nsB: %v", err)
		}
		defer pc.Close()
		err = Do(nsA, func() error {
			c, err := net.Dial("udp4", pc.LocalAddr().String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("over the veth"))
			return err
		})
		if err != nil {
			tb.Fatalf("send from nsA: %v", err)
		}
		pc.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, from, err := pc.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "over the veth" || from.(*net.UDPAddr).IP.String() != "198.18.7.1" {
			tb.Errorf("nsB read %q from %v, %v", buf[:n], from, err)
		}
	})
	if f.failed != "" || f.skipped != "" {
		t.Fatalf("failed %q, skipped %q", f.failed, f.skipped)
	}
	defer keep.Close()
	h, err := netlink.NewHandleAt(keep)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName("ta0"); err == nil {
		t.Error("ta0 is still there after cleanup")
	}
}

func TestVethRefusesOtherAddresses(t *testing.T) {
	NeedRoot(t)
	for _, p := range []string{"10.0.0.1/24", "198.20.0.1/24", "198.18.0.1/14", "2001:db8::1/64"} {
		f := runFake(t, func(tb testing.TB) {
			ns := NewNS(tb)
			Veth(tb, End{NS: ns, Name: "ta0"}, End{NS: ns, Name: "tb0", Addr: netip.MustParsePrefix(p)})
		})
		if !strings.Contains(f.failed, "outside 198.18.0.0/15") {
			t.Errorf("Veth with %s: failed %q, want a refusal", p, f.failed)
		}
	}
}

func TestRefusesHostNamespace(t *testing.T) {
	NeedRoot(t)
	host, err := netns.Get() // every thread that runs test code is in the host's
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	for name, fn := range map[string]func(tb testing.TB){
		"NetlinkHandle": func(tb testing.TB) { NetlinkHandle(tb, host) },
		"Veth":          func(tb testing.TB) { Veth(tb, End{NS: NewNS(tb), Name: "ta0"}, End{NS: host, Name: "tb0"}) },
		"closed handle": func(tb testing.TB) { NetlinkHandle(tb, netns.None()) },
	} {
		f := runFake(t, fn)
		if f.failed == "" {
			t.Errorf("%s on the host's namespace did not fail", name)
		}
	}
	if _, err := netlink.LinkByName("tb0"); err == nil {
		t.Error("tb0 appeared in the host's namespace")
	}
}

func TestDo(t *testing.T) {
	ns := NewNS(t)
	want := errors.New("from fn")
	var inside netns.NsHandle
	err := Do(ns, func() (err error) {
		inside, err = netns.Get()
		if err != nil {
			return err
		}
		return want
	})
	if err != want {
		t.Fatalf("Do returned %v, want fn's error", err)
	}
	defer inside.Close()
	if !inside.Equal(ns) {
		t.Error("fn did not run in the namespace")
	}
	if err := Do(netns.None(), func() error { return nil }); err == nil {
		t.Error("Do into no namespace succeeded")
	}
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(string), "boom") {
			t.Errorf("recovered %v, want fn's panic", p)
		}
	}()
	Do(ns, func() error { panic("boom") })
}

// TestMainThreadStaysHome: Do and NewNS never move the main thread, which
// Go cannot throw away, so the process as a whole (/proc/self/ns/net)
// stays in the host's namespace however often the tests switch threads.
func TestMainThreadStaysHome(t *testing.T) {
	ns := NewNS(t)
	for range 200 {
		err := Do(ns, func() error {
			if unix.Gettid() == unix.Getpid() {
				return errors.New("fn ran on the main thread")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	if st.Dev != hostNS[0].Dev || st.Ino != hostNS[0].Ino {
		t.Fatal("the main thread is no longer in the host's network namespace")
	}
}

package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func TestLab(t *testing.T) {
	l := newTestLab(t, Options{RealServers: 2, LANClient: true})
	if err := l.StartServices(t.Context()); err != nil {
		t.Fatalf("StartServices: %v", err)
	}
	if err := l.StartServices(t.Context()); !errors.Is(err, ErrServicesStarted) {
		t.Errorf("second StartServices = %v, want ErrServicesStarted", err)
	}

	t.Run("HTTP to each real server's own address", func(t *testing.T) {
		for _, from := range []*Host{l.Client, l.LANClient} {
			c := l.HTTPClient(from)
			defer c.CloseIdleConnections()
			for _, rs := range l.RealServers {
				for _, a := range []netip.Addr{rs.IPv4, rs.IPv6} {
					url := "http://" + netip.AddrPortFrom(a, HTTPPort).String() + "/"
					if got := httpGet(t, c, url); got != rs.Name+"\n" {
						t.Errorf("%s: GET %s = %q, want %q", from.Name, url, got, rs.Name+"\n")
					}
				}
			}
		}
	})

	t.Run("upload and download", func(t *testing.T) {
		c := l.HTTPClient(l.Client)
		defer c.CloseIdleConnections()
		base := "http://" + l.RealServers[1].IPv4.String()
		body := bytes.Repeat([]byte("drlb"), 256<<10) // 1 MiB, several TSO segments
		sum := sha256.Sum256(body)
		resp, err := c.Post(base+"/upload", "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := hex.EncodeToString(sum[:]) + "\n"; string(got) != want {
			t.Errorf("POST 1 MiB: got %q, want %q", got, want)
		}
		resp, err = c.Get(base + "/bytes?n=300000")
		if err != nil {
			t.Fatalf("GET /bytes: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n != 300000 || resp.Header.Get(ServerHeader) != "rs2" {
			t.Errorf("GET /bytes?n=300000: %d bytes from %q, want 300000 from rs2", n, resp.Header.Get(ServerHeader))
		}
	})

	t.Run("UDP echo", func(t *testing.T) {
		for _, rs := range l.RealServers {
			c, err := l.DialUDP(l.Client, netip.AddrPortFrom(rs.IPv4, EchoPort))
			if err != nil {
				t.Fatalf("DialUDP: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatalf("write: %v", err)
			}
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("echo from %s: %v", rs.Name, err)
			}
			if want := string(EchoReply(rs.Name, []byte("ping"))); string(buf[:n]) != want {
				t.Errorf("echo from %s = %q, want %q", rs.Name, buf[:n], want)
			}
		}
	})

	t.Run("router pings the director", func(t *testing.T) {
		err := l.Do(l.Router, func() error { return ping(l.Router.IPv4, l.Director.IPv4) })
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("ARP from the router", func(t *testing.T) {
		err := l.Do(l.Router, func() error {
			ifi, err := net.InterfaceByName(l.Router.Iface)
			if err != nil {
				return err
			}
			c, err := arp.Dial(ifi)
			if err != nil {
				return err
			}
			defer c.Close()
			for _, h := range append([]*Host{l.Director}, l.RealServers...) {
				c.SetDeadline(time.Now().Add(3 * time.Second))
				mac, err := c.Resolve(h.IPv4)
				if err != nil {
					return fmt.Errorf("ARP for %s (%s): %w", h.IPv4, h.Name, err)
				}
				if mac.String() != h.MAC.String() {
					return fmt.Errorf("ARP for %s: %s, want %s", h.IPv4, mac, h.MAC)
				}
			}
			// arp_ignore=1: the real servers hold the VIP on lo but keep quiet.
			c.SetDeadline(time.Now().Add(500 * time.Millisecond))
			if mac, err := c.Resolve(l.VIP); err == nil {
				return fmt.Errorf("ARP for VIP %s answered by %s; want no answer (no drlb runs)", l.VIP, mac)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("no neighbour advertisement for VIP6", func(t *testing.T) {
		// IPv6 has no arp_ignore: the kernel answers solicitations only for
		// addresses on the receiving interface, so VIP6 on lo stays silent.
		err := l.Do(l.Router, func() error {
			if !ping6(l.RealServers[0].IPv6, 3*time.Second) {
				return fmt.Errorf("no ICMPv6 echo reply from %s", l.RealServers[0].IPv6)
			}
			if ping6(l.VIP6, 500*time.Millisecond) {
				return fmt.Errorf("a real server answered for VIP6 %s; want silence (no drlb runs)", l.VIP6)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})

	t.Run("VIP on each real server's lo, not on the director", func(t *testing.T) {
		for _, h := range append([]*Host{l.Director}, l.RealServers...) {
			got := loAddrs(t, h)
			want := h != l.Director
			if got[l.VIP] != want || got[l.VIP6] != want {
				t.Errorf("%s: VIP on lo = %v, VIP6 on lo = %v, want %v", h.Name, got[l.VIP], got[l.VIP6], want)
			}
		}
	})

	t.Run("sysctls", func(t *testing.T) {
		tests := []struct {
			h    *Host
			path string
			want string
		}{
			{l.Router, "net/ipv4/ip_forward", "1"},
			{l.Director, "net/ipv4/ip_forward", "0"},
			{l.Director, "net/ipv4/conf/eth0/send_redirects", "0"},
			{l.RealServers[0], "net/ipv4/conf/all/arp_ignore", "1"},
			{l.RealServers[0], "net/ipv4/conf/eth0/arp_ignore", "1"},
			{l.RealServers[0], "net/ipv4/conf/all/arp_announce", "2"},
			{l.RealServers[1], "net/ipv4/conf/eth0/arp_announce", "2"},
			{l.RealServers[1], "net/ipv4/conf/eth0/rp_filter", "0"},
		}
		for _, tt := range tests {
			var got []byte
			err := l.Do(tt.h, func() (err error) {
				got, err = os.ReadFile(filepath.Join("/proc/sys", tt.path))
				return err
			})
			if err != nil || strings.TrimSpace(string(got)) != tt.want {
				t.Errorf("%s: %s = %q (%v), want %s", tt.h.Name, tt.path, got, err, tt.want)
			}
		}
	})
}

func httpGet(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// ping sends one ICMP echo from src to dst and waits for the reply.
func ping(src, dst netip.Addr) error {
	c, err := icmp.ListenPacket("ip4:icmp", src.String())
	if err != nil {
		return err
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x1d1b, Seq: 1, Data: []byte("drlb-lab")}}
	b, _ := msg.Marshal(nil)
	if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 1500)
	for range 10 {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s: %w", dst, err)
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err == nil && m.Type == ipv4.ICMPTypeEchoReply && from.String() == dst.String() {
			return nil
		}
	}
	return fmt.Errorf("ping %s: no echo reply among 10 packets", dst)
}

// ping6 reports whether dst answers one ICMPv6 echo within wait.
func ping6(dst netip.Addr, wait time.Duration) bool {
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return false
	}
	defer c.Close()
	msg := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x1d1b, Seq: 1, Data: []byte("drlb-lab")}}
	b, _ := msg.Marshal(nil)
	if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	for range 20 {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err == nil && m.Type == ipv6.ICMPTypeEchoReply && from.String() == dst.String() {
			return true
		}
	}
	return false
}

// loAddrs lists the addresses on h's lo.
func loAddrs(t *testing.T, h *Host) map[netip.Addr]bool {
	t.Helper()
	nh := testutil.NetlinkHandle(t, h.NS)
	lo, err := nh.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := nh.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	got := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			got[ip.Unmap()] = true
		}
	}
	return got
}

func TestCloseLeavesNothing(t *testing.T) {
	testutil.NeedRoot(t)
	l, err := New(t.Context(), Options{RealServers: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if err := l.StartServices(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := l.created
	if len(names) != 6 { // switch client router director rs1 rs2
		t.Errorf("created %d namespaces %v, want 6", len(names), names)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Do(l.Client, func() error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close = %v, want ErrClosed", err)
	}
	// netlink.NewHandleAt with the closed namespace would open a handle
	// in this process's own: a lab closed by a signal must refuse.
	if nh, err := l.Netlink(l.Router); !errors.Is(err, ErrClosed) {
		if nh != nil {
			nh.Close()
		}
		t.Errorf("Netlink after Close = %v, want ErrClosed", err)
	}
	assertGone(t, l.Name)
}

// assertGone checks that nothing named after the lab remains: no file in
// /var/run/netns, no nsfs mount, no link in the root namespace.
func assertGone(t *testing.T, name string) {
	t.Helper()
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), name+"-") {
			t.Errorf("namespace %s still in %s", e.Name(), netnsDir)
		}
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "/"+name+"-") {
			t.Errorf("mount still present: %s", sc.Text())
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range links {
		if strings.HasPrefix(link.Attrs().Alias, name+"/") {
			t.Errorf("link %s (alias %s) in the root namespace", link.Attrs().Name, link.Attrs().Alias)
		}
	}
}

func TestTwoLabsAtOnce(t *testing.T) {
	testutil.NeedRoot(t)
	var labs [2]*Lab
	var errs [2]error
	var wg sync.WaitGroup
	for i := range labs {
		wg.Go(func() { labs[i], errs[i] = New(t.Context(), Options{RealServers: 1}) })
	}
	wg.Wait()
	for i, l := range labs {
		if l != nil {
			t.Cleanup(func() { l.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("lab %d: %v", i, errs[i])
		}
	}
	if labs[0].Name == labs[1].Name {
		t.Fatalf("both labs are named %s", labs[0].Name)
	}
	for _, l := range labs {
		if err := l.StartServices(t.Context()); err != nil {
			t.Fatal(err)
		}
		c := l.HTTPClient(l.Client)
		if got := httpGet(t, c, "http://"+l.RealServers[0].IPv4.String()+"/"); got != "rs1\n" {
			t.Errorf("lab %s: GET rs1 = %q", l.Name, got)
		}
		c.CloseIdleConnections()
	}
}

func TestCleanupRemovesLeftovers(t *testing.T) {
	testutil.NeedRoot(t)
	name := fmt.Sprintf("drlbtest%dc", os.Getpid())
	l := newTestLab(t, Options{RealServers: 1, Name: name})
	// Pretend the process died: remove by name, as a later run would.
	if err := Cleanup(name + "-"); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	assertGone(t, name)
	if err := Cleanup(""); !errors.Is(err, ErrOptions) {
		t.Errorf("Cleanup(\"\") = %v, want ErrOptions", err)
	}
	if err := CleanupStale(); err != nil {
		t.Errorf("CleanupStale: %v", err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, name+"-client")); err == nil {
		t.Error("lab namespace came back")
	}
	_ = l
}

func TestNewFailsCleanly(t *testing.T) {
	testutil.NeedRoot(t)
	name := fmt.Sprintf("drlbtest%dd", os.Getpid())
	// A namespace already holding the router's name makes New fail midway.
	blocker, err := createNamedNS(name + "-router")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		blocker.Close()
		deleteNamedNS(name + "-router")
	})
	_, err = New(t.Context(), Options{Name: name, RealServers: 1})
	if err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("New with a clashing name = %v, want an 'already exists' error", err)
	}
	for _, host := range []string{"switch", "client", "director", "rs1"} {
		if _, err := os.Stat(filepath.Join(netnsDir, name+"-"+host)); err == nil {
			t.Errorf("failed New left %s-%s behind", name, host)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsDir, name+"-router")); err != nil {
		t.Errorf("failed New removed a namespace it did not make: %v", err)
	}
}

package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeHost is a Host made of maps.
type fakeHost struct {
	sysctl   map[string]string
	links    map[string]LinkInfo
	addrs    []IfAddr
	gateways []netip.Addr
	pingMax  map[netip.Addr]int
	// listen answers TCP connections: nil accepts, an error is returned
	// (missing: a timeout, as from a host that is not there).
	listen map[netip.AddrPort]error
}

func (f *fakeHost) Connect(a netip.AddrPort, timeout time.Duration) error {
	if err, ok := f.listen[a]; ok {
		return err
	}
	return fmt.Errorf("dial tcp %s: i/o timeout", a)
}

func (f *fakeHost) Sysctl(p string) (string, error) {
	if v, ok := f.sysctl[p]; ok {
		return v, nil
	}
	return "", errors.New("no such sysctl " + p)
}

func (f *fakeHost) Link(n string) (LinkInfo, error) {
	if l, ok := f.links[n]; ok {
		return l, nil
	}
	return LinkInfo{}, ErrNoInterface
}
func (f *fakeHost) Addrs() ([]IfAddr, error)               { return f.addrs, nil }
func (f *fakeHost) DefaultGateways() ([]netip.Addr, error) { return f.gateways, nil }
func (f *fakeHost) Offloads(string) (map[string]bool, error) {
	return map[string]bool{"generic-receive-offload": true}, nil
}

// Ping answers according to pingMax: the largest packet each address answers (0 = none).
func (f *fakeHost) Ping(a netip.Addr, size int, _ time.Duration) (bool, error) {
	return size <= f.pingMax[a], nil
}

var (
	vip = netip.MustParseAddr("198.18.0.100")
	mac = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

func goodDirector() *fakeHost {
	return &fakeHost{
		sysctl: map[string]string{
			"net/ipv4/conf/eth0/forwarding": "0", "net/ipv4/conf/all/send_redirects": "0", "net/ipv4/conf/eth0/send_redirects": "0",
		},
		links: map[string]LinkInfo{"eth0": {Name: "eth0", Up: true, MTU: 1500, MAC: mac}},
		addrs: []IfAddr{{Iface: "eth0", Addr: netip.MustParsePrefix("198.18.0.2/24")}},
	}
}

func goodRealServer() *fakeHost {
	return &fakeHost{
		sysctl: map[string]string{
			"net/ipv4/conf/all/arp_ignore": "1", "net/ipv4/conf/eth0/arp_ignore": "0",
			"net/ipv4/conf/all/arp_announce": "0", "net/ipv4/conf/eth0/arp_announce": "2",
		},
		links:    map[string]LinkInfo{"eth0": {Name: "eth0", Up: true, MTU: 1500, MAC: mac}},
		addrs:    []IfAddr{{Iface: "eth0", Addr: netip.MustParsePrefix("198.18.0.11/24")}, {Iface: "lo", Addr: netip.MustParsePrefix("198.18.0.100/32")}},
		gateways: []netip.Addr{netip.MustParseAddr("198.18.0.1")},
	}
}

func TestDirector(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(h *fakeHost)
		iface string
		fails string // substring of the failure, "" = none
		fix   string
	}{
		{"good", func(*fakeHost) {}, "eth0", "", ""},
		{"missing interface", func(*fakeHost) {}, "eth9", "does not exist", "ip link show"},
		{"down", func(h *fakeHost) { h.links["eth0"] = LinkInfo{Name: "eth0"} }, "eth0", "down", "ip link set eth0 up"},
		{"vip bound", func(h *fakeHost) {
			h.addrs = append(h.addrs, IfAddr{Iface: "lo", Addr: netip.MustParsePrefix("198.18.0.100/32")})
		}, "eth0", "configured on lo", "ip addr del 198.18.0.100/32 dev lo"},
		{"forwarding", func(h *fakeHost) { h.sysctl["net/ipv4/conf/eth0/forwarding"] = "1" }, "eth0", "twice", "net.ipv4.ip_forward=0"},
		// IPv6 forwards by all.forwarding (an interface's own only makes
		// it act as a router) or the interface's force_forwarding.
		{"ipv6 forwarding on all", func(h *fakeHost) {
			h.sysctl["net/ipv6/conf/all/forwarding"] = "1"
			h.sysctl["net/ipv6/conf/eth0/forwarding"] = "0"
		}, "eth0", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.all.forwarding=0"},
		{"ipv6 force_forwarding", func(h *fakeHost) {
			h.sysctl["net/ipv6/conf/all/forwarding"] = "0"
			h.sysctl["net/ipv6/conf/eth0/force_forwarding"] = "1"
		}, "eth0", "twice", "net.ipv6.conf.eth0.force_forwarding=0"},
		{"ipv6 forwarding off", func(h *fakeHost) {
			h.sysctl["net/ipv6/conf/all/forwarding"] = "0"
			h.sysctl["net/ipv6/conf/eth0/forwarding"] = "1"
		}, "eth0", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := goodDirector()
			tc.edit(h)
			vips := []netip.Addr{vip}
			if strings.HasPrefix(tc.name, "ipv6 ") { // the cases about an IPv6 VIP
				vips = []netip.Addr{netip.MustParseAddr("2001:2::100")}
			}
			r := Director(h, tc.iface, vips)
			err := r.Err()
			if tc.fails == "" {
				if err != nil {
					t.Fatalf("unexpected failure: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), tc.fails) || !strings.Contains(err.Error(), tc.fix) {
				t.Fatalf("got %v, want a failure mentioning %q with fix %q", err, tc.fails, tc.fix)
			}
		})
	}
}

// TestDirectorReceiveQueues: several receive queues are said (what -io
// afxdp does there), one is not.
func TestDirectorReceiveQueues(t *testing.T) {
	for _, q := range []int{0, 1, 4} {
		h := goodDirector()
		h.links["eth0"] = LinkInfo{Name: "eth0", Up: true, MTU: 1500, MAC: mac, RxQueues: q}
		var said *Check
		r := Director(h, "eth0", []netip.Addr{vip})
		for i := range r {
			if r[i].Name == "receive queues" {
				said = &r[i]
			}
		}
		switch {
		case q <= 1 && said != nil:
			t.Errorf("%d queues: said %+v", q, *said)
		case q > 1 && (said == nil || said.Status != Pass || !strings.Contains(said.Detail, "4 in use") || !strings.Contains(said.Detail, "1 in 4")):
			t.Errorf("%d queues: %+v, want a pass saying 4 in use, about 1 in 4 through AF_XDP", q, said)
		}
	}
}

func TestDirectorRealServerOnLink(t *testing.T) {
	h := goodDirector()
	r := Director(h, "eth0", []netip.Addr{vip}, netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.19.5.5"))
	var on, off bool
	for _, c := range r {
		if strings.Contains(c.Name, "198.18.0.11") {
			on = c.Status == Pass
		}
		if strings.Contains(c.Name, "198.19.5.5") {
			off = c.Status == Warn && strings.Contains(c.Detail, "L2 segment")
		}
	}
	if !on || !off {
		t.Fatalf("on-link checks wrong: %+v", r)
	}
}

func TestReachability(t *testing.T) {
	h := goodDirector()
	ok, small, gone := netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("198.18.0.12"), netip.MustParseAddr("198.18.0.13")
	h.pingMax = map[netip.Addr]int{ok: 1500, small: 1400}
	r := Reachability(h, "eth0", []netip.Addr{ok, small, gone}, time.Second)
	err := r.Err()
	if err == nil || !strings.Contains(err.Error(), "198.18.0.12 MTU 1500: answers small pings but not 1500-byte ones") ||
		!strings.Contains(err.Error(), "198.18.0.13 reachable: no answer") || strings.Contains(err.Error(), "198.18.0.11") {
		t.Fatalf("got %v", err)
	}
}

func TestRealServer(t *testing.T) {
	dir := netip.MustParseAddr("198.18.0.2")
	tests := []struct {
		name  string
		edit  func(h *fakeHost)
		fails string
	}{
		{"good", func(*fakeHost) {}, ""},
		{"no vip", func(h *fakeHost) { h.addrs = h.addrs[:1] }, "not configured"},
		{"vip on eth0", func(h *fakeHost) { h.addrs[1].Iface = "eth0" }, "configured on eth0"},
		{"arp_ignore", func(h *fakeHost) { h.sysctl["net/ipv4/conf/all/arp_ignore"] = "0" }, "arp_ignore 1 or 2"},
		{"arp_announce", func(h *fakeHost) { h.sysctl["net/ipv4/conf/eth0/arp_announce"] = "1" }, "arp_announce 2"},
		// The kernel takes the larger of all and the interface: 3 still
		// answers for a global address on lo, 4-7 answer as 0 does, an
		// arp_announce above 2 acts as 0.
		{"arp_ignore 4 on all", func(h *fakeHost) { h.sysctl["net/ipv4/conf/all/arp_ignore"] = "4" }, "4 (the larger of all and eth0)"},
		{"arp_ignore 3", func(h *fakeHost) { h.sysctl["net/ipv4/conf/eth0/arp_ignore"] = "3" }, "arp_ignore 1 or 2"},
		{"arp_announce 3", func(h *fakeHost) { h.sysctl["net/ipv4/conf/all/arp_announce"] = "3" }, "arp_announce 2"},
		{"VIP on lo and on the LAN", func(h *fakeHost) {
			h.addrs = append(h.addrs, IfAddr{Iface: "eth0", Addr: netip.MustParsePrefix("198.18.0.100/32")})
		}, "configured on eth0"},
		{"VIP on lo with a /24", func(h *fakeHost) {
			h.addrs[1] = IfAddr{Iface: "lo", Addr: netip.MustParsePrefix("198.18.0.100/24")}
		}, "the whole prefix becomes this host's"},
		{"gateway is director", func(h *fakeHost) { h.gateways = []netip.Addr{dir} }, "default route points at director [198.18.0.2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := goodRealServer()
			tc.edit(h)
			r := RealServer(h, "eth0", []netip.Addr{vip}, netip.MustParseAddr("198.18.0.3"), dir)
			err := r.Err()
			if (tc.fails == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.fails)) {
				t.Fatalf("got %v, want failure %q", err, tc.fails)
			}
			var buf bytes.Buffer
			r.Print(&buf)
			if !strings.Contains(buf.String(), "STATUS") {
				t.Fatal("no table header")
			}
		})
	}
}

// TestRealServerGateway: the default route must exist and lead to the
// router, never to a director; without -director the router is not known,
// and any default route passes.
func TestRealServerGateway(t *testing.T) {
	router, d1, d2 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.3")
	for _, tc := range []struct {
		name      string
		gateways  []netip.Addr
		directors []netip.Addr
		want      Status
		detail    string
	}{
		{"router, directors known", []netip.Addr{router}, []netip.Addr{d1, d2}, Pass, "[198.18.0.1]"},
		{"router, directors unknown", []netip.Addr{router}, nil, Pass, "give -director"},
		{"second director", []netip.Addr{d2}, []netip.Addr{d1, d2}, Fail, "director [198.18.0.3]"},
		{"director unknown to doctor", []netip.Addr{d1}, nil, Pass, "[198.18.0.2]"},
		{"no default route", nil, []netip.Addr{d1}, Warn, "no default route"},
		{"no default route, no directors", nil, nil, Warn, "no default route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodRealServer()
			h.gateways = tc.gateways
			r := RealServer(h, "eth0", []netip.Addr{vip}, tc.directors...)
			c := r[len(r)-1]
			if !strings.HasPrefix(c.Name, "default gateway the router") || c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) {
				t.Fatalf("got %+v, want %v with %q", c, tc.want, tc.detail)
			}
			if c.Status != Pass && c.Fix != "ip route replace default via ROUTER" {
				t.Errorf("fix %q", c.Fix)
			}
		})
	}
}

// TestBGP: the checks of a director with bgp:, each outcome with its fix.
func TestBGP(t *testing.T) {
	routed := netip.MustParseAddr("198.18.2.100")
	peer := netip.MustParseAddrPort("198.18.0.1:179")
	find := func(r Report, name string) Check {
		t.Helper()
		for _, c := range r {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no check %q in %+v", name, r)
		return Check{}
	}
	for _, tc := range []struct {
		name   string
		edit   func(h *fakeHost)
		vip    netip.Addr
		peer   netip.AddrPort
		check  string
		want   Status
		detail string
		fix    string
	}{
		{"peer answers ping", func(h *fakeHost) { h.pingMax = map[netip.Addr]int{peer.Addr(): 1500} }, routed, peer,
			"BGP peer 198.18.0.1 reachable", Pass, "answers ping", ""},
		{"peer answers TCP only", func(h *fakeHost) { h.listen = map[netip.AddrPort]error{peer: nil} }, routed, peer,
			"BGP peer 198.18.0.1 reachable", Pass, "accepts TCP on its BGP port 179", ""},
		{"peer refuses", func(h *fakeHost) {
			h.listen = map[netip.AddrPort]error{peer: fmt.Errorf("dial: %w", syscall.ECONNREFUSED)}
		}, routed, peer,
			"BGP peer 198.18.0.1 reachable", Fail, "refuses TCP on port 179", "a BGP neighbor for this director's address on eth0"},
		{"peer silent", func(*fakeHost) {}, routed, netip.MustParseAddrPort("198.18.0.1:1179"),
			"BGP peer 198.18.0.1 reachable", Fail, "no answer to ping nor to TCP on port 1179", "ip neigh show 198.18.0.1"},
		{"peer on the LAN", func(*fakeHost) {}, routed, peer,
			"BGP peer 198.18.0.1 on the LAN of eth0", Pass, "inside 198.18.0.0/24", ""},
		{"peer off the LAN", func(*fakeHost) {}, routed, netip.MustParseAddrPort("198.19.9.1:179"),
			"BGP peer 198.19.9.1 on the LAN of eth0", Warn, "not inside any subnet of eth0", "peer with the router's address on the LAN of eth0"},
		{"VIP off the LAN", func(*fakeHost) {}, routed, peer,
			"VIP 198.18.2.100 off the LAN (routed by BGP)", Pass, "reached through the router's BGP routes", ""},
		{"VIP on the LAN", func(*fakeHost) {}, vip, peer,
			"VIP 198.18.0.100 off the LAN (routed by BGP)", Warn, "inside 198.18.0.0/24 of eth0: hosts on this LAN", "take the VIPs from a block outside the LAN subnets"},
		{"VIP on another interface's subnet", func(h *fakeHost) {
			h.addrs = append(h.addrs, IfAddr{Iface: "eth1", Addr: netip.MustParsePrefix("198.18.2.1/24")})
		}, routed, peer, "VIP 198.18.2.100 off the LAN (routed by BGP)", Pass, "outside the subnets of eth0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodDirector()
			tc.edit(h)
			r := BGP(h, "eth0", []netip.Addr{tc.vip}, []netip.AddrPort{tc.peer}, time.Second)
			c := find(r, tc.check)
			if c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) || (tc.want == Pass) != (c.Fix == "") {
				t.Fatalf("got %+v, want %v with %q, fix %q", c, tc.want, tc.detail, tc.fix)
			}
			if tc.want == Fail && !r.Failed() {
				t.Error("Failed() = false")
			}
			var buf bytes.Buffer
			r.Print(&buf)
			if tc.want != Pass && !strings.Contains(buf.String(), "fix:") {
				t.Errorf("no fix printed:\n%s", buf.String())
			}
		})
	}
}

// TestRealServerVIPOnDummy: a VIP on another interface than lo and the
// LAN one (a dummy) works, and is a warning; with a prefix it fails.
func TestRealServerVIPOnDummy(t *testing.T) {
	h := goodRealServer()
	h.addrs[1] = IfAddr{Iface: "dummy0", Addr: netip.MustParsePrefix("198.18.0.100/32")}
	r := RealServer(h, "eth0", []netip.Addr{vip})
	if r.Failed() {
		t.Fatalf("VIP on dummy0 failed: %v", r.Err())
	}
	warned := false
	for _, c := range r {
		warned = warned || c.Status == Warn && strings.Contains(c.Detail, "configured on dummy0")
	}
	if !warned {
		t.Fatalf("no warning for the VIP on dummy0: %+v", r)
	}
	h.addrs[1] = IfAddr{Iface: "dummy0", Addr: netip.MustParsePrefix("198.18.0.100/24")}
	if r := RealServer(h, "eth0", []netip.Addr{vip}); !r.Failed() {
		t.Fatal("VIP/24 on dummy0 passed")
	}
}

// TestVLANInterfaceFixCommands: sysctl(8) reads a dot in a dotted name as
// a separator, so a VLAN interface's dot must be written as '/'
// (net.ipv4.conf.eth0/100.forwarding); "net.ipv4.conf.eth0.100.forwarding"
// names /proc/sys/net/ipv4/conf/eth0/100/forwarding, which does not exist.
func TestVLANInterfaceFixCommands(t *testing.T) {
	d := goodDirector()
	d.links["eth0.100"] = LinkInfo{Name: "eth0.100", Up: true, MTU: 1500, MAC: mac}
	d.addrs = append(d.addrs, IfAddr{Iface: "eth0.100", Addr: netip.MustParsePrefix("198.18.1.2/24")})
	d.sysctl["net/ipv4/conf/eth0.100/forwarding"] = "1"
	d.sysctl["net/ipv4/conf/eth0.100/send_redirects"] = "1"
	r := Director(d, "eth0.100", []netip.Addr{vip})
	var fixes []string
	for _, c := range r {
		fixes = append(fixes, c.Fix)
	}
	all := strings.Join(fixes, "\n")
	for _, want := range []string{"net.ipv4.conf.eth0/100.forwarding=0", "net.ipv4.conf.eth0/100.send_redirects=0"} {
		if !strings.Contains(all, want) {
			t.Errorf("director fixes lack %q:\n%s", want, all)
		}
	}

	rs := goodRealServer()
	rs.links["eth0.100"] = LinkInfo{Name: "eth0.100", Up: true, MTU: 1500, MAC: mac}
	rs.sysctl["net/ipv4/conf/all/arp_ignore"] = "0"
	rs.sysctl["net/ipv4/conf/eth0.100/arp_ignore"] = "0"
	rs.sysctl["net/ipv4/conf/eth0.100/arp_announce"] = "2"
	err := RealServer(rs, "eth0.100", []netip.Addr{vip}).Err()
	if err == nil || !strings.Contains(err.Error(), "net.ipv4.conf.eth0/100.arp_ignore=1") {
		t.Errorf("real server fix: %v, want net.ipv4.conf.eth0/100.arp_ignore=1", err)
	}
}

// TestRealServerVIPTwice: the VIP as a host route and, beside it, with a
// prefix (on lo, or on a dummy) claims the whole prefix all the same: every
// place the VIP is counts, not only the first one listed.
func TestRealServerVIPTwice(t *testing.T) {
	for _, extra := range []IfAddr{
		{Iface: "lo", Addr: netip.MustParsePrefix("198.18.0.100/24")},
		{Iface: "dummy0", Addr: netip.MustParsePrefix("198.18.0.100/24")},
	} {
		h := goodRealServer() // 198.18.0.100/32 on lo
		h.addrs = append(h.addrs, extra)
		r := RealServer(h, "eth0", []netip.Addr{vip})
		if err := r.Err(); err == nil || !strings.Contains(err.Error(), "configured as "+extra.Addr.String()+" on "+extra.Iface) {
			t.Errorf("VIP/32 on lo and %s on %s: %v, want a failure naming the prefix", extra.Addr, extra.Iface, err)
		}
		// The host route is on lo already: adding it again would fail.
		for _, c := range r {
			if c.Status == Fail && c.Fix != "ip addr del "+extra.Addr.String()+" dev "+extra.Iface {
				t.Errorf("fix %q, want only the prefix removed", c.Fix)
			}
		}
	}
}

// TestReviewFindings: cases a second review found, each failing before.
func TestReviewFindings(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:2::100")
	find := func(r Report, prefix string) Check {
		t.Helper()
		for _, c := range r {
			if strings.HasPrefix(c.Name, prefix) {
				return c
			}
		}
		t.Fatalf("no check %q in %+v", prefix, r)
		return Check{}
	}
	for _, tc := range []struct {
		name   string
		edit   func(h *fakeHost)
		vips   []netip.Addr
		check  string
		want   Status
		detail string
		fix    string // "" = any
	}{
		// A default route of the other family routes none of the VIP's
		// replies.
		{"IPv4 VIP, IPv6 default route only", func(h *fakeHost) { h.gateways = []netip.Addr{netip.MustParseAddr("fe80::1")} },
			[]netip.Addr{vip}, "default gateway", Warn, "no default route for IPv4", "ip route replace default via ROUTER"},
		{"IPv6 VIP, IPv4 default route only", func(h *fakeHost) {
			h.addrs = append(h.addrs, IfAddr{Iface: "lo", Addr: netip.MustParsePrefix("2001:2::100/128")})
		}, []netip.Addr{vip6}, "default gateway", Warn, "no default route for IPv6", "ip -6 route replace default via ROUTER"},
		{"both VIPs, both default routes", func(h *fakeHost) {
			h.addrs = append(h.addrs, IfAddr{Iface: "lo", Addr: netip.MustParsePrefix("2001:2::100/128")})
			h.gateways = append(h.gateways, netip.MustParseAddr("fe80::1"))
		}, []netip.Addr{vip, vip6}, "default gateway", Pass, "fe80::1", ""},
		// drlb realserver up without --vip is a usage error.
		{"arp fix runnable", func(h *fakeHost) { h.sysctl["net/ipv4/conf/all/arp_ignore"] = "0" },
			[]netip.Addr{vip}, "arp_ignore", Fail, "0 (the larger", "(or: drlb realserver up --vip 198.18.0.100 --iface eth0)"},
		// all's 1 says nothing when eth0's (which could be 4) is unread.
		{"arp_ignore of the interface unreadable", func(h *fakeHost) { delete(h.sysctl, "net/ipv4/conf/eth0/arp_ignore") },
			[]netip.Addr{vip}, "arp_ignore", Fail, "unreadable (net.ipv4.conf.eth0.arp_ignore)", "net.ipv4.conf.eth0.arp_ignore=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := goodRealServer()
			tc.edit(h)
			c := find(RealServer(h, "eth0", tc.vips), tc.check)
			if c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("got %+v, want %v with %q, fix %q", c, tc.want, tc.detail, tc.fix)
			}
		})
	}

	// The VIP on two interfaces of the director: the fix removes both.
	h := goodDirector()
	h.addrs = append(h.addrs, IfAddr{Iface: "lo", Addr: netip.MustParsePrefix("198.18.0.100/32")},
		IfAddr{Iface: "eth0", Addr: netip.MustParsePrefix("198.18.0.100/24")})
	c := find(Director(h, "eth0", []netip.Addr{vip}), "VIP 198.18.0.100 not on the director")
	if want := "ip addr del 198.18.0.100/32 dev lo; ip addr del 198.18.0.100/24 dev eth0"; c.Status != Fail || c.Fix != want || !strings.Contains(c.Detail, "lo, eth0") {
		t.Fatalf("got %+v, want a failure with fix %q", c, want)
	}
}

// TestInterfaceCarrier: an interface that is up without carrier passes no
// frame; it was reported "up" (PASS). A warning, not a failure, so that
// drlb run still starts on a link that comes up late.
func TestInterfaceCarrier(t *testing.T) {
	for _, tc := range []struct {
		name   string
		link   LinkInfo
		want   Status
		detail string
	}{
		{"up with carrier", LinkInfo{Name: "eth0", Up: true, MTU: 1500, MAC: mac}, Pass, "up, MAC"},
		{"up without carrier", LinkInfo{Name: "eth0", Up: true, NoCarrier: true, MTU: 1500, MAC: mac}, Warn, "NO CARRIER"},
		{"down", LinkInfo{Name: "eth0", MTU: 1500, MAC: mac}, Fail, "down"},
	} {
		for role, check := range map[string]func(h *fakeHost) Report{
			"director":   func(h *fakeHost) Report { return Director(h, "eth0", []netip.Addr{vip}) },
			"realserver": func(h *fakeHost) Report { return RealServer(h, "eth0", []netip.Addr{vip}) },
		} {
			t.Run(tc.name+"/"+role, func(t *testing.T) {
				h := goodDirector()
				if role == "realserver" {
					h = goodRealServer()
				}
				h.links["eth0"] = tc.link
				r := check(h)
				c := r[0]
				if c.Name != "interface eth0" || c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) {
					t.Fatalf("got %+v, want %v with %q", c, tc.want, tc.detail)
				}
				// Only a down link fails the whole report (drlb run refuses).
				if r.Failed() != (tc.want == Fail) {
					t.Errorf("report failed: %v\n%+v", r.Failed(), r)
				}
			})
		}
	}
}

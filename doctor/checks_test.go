package doctor

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := goodDirector()
			tc.edit(h)
			r := Director(h, tc.iface, []netip.Addr{vip})
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
		{"arp_ignore", func(h *fakeHost) { h.sysctl["net/ipv4/conf/all/arp_ignore"] = "0" }, "arp_ignore >= 1"},
		{"arp_announce", func(h *fakeHost) { h.sysctl["net/ipv4/conf/eth0/arp_announce"] = "1" }, "arp_announce >= 2"},
		{"gateway is director", func(h *fakeHost) { h.gateways = []netip.Addr{dir} }, "default route points at the director"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := goodRealServer()
			tc.edit(h)
			r := RealServer(h, "eth0", []netip.Addr{vip}, dir)
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

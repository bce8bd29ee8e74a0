package doctor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Host is the view of the machine the checks read. The real one is Linux
// (netlink and /proc/sys); tests substitute their own.
type Host interface {
	// Sysctl reads a value under /proc/sys, e.g. "net/ipv4/ip_forward".
	Sysctl(path string) (string, error)
	// Link returns an interface's state.
	Link(name string) (LinkInfo, error)
	// Addrs lists every address on every interface, with its interface.
	Addrs() ([]IfAddr, error)
	// DefaultGateways lists the default routes' gateways.
	DefaultGateways() ([]netip.Addr, error)
	// Offloads reports the interface's offload features (name -> on).
	Offloads(name string) (map[string]bool, error)
	// Ping sends one echo of size bytes (IP packet, don't fragment) and
	// reports whether it was answered within timeout.
	Ping(addr netip.Addr, size int, timeout time.Duration) (bool, error)
}

// LinkInfo is an interface's state.
type LinkInfo struct {
	Name string
	Up   bool
	MTU  int
	MAC  net.HardwareAddr
}

// IfAddr is an address configured on an interface.
type IfAddr struct {
	Iface string
	Addr  netip.Prefix
}

// ErrNoInterface is returned by Host.Link for a missing interface.
var ErrNoInterface = errors.New("no such interface")

// System is the Host of the running machine (in the caller's network
// namespace).
type System struct{}

func (System) Sysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/proc/sys", path))
	return strings.TrimSpace(string(b)), err
}

func (System) Link(name string) (LinkInfo, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return LinkInfo{}, fmt.Errorf("%w %q", ErrNoInterface, name)
		}
		return LinkInfo{}, err
	}
	a := l.Attrs()
	return LinkInfo{Name: a.Name, Up: a.Flags&net.FlagUp != 0, MTU: a.MTU, MAC: a.HardwareAddr}, nil
}

func (System) Addrs() ([]IfAddr, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []IfAddr
	for _, l := range links {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ones, _ := a.Mask.Size()
			out = append(out, IfAddr{Iface: l.Attrs().Name, Addr: netip.PrefixFrom(ip.Unmap(), ones)})
		}
	}
	return out, nil
}

func (System) DefaultGateways() ([]netip.Addr, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			if gw, ok := netip.AddrFromSlice(r.Gw); ok {
				out = append(out, gw.Unmap())
			}
		}
	}
	return out, nil
}

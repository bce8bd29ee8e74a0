package doctor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/drlb/drlb/internal/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

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
	q, _ := ethtool.RxQueues(name) // 0 where the driver reports no channels
	return LinkInfo{Name: a.Name, Up: a.Flags&net.FlagUp != 0, NoCarrier: a.RawFlags&unix.IFF_LOWER_UP == 0,
		MTU: a.MTU, MAC: a.HardwareAddr, RxQueues: q}, nil
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
	return defaultGateways(routes), nil
}

// defaultGateways picks the default routes' gateways. A default route is a
// /0: 0.0.0.0/1 also has an unspecified address (a VPN's half of the
// address space) and is not one. An ECMP default route has no Gw of its
// own but one per next hop in MultiPath: skipping it would report "no
// default route", and miss a director among the next hops.
func defaultGateways(routes []netlink.Route) []netip.Addr {
	var out []netip.Addr
	add := func(ip net.IP) {
		if gw, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, gw.Unmap())
		}
	}
	for _, r := range routes {
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones != 0 || !r.Dst.IP.IsUnspecified() {
				continue
			}
		}
		if r.Gw != nil {
			add(r.Gw)
		}
		for _, nh := range r.MultiPath {
			if nh != nil && nh.Gw != nil {
				add(nh.Gw)
			}
		}
	}
	return out
}

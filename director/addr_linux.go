package director

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

// ownAddress returns the interface's first IPv4 address (v4) or its IPv6
// link-local address (!v4): the sources of ARP requests and solicitations.
func ownAddress(iface string, v4 bool) (netip.Addr, bool) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return netip.Addr{}, false
	}
	fam := netlink.FAMILY_V4
	if !v4 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if v4 || ip.IsLinkLocalUnicast() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// ifacePrefixes returns the interface's addresses of one family with
// their prefixes, in the kernel's order.
func ifacePrefixes(iface string, v4 bool) []netip.Prefix {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return nil
	}
	fam := netlink.FAMILY_V4
	if !v4 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil {
			continue
		}
		bits, _ := a.IPNet.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}

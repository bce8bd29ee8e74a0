package director

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unfit are the address flags that keep an address from being a next hop.
const unfit = unix.IFA_F_TENTATIVE | unix.IFA_F_DADFAILED | unix.IFA_F_DEPRECATED | unix.IFA_F_TEMPORARY

// ifaceAddrs lists the interface's addresses of one family (v4 or IPv6),
// in the kernel's order; none if the interface or its list cannot be read.
func ifaceAddrs(iface string, v4 bool) []netlink.Addr {
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
	return addrs
}

// ownAddress returns the interface's first IPv4 address (v4) or its IPv6
// link-local address (!v4): the sources of ARP requests and solicitations.
func ownAddress(iface string, v4 bool) (netip.Addr, bool) {
	for _, a := range ifaceAddrs(iface, v4) {
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
// their prefixes, in the kernel's order, leaving out those not fit to be
// a next hop: tentative (duplicate address detection not done), failed
// it, deprecated, and temporary (privacy) IPv6 addresses.
func ifacePrefixes(iface string, v4 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range ifaceAddrs(iface, v4) {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || a.IPNet == nil || a.Flags&unfit != 0 {
			continue
		}
		bits, _ := a.IPNet.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}

// interfaceIPv4 lists the interface's IPv4 addresses, in the kernel's
// order (none if it cannot be read).
func interfaceIPv4(iface string) []netip.Addr {
	var out []netip.Addr
	for _, a := range ifaceAddrs(iface, true) {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out
}

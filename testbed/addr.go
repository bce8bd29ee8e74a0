package testbed

import (
	"net"
	"net/netip"
)

// The lab's address plan (ARCHITECTURE.md#lab-addresses). Prefix lengths: /24 and /64.
var (
	vip4 = netip.MustParseAddr("198.18.0.100")
	vip6 = netip.MustParseAddr("2001:2::100")
	// routedVIP4 and routedVIP6 are off the LAN (Options.RoutedVIP).
	routedVIP4 = netip.MustParseAddr("198.18.2.100")
	routedVIP6 = netip.MustParseAddr("2001:2:0:2::100")
)

const (
	lanBits4    = 24
	lanBits6    = 64
	lanIface    = "eth0" // every host's LAN-facing (or only) interface
	uplinkIface = "eth1" // the router's client-facing interface
	bridgeName  = "br0"
)

// lanHost returns the LAN addresses for the host whose last IPv4 octet is
// n: 198.18.0.n and 2001:2::<n as hex digits>, so .11 pairs with ::11.
func lanHost(n byte) (netip.Addr, netip.Addr) {
	v6 := [16]byte{0x20, 0x01, 0, 0x02}
	v6[14], v6[15] = bcd(n)
	return netip.AddrFrom4([4]byte{198, 18, 0, n}), netip.AddrFrom16(v6)
}

// clientLinkHost does the same on the client link 198.18.1.0/24, 2001:2:0:1::/64.
func clientLinkHost(n byte) (netip.Addr, netip.Addr) {
	v6 := [16]byte{0x20, 0x01, 0, 0x02, 0, 0, 0, 0x01}
	v6[14], v6[15] = bcd(n)
	return netip.AddrFrom4([4]byte{198, 18, 1, n}), netip.AddrFrom16(v6)
}

// bcd writes a decimal 0..99 as two hex digits (11 -> 0x11) and 100..255
// as 0x01,0xNN-style "1NN" (100 -> 0x0100) so IPv6 addresses read like the
// IPv4 ones.
func bcd(n byte) (byte, byte) {
	d := int(n)
	return byte(d / 100), byte((d/10%10)<<4 | d%10)
}

// macFor derives a locally administered MAC from an IPv4 address, with a
// side byte to tell the router's two interfaces apart:
// 198.18.0.11 -> 02:00:c6:12:00:0b. Readable in tcpdump, unique per lab.
func macFor(side byte, a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, side, b[0], b[1], b[2], b[3]}
}

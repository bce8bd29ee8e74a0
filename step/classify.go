package step

import "github.com/drlb/drlb/internal/wire"

// class sorts received frames for the neighbor layer.
type class uint8

const (
	other    class = iota // IPv4, IPv6 other than ICMPv6, anything else
	arpFrame              // ARP: the neighbor layer only, never forwarded
	icmp6                 // ICMPv6 without extension headers: neighbor discovery, and ICMPv6 errors the forwarder may pass on
)

// classify looks at the EtherType behind any VLAN tags and, for IPv6, at
// the next header: neighbor discovery messages carry no extension headers
// (RFC 4861 accepts them, but no stack sends them), so a next header of 58
// is all the responder and resolver need to see.
func classify(b []byte) class {
	et, off, ok := wire.EtherType(b)
	if !ok {
		return other
	}
	switch et {
	case wire.EtherTypeARP:
		return arpFrame
	case wire.EtherTypeIPv6:
		if len(b) >= off+40 && b[off+6] == 58 {
			return icmp6
		}
	}
	return other
}

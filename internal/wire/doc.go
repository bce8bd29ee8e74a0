// Package wire is drlb's one copy of the packet-format knowledge that
// several packages need: where an Ethernet frame's payload starts behind
// its VLAN tags (802.1Q, and 802.1ad QinQ outer tags), the Internet
// checksum (RFC 1071) with its IPv4/IPv6 pseudo-headers, and the walk over
// IPv6 extension headers to the upper-layer protocol.
//
// The forwarder, the ARP/NDP responder, the lab walkthrough and the frame
// describers all call these functions, so a frame is read the same way
// everywhere: a double-tagged frame the forwarder forwards is one the
// responder answers and the listings describe.
//
// Everything here works on byte slices in place and allocates nothing,
// because the forwarder and the responder call it for every frame.
package wire

import "errors"

// ErrTruncated: a header runs past the end of the packet or frame.
// WalkIPv6 returns it, and decoders built on this package return it for
// their own headers too, so that drlb has one truncation error.
var ErrTruncated = errors.New("wire: truncated")

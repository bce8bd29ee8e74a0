package forwarder

import (
	"encoding/binary"

	"github.com/drlb/drlb/internal/wire"
)

// completeChecksum finishes an L4 checksum left partial by a sender that
// relied on offload (Linux CHECKSUM_PARTIAL): the field at start+off holds
// the folded pseudo-header sum, and the device is expected to sum
// frame[start:end] and store the complement there. udp says a zero result
// is sent as 0xffff (RFC 768).
func completeChecksum(frame []byte, start, off, end int, udp bool) bool {
	if start < 0 || end > len(frame) || start+off+2 > end || off < 0 {
		return false
	}
	binary.BigEndian.PutUint16(frame[start+off:], checksumOf(frame[start:end], udp))
	return true
}

// checksumOf is the Internet checksum of b (which holds the pseudo-header
// sum in its checksum field, as CHECKSUM_PARTIAL leaves it); udp sends a
// zero result as 0xffff.
func checksumOf(b []byte, udp bool) uint16 {
	cs := wire.Fold(wire.Sum(b, 0))
	if cs == 0 && udp {
		cs = 0xffff
	}
	return cs
}

// HasPartialChecksum reports whether frame's TCP or UDP checksum field
// holds exactly the folded pseudo-header sum that a sender relying on
// checksum offload leaves for its NIC (what tcpdump on such a sender shows
// as "incorrect checksum"). A replay uses it to flag such frames as partial,
// as the kernel's TP_STATUS_CSUMNOTREADY does on a live socket; a random
// wrong checksum matches by chance once in 65536.
func HasPartialChecksum(frame []byte) bool {
	var p packet
	if decode(frame, &p) != nil || p.l4 == 0 || p.frag {
		return false
	}
	var field int
	switch p.proto {
	case protoTCP:
		field = p.l4 + 16
	case protoUDP:
		field = p.l4 + 6
	default:
		return false
	}
	// The partial value is the folded sum itself, not its complement.
	pseudo := ^wire.Fold(wire.PseudoHeaderSum(p.src, p.dst, p.proto, p.l3End-p.l4))
	got := binary.BigEndian.Uint16(frame[field:])
	if got != pseudo {
		return false
	}
	// A correct checksum can equal the pseudo-header sum only when the
	// segment's own bytes sum to that same value; make sure it is wrong:
	// completing it must change it.
	return checksumOf(frame[p.l4:p.l3End], p.proto == protoUDP) != got
}

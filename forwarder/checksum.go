package forwarder

import "encoding/binary"

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
	cs := ^uint16(fold(sumBytes(b, 0)))
	if cs == 0 && udp {
		cs = 0xffff
	}
	return cs
}

// sumBytes adds b to sum as big-endian 16-bit words (an odd last byte is
// padded with zero): the one's-complement sum, not yet folded. It adds
// 32-bit words where it can; folding makes that the same sum.
func sumBytes(b []byte, sum uint64) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

// fold reduces a one's-complement sum to 16 bits.
func fold(sum uint64) uint64 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return sum
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
	addrs := frame[p.l3+12 : p.l3+20]
	if p.family == 6 {
		addrs = frame[p.l3+8 : p.l3+40]
	}
	pseudo := fold(sumBytes(addrs, uint64(p.proto)+uint64(p.l3End-p.l4)))
	got := binary.BigEndian.Uint16(frame[field:])
	if got != uint16(pseudo) {
		return false
	}
	// A correct checksum can equal the pseudo-header sum only when the
	// segment's own bytes sum to that same value; make sure it is wrong:
	// completing it must change it.
	return checksumOf(frame[p.l4:p.l3End], p.proto == protoUDP) != got
}

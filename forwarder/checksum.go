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
	var sum uint64
	b := frame[start:end]
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
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	cs := ^uint16(sum)
	if cs == 0 && udp {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(frame[start+off:], cs)
	return true
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
	var sum uint64
	if p.family == 4 {
		sum = sum16(frame[p.l3+12 : p.l3+20])
	} else {
		sum = sum16(frame[p.l3+8 : p.l3+40])
	}
	sum += uint64(p.proto) + uint64(p.l3End-p.l4)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	got := binary.BigEndian.Uint16(frame[field:])
	if got != uint16(sum) {
		return false
	}
	// A correct checksum can equal the pseudo-header sum only when the
	// segment's own bytes sum to that same value; make sure it is wrong.
	full := append([]byte(nil), frame[:p.l3End]...)
	completeChecksum(full, p.l4, field-p.l4, p.l3End, p.proto == protoUDP)
	return binary.BigEndian.Uint16(full[field:]) != got
}

func sum16(b []byte) uint64 {
	var s uint64
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(binary.BigEndian.Uint16(b[i:]))
	}
	return s
}

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

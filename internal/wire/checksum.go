package wire

import (
	"encoding/binary"
	"net/netip"
)

// The Internet checksum (RFC 1071) in pieces, so that callers can sum a
// pseudo-header, headers they have just written and a payload without
// copying them together:
//
//	field := Fold(Sum(msg, PseudoHeaderSum(src, dst, proto, len(msg))))
//
// computes the value to store in a zeroed checksum field; over a message
// whose field is filled in, the same expression is 0 when it is right.

// Sum adds b to the running one's-complement sum initial, as big-endian
// 16-bit words; an odd last byte is padded with a zero byte, so only the
// last piece of a message may have an odd length. The result is not folded
// to 16 bits: pass it on to the next Sum or to Fold.
func Sum(b []byte, initial uint32) uint32 {
	// Adding 32-bit words into 64 bits is the same one's-complement sum
	// as adding 16-bit words (2^16 ≡ 1 modulo 0xffff) at half the loads;
	// 64 bits cannot overflow for any frame.
	s := uint64(initial)
	for len(b) >= 8 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	// Fold to 32 bits with the end-around carry (2^32 ≡ 1 as well).
	for s>>32 != 0 {
		s = s&0xffffffff + s>>32
	}
	return uint32(s)
}

// Fold folds a running sum to 16 bits with the end-around carry and
// complements it: the value to store in a checksum field (or 0 when
// verifying a message whose field is right). A UDP sender stores a zero
// result as 0xffff (RFC 768); that is the caller's business.
func Fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// PseudoHeaderSum is the running sum of the pseudo-header that TCP, UDP
// and ICMPv6 checksums cover: source and destination address, protocol and
// upper-layer length (RFC 793/768 for IPv4, RFC 8200 section 8.1 for
// IPv6). Addresses that are IPv4 (Is4) give the IPv4 pseudo-header, others
// the IPv6 one. It takes netip.Addr values because decoders already hold
// them, and As4/As16 copy into arrays on the stack: no allocation.
func PseudoHeaderSum(src, dst netip.Addr, proto uint8, length int) uint32 {
	// The IPv6 length is 32 bits; adding both halves covers both formats.
	s := uint32(proto) + uint32(length>>16) + uint32(length&0xffff)
	if src.Is4() && dst.Is4() {
		a, b := src.As4(), dst.As4()
		return Sum(b[:], Sum(a[:], s))
	}
	a, b := src.As16(), dst.As16()
	return Sum(b[:], Sum(a[:], s))
}

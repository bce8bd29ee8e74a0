package link

import (
	"encoding/binary"
	"net/netip"
)

// Frame builders shared by the tests.

var (
	testDst = []byte{0x02, 0, 0, 0, 0, 0xd0}
	testSrc = []byte{0x02, 0, 0, 0, 0, 0xa0}
)

// ether builds an Ethernet frame; tci >= 0 adds an 802.1Q tag.
func ether(tci int, etherType uint16, payload []byte) []byte {
	b := append([]byte(nil), testDst...)
	b = append(b, testSrc...)
	if tci >= 0 {
		b = binary.BigEndian.AppendUint16(b, etherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, uint16(tci))
	}
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// ipv4 builds an IPv4 header (no options, checksum left 0) with payload.
func ipv4(proto uint8, src, dst netip.Addr, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	return append(h, payload...)
}

// ipv6 builds an IPv6 header with payload.
func ipv6(next uint8, src, dst netip.Addr, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 255
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// arpRequest is an ARP who-has payload.
func arpRequest(sender, target netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	b = append(b, testSrc...)
	s, t := sender.As4(), target.As4()
	b = append(b, s[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, t[:]...)
}

// solicitedNode returns ff02::1:ffXX:XXXX for a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

package forwarder

import (
	"encoding/binary"

	"github.com/drlb/drlb/internal/wire"
)

// TooBigMaxLen is the largest frame TooBig writes: an IPv6 packet of the
// IPv6 minimum MTU behind Ethernet and two VLAN tags (QinQ).
const TooBigMaxLen = wire.MaxEthernetLen + 1280

// TooBig writes into out the ICMP error that tells the sender of frame (a
// packet Process refused with ReasonTooBig) to use smaller packets:
// "fragmentation needed" with the next-hop MTU for IPv4, "packet too big"
// for IPv6, sent from the VIP the packet was addressed to, back to the MAC
// it came from, with the frame's VLAN tags. It returns the frame's length,
// or 0 if frame is not such a packet or out is too short. An ICMP error
// and a non-initial fragment are never answered (RFC 1122 3.2.2, RFC 4443
// 2.4(e); IPVS's ensure_mtu_is_adequate skips both): they are dropped,
// counted as too-big, with no reply.
func (f *Forwarder) TooBig(frame, out []byte) int {
	var p packet
	if decode(frame, &p) != nil || p.icmpErr || p.frag && !p.fragFirst || f.mtu <= 0 || len(out) < TooBigMaxLen {
		return 0
	}
	// Ethernet: back where it came from, from the MAC it was sent to.
	copy(out[0:6], frame[6:12])
	copy(out[6:12], frame[0:6])
	copy(out[12:p.l3], frame[12:p.l3]) // the VLAN tags, if any, and the ethertype
	ip := out[p.l3:]
	orig := frame[p.l3:p.l3End]
	if p.family == 4 {
		// RFC 1812 4.3.2.3: quote as much as fits in 576 bytes.
		quote := min(len(orig), 576-20-8)
		total := 20 + 8 + quote
		ip[0], ip[1] = 0x45, 0
		binary.BigEndian.PutUint16(ip[2:], uint16(total))
		binary.BigEndian.PutUint32(ip[4:], 0x4000) // id 0, DF
		ip[8], ip[9] = 64, protoICMP
		ip[10], ip[11] = 0, 0
		copy(ip[12:16], orig[16:20]) // from the VIP
		copy(ip[16:20], orig[12:16]) // to the client
		binary.BigEndian.PutUint16(ip[10:], wire.Fold(wire.Sum(ip[:20], 0)))
		icmp := ip[20:]
		icmp[0], icmp[1] = 3, 4 // destination unreachable, fragmentation needed
		binary.BigEndian.PutUint32(icmp[2:], 0)
		binary.BigEndian.PutUint16(icmp[6:], uint16(f.mtu))
		copy(icmp[8:], orig[:quote])
		binary.BigEndian.PutUint16(icmp[2:], wire.Fold(wire.Sum(icmp[:8+quote], 0)))
		return p.l3 + total
	}
	// IPv6: the whole error must fit in the minimum MTU, 1280.
	quote := min(len(orig), 1280-40-8)
	plen := 8 + quote
	ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(ip[4:], uint16(plen))
	ip[6], ip[7] = protoICMPv6, 64
	copy(ip[8:24], orig[24:40]) // from the VIP
	copy(ip[24:40], orig[8:24]) // to the client
	icmp := ip[40:]
	icmp[0], icmp[1] = 2, 0 // packet too big
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint32(icmp[4:], uint32(f.mtu))
	copy(icmp[8:], orig[:quote])
	// Checksum over the pseudo-header (from the VIP to the client) and the message.
	sum := wire.PseudoHeaderSum(p.dst, p.src, protoICMPv6, plen)
	binary.BigEndian.PutUint16(icmp[2:], wire.Fold(wire.Sum(icmp[:plen], sum)))
	return p.l3 + 40 + plen
}

package forwarder

import (
	"encoding/binary"

	"github.com/drlb/drlb/internal/wire"
)

// ResetMaxLen is the largest frame Reset writes: a TCP reset in IPv6
// behind Ethernet and two VLAN tags.
const ResetMaxLen = 14 + 8 + 40 + 20

// Reset writes into out a TCP reset that ends the client's side of the
// connection frame belongs to (a packet Process refused with
// ReasonServerGone: its real server was removed, failed, or drained past
// its timeout), sent from the VIP back to the MAC it came from, with the
// frame's VLAN tags. It returns the frame's length, or 0 when frame is not
// a TCP segment that may be answered (a reset is never answered) or out is
// too short.
//
// Why: IPVS drops such a packet and forgets the connection
// (expire_nodest_conn); the client's retransmission then finds no
// connection and reaches the director's own stack, which holds the VIP
// and answers with a reset: the client fails fast instead of hanging for
// minutes. drlb's kernel does not hold the VIP (ARCHITECTURE.md#packet-flow),
// so drlb answers for it, at once.
func (f *Forwarder) Reset(frame, out []byte) int {
	var p packet
	if decode(frame, &p) != nil || p.proto != protoTCP || p.l4 == 0 || p.icmpErr || p.tcpFlags&tcpRST != 0 {
		return 0
	}
	hdr := 20
	if p.family == 6 {
		hdr = 40
	}
	n := p.l3 + hdr + 20
	if len(out) < n || n > ResetMaxLen {
		return 0
	}
	tcp := frame[p.l4:p.l3End]
	// RFC 9293 3.10.7.1: answer the ACK it carries, or acknowledge what it
	// sent (data, SYN and FIN each count).
	var seq, ack uint32
	flags := byte(tcpRST)
	if p.tcpFlags&tcpACK != 0 {
		seq = binary.BigEndian.Uint32(tcp[8:])
	} else {
		doff := int(tcp[12]>>4) * 4
		if doff > len(tcp) {
			// The header claims more than the segment holds: its
			// length, and so the ACK, is unknown (the sum wrapped).
			return 0
		}
		seglen := uint32(len(tcp) - doff)
		if p.tcpFlags&tcpSYN != 0 {
			seglen++
		}
		if p.tcpFlags&tcpFIN != 0 {
			seglen++
		}
		ack = binary.BigEndian.Uint32(tcp[4:]) + seglen
		flags |= tcpACK
	}
	copy(out[0:6], frame[6:12])
	copy(out[6:12], frame[0:6])
	copy(out[12:p.l3], frame[12:p.l3]) // ethertype, and the VLAN tags if any
	ip := out[p.l3:n]
	orig := frame[p.l3:]
	var sum uint32
	if p.family == 4 {
		ip[0], ip[1] = 0x45, 0
		binary.BigEndian.PutUint16(ip[2:], uint16(hdr+20))
		binary.BigEndian.PutUint32(ip[4:], 0x4000) // id 0, DF
		ip[8], ip[9] = 64, protoTCP
		ip[10], ip[11] = 0, 0
		copy(ip[12:16], orig[16:20]) // from the VIP
		copy(ip[16:20], orig[12:16]) // to the client
		binary.BigEndian.PutUint16(ip[10:], wire.Fold(wire.Sum(ip[:20], 0)))
		sum = wire.Sum(ip[12:20], 0)
	} else {
		ip[0], ip[1], ip[2], ip[3] = 0x60, 0, 0, 0
		binary.BigEndian.PutUint16(ip[4:], 20)
		ip[6], ip[7] = protoTCP, 64
		copy(ip[8:24], orig[24:40])
		copy(ip[24:40], orig[8:24])
		sum = wire.Sum(ip[8:40], 0)
	}
	r := ip[hdr:]
	copy(r[0:2], tcp[2:4]) // from the service port
	copy(r[2:4], tcp[0:2]) // to the client's
	binary.BigEndian.PutUint32(r[4:], seq)
	binary.BigEndian.PutUint32(r[8:], ack)
	r[12], r[13] = 5<<4, flags
	binary.BigEndian.PutUint16(r[14:], 0) // window
	binary.BigEndian.PutUint32(r[16:], 0) // checksum, urgent pointer
	sum += protoTCP + 20
	binary.BigEndian.PutUint16(r[16:], wire.Fold(wire.Sum(r[:20], sum)))
	return n
}

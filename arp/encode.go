package arp

import (
	"encoding/binary"

	"github.com/drlb/drlb/internal/wire"
)

// Encode writes p as an Ethernet frame into out and returns the frame's
// length, or 0 when out is too short, an address is not IPv4 or the outer
// tag's TPID is not a VLAN TPID. The frame is zero-padded to MinFrameLen.
// Encode does not allocate.
func (p *ARPPacket) Encode(out []byte) int {
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return 0
	}
	h := headerLen(&p.Ethernet)
	n := h + arpLen
	if h == 0 || len(out) < max(n, MinFrameLen) {
		return 0
	}
	off := putEthernet(out, &p.Ethernet, wire.EtherTypeARP)
	b := out[off : off+arpLen]
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], 0x0800)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], p.Op)
	copy(b[8:14], p.SenderMAC[:])
	sip, tip := p.SenderIP.As4(), p.TargetIP.As4()
	copy(b[14:18], sip[:])
	copy(b[18:24], p.TargetMAC[:])
	copy(b[24:28], tip[:])
	return pad(out, n)
}

// Encode writes p as an Ethernet frame into out, computing the IPv6
// payload length and the ICMPv6 checksum, and returns the frame's length,
// or 0 when out is too short, an address is not IPv6 or the outer tag's
// TPID is not a VLAN TPID. A solicitation carries the source link-layer
// option if HasSourceLL, an advertisement the target link-layer option if
// HasTargetLL. Encode does not allocate.
func (p *NDPPacket) Encode(out []byte) int {
	if !p.Src.Is6() || !p.Dst.Is6() || !p.Target.Is6() {
		return 0
	}
	plen := ndpLen
	var opt uint8
	var ll MAC
	switch {
	case p.Type == TypeNeighborSolicitation && p.HasSourceLL:
		opt, ll = 1, p.SourceLL
	case p.Type == TypeNeighborAdvertisement && p.HasTargetLL:
		opt, ll = 2, p.TargetLL
	}
	if opt != 0 {
		plen += optLLLen
	}
	h := headerLen(&p.Ethernet)
	n := h + ipv6Len + plen
	if h == 0 || len(out) < max(n, MinFrameLen) {
		return 0
	}
	off := putEthernet(out, &p.Ethernet, wire.EtherTypeIPv6)
	ip := out[off : off+ipv6Len]
	binary.BigEndian.PutUint32(ip[0:4], 6<<28)
	binary.BigEndian.PutUint16(ip[4:6], uint16(plen))
	ip[6], ip[7] = protoICMPv6, p.HopLimit
	src, dst := p.Src.As16(), p.Dst.As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	msg := out[off+ipv6Len : off+ipv6Len+plen]
	msg[0], msg[1], msg[2], msg[3] = p.Type, 0, 0, 0
	binary.BigEndian.PutUint32(msg[4:8], 0)
	if p.Type == TypeNeighborAdvertisement {
		msg[4] = p.Flags & (FlagRouter | FlagSolicited | FlagOverride)
	}
	t := p.Target.As16()
	copy(msg[8:24], t[:])
	if opt != 0 {
		msg[24], msg[25] = opt, 1
		copy(msg[26:32], ll[:])
	}
	binary.BigEndian.PutUint16(msg[2:4], ndpChecksum(p.Src, p.Dst, msg))
	return pad(out, n)
}

// headerLen is the length of e's link header, or 0 when its outer tag's
// TPID is none of the two a tag can have.
func headerLen(e *Ethernet) int {
	n := wire.EthernetLen
	switch e.Outer.TPID {
	case 0:
	case wire.EtherTypeQinQ, wire.EtherTypeVLAN:
		n += wire.TagLen
	default:
		return 0
	}
	if e.VLAN.Tagged {
		n += wire.TagLen
	}
	return n
}

// putEthernet writes the link header (with its tags, outer first) and
// returns the offset of the payload.
func putEthernet(out []byte, e *Ethernet, etype uint16) int {
	copy(out[0:6], e.Dst[:])
	copy(out[6:12], e.Src[:])
	off := 12
	if e.Outer.TPID != 0 {
		binary.BigEndian.PutUint16(out[off:], e.Outer.TPID)
		binary.BigEndian.PutUint16(out[off+2:], e.Outer.TCI)
		off += wire.TagLen
	}
	if e.VLAN.Tagged {
		binary.BigEndian.PutUint16(out[off:], wire.EtherTypeVLAN)
		binary.BigEndian.PutUint16(out[off+2:], e.VLAN.TCI)
		off += wire.TagLen
	}
	binary.BigEndian.PutUint16(out[off:], etype)
	return off + 2
}

// pad zeroes out[n:MinFrameLen] and returns the padded length: some
// drivers (veth, for one) send short frames as they are.
func pad(out []byte, n int) int {
	if n >= MinFrameLen {
		return n
	}
	clear(out[n:MinFrameLen])
	return MinFrameLen
}

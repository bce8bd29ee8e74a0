package arp

import "encoding/binary"

// Encode writes p as an Ethernet frame into out and returns the frame's
// length, or 0 when out is too short or an address is not IPv4. The frame
// is zero-padded to MinFrameLen. Encode does not allocate.
func (p *ARPPacket) Encode(out []byte) int {
	if !p.SenderIP.Is4() || !p.TargetIP.Is4() {
		return 0
	}
	n := headerLen(p.Ethernet.VLAN) + arpLen
	if len(out) < max(n, MinFrameLen) {
		return 0
	}
	off := putEthernet(out, &p.Ethernet, etherTypeARP)
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
// or 0 when out is too short or an address is not IPv6. A solicitation
// carries the source link-layer option if HasSourceLL, an advertisement
// the target link-layer option if HasTargetLL. Encode does not allocate.
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
	n := headerLen(p.Ethernet.VLAN) + ipv6Len + plen
	if len(out) < max(n, MinFrameLen) {
		return 0
	}
	off := putEthernet(out, &p.Ethernet, etherTypeIPv6)
	ip := out[off : off+ipv6Len]
	binary.BigEndian.PutUint32(ip[0:4], 6<<28)
	binary.BigEndian.PutUint16(ip[4:6], uint16(plen))
	ip[6], ip[7] = 58, p.HopLimit
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
	binary.BigEndian.PutUint16(msg[2:4], checksum(&p.Src, &p.Dst, msg))
	return pad(out, n)
}

func headerLen(v VLAN) int {
	if v.Tagged {
		return etherLen + vlanLen
	}
	return etherLen
}

// putEthernet writes the link header (with its tag, if any) and returns
// the offset of the payload.
func putEthernet(out []byte, e *Ethernet, etype uint16) int {
	copy(out[0:6], e.Dst[:])
	copy(out[6:12], e.Src[:])
	if e.VLAN.Tagged {
		binary.BigEndian.PutUint16(out[12:14], etherTypeVLAN)
		binary.BigEndian.PutUint16(out[14:16], e.VLAN.TCI)
		binary.BigEndian.PutUint16(out[16:18], etype)
		return etherLen + vlanLen
	}
	binary.BigEndian.PutUint16(out[12:14], etype)
	return etherLen
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

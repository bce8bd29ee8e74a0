package arp

import (
	"encoding/binary"
	"net/netip"

	"github.com/drlb/drlb/internal/wire"
)

// ParseARP decodes an Ethernet frame (untagged, with one 802.1Q or 802.1ad
// tag, or with an outer and an inner tag as wire.EtherType reads them)
// carrying an IPv4-over-Ethernet ARP message (htype 1, ptype 0x0800, hlen 6,
// plen 4, operation request or reply). Bytes after the 28-byte ARP body
// (Ethernet padding) are ignored. Errors wrap ErrTruncated, ErrNotARP or
// ErrUnsupported.
func ParseARP(frame []byte) (ARPPacket, error) {
	var p ARPPacket
	f := parseARP(frame, &p)
	return p, f.toError("arp")
}

// ParseNDP decodes an Ethernet frame (untagged, or with tags as for ParseARP)
// carrying an IPv6 packet whose payload is an ICMPv6 neighbor solicitation
// or advertisement, and validates it as RFC 4861 section 7.1.1/7.1.2 asks:
// hop limit 255, code 0, correct checksum, target not multicast, options
// of nonzero length, no link-layer option from the unspecified address,
// and so on. Errors wrap ErrTruncated, ErrNotNDP, ErrUnsupported,
// ErrBadHopLimit, ErrBadChecksum or ErrInvalid.
func ParseNDP(frame []byte) (NDPPacket, error) {
	var p NDPPacket
	f := parseNDP(frame, &p)
	return p, f.toError("ndp")
}

// parseEthernet reads the link header and returns the ethertype of the
// payload and where it starts.
func parseEthernet(frame []byte, e *Ethernet) (etype uint16, off int, f fault) {
	if len(frame) < wire.EthernetLen {
		return 0, 0, fault{ErrTruncated, "frame length", 0, uint64(len(frame))}
	}
	copy(e.Dst[:], frame[0:6])
	copy(e.Src[:], frame[6:12])
	etype, off, ok := wire.EtherType(frame)
	if !ok {
		return 0, 0, fault{ErrTruncated, "frame length", 0, uint64(len(frame))}
	}
	e.VLAN, e.Outer = VLAN{}, wire.Tag{}
	switch tags, n := wire.Tags(frame); {
	case n == 2:
		e.Outer, e.VLAN = tags[0], VLAN{Tagged: true, TCI: tags[1].TCI}
	case n == 1 && tags[0].TPID == wire.EtherTypeVLAN:
		e.VLAN = VLAN{Tagged: true, TCI: tags[0].TCI}
	case n == 1:
		e.Outer = tags[0] // an 802.1ad tag alone
	}
	if etype == wire.EtherTypeVLAN || etype == wire.EtherTypeQinQ {
		// A third tag, or an S-tag inside a C-tag: nothing we answer.
		return 0, 0, fault{ErrUnsupported, "inner ethertype (stacked VLAN tags)", off - 2, uint64(etype)}
	}
	return etype, off, fault{}
}

func parseARP(frame []byte, p *ARPPacket) fault {
	etype, off, f := parseEthernet(frame, &p.Ethernet)
	if !f.ok() {
		return f
	}
	if etype != wire.EtherTypeARP {
		return fault{ErrNotARP, "ethertype", off - 2, uint64(etype)}
	}
	if len(frame)-off < arpLen {
		return fault{ErrTruncated, "ARP body length", off, uint64(len(frame) - off)}
	}
	b := frame[off : off+arpLen]
	if v := binary.BigEndian.Uint16(b[0:2]); v != 1 {
		return fault{ErrUnsupported, "hardware type", off, uint64(v)}
	}
	if v := binary.BigEndian.Uint16(b[2:4]); v != 0x0800 {
		return fault{ErrUnsupported, "protocol type", off + 2, uint64(v)}
	}
	if b[4] != 6 {
		return fault{ErrUnsupported, "hardware address length", off + 4, uint64(b[4])}
	}
	if b[5] != 4 {
		return fault{ErrUnsupported, "protocol address length", off + 5, uint64(b[5])}
	}
	p.Op = binary.BigEndian.Uint16(b[6:8])
	if p.Op != OpRequest && p.Op != OpReply {
		return fault{ErrUnsupported, "operation", off + 6, uint64(p.Op)}
	}
	copy(p.SenderMAC[:], b[8:14])
	p.SenderIP = netip.AddrFrom4([4]byte(b[14:18]))
	copy(p.TargetMAC[:], b[18:24])
	p.TargetIP = netip.AddrFrom4([4]byte(b[24:28]))
	return fault{}
}

func parseNDP(frame []byte, p *NDPPacket) fault {
	etype, off, f := parseEthernet(frame, &p.Ethernet)
	if !f.ok() {
		return f
	}
	if etype != wire.EtherTypeIPv6 {
		return fault{ErrNotNDP, "ethertype", off - 2, uint64(etype)}
	}
	if len(frame)-off < ipv6Len {
		return fault{ErrTruncated, "IPv6 header length", off, uint64(len(frame) - off)}
	}
	ip := frame[off : off+ipv6Len]
	if v := ip[0] >> 4; v != 6 {
		return fault{ErrInvalid, "IP version", off, uint64(v)}
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	nh := ip[6]
	p.HopLimit = ip[7]
	p.Src = netip.AddrFrom16([16]byte(ip[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
	if nh != protoICMPv6 {
		// NDP messages carry no extension headers in practice; one in
		// front of ICMPv6 is a frame we do not handle, not another protocol.
		if wire.IsIPv6Extension(nh) {
			return fault{ErrUnsupported, "IPv6 extension header", off + 6, uint64(nh)}
		}
		return fault{ErrNotNDP, "IPv6 next header", off + 6, uint64(nh)}
	}
	off += ipv6Len
	if len(frame)-off < plen {
		return fault{ErrTruncated, "IPv6 payload length", off - ipv6Len + 4, uint64(plen)}
	}
	msg := frame[off : off+plen]
	if len(msg) < 4 {
		return fault{ErrTruncated, "ICMPv6 length", off, uint64(len(msg))}
	}
	p.Type = msg[0]
	if p.Type != TypeNeighborSolicitation && p.Type != TypeNeighborAdvertisement {
		return fault{ErrNotNDP, "ICMPv6 type", off, uint64(p.Type)}
	}
	if len(msg) < ndpLen {
		return fault{ErrTruncated, "ICMPv6 length", off, uint64(len(msg))}
	}
	if p.HopLimit != 255 {
		return fault{ErrBadHopLimit, "hop limit", off - ipv6Len + 7, uint64(p.HopLimit)}
	}
	if msg[1] != 0 {
		return fault{ErrInvalid, "ICMPv6 code", off + 1, uint64(msg[1])}
	}
	if ndpChecksum(p.Src, p.Dst, msg) != 0 {
		return fault{ErrBadChecksum, "ICMPv6 checksum", off + 2, uint64(binary.BigEndian.Uint16(msg[2:4]))}
	}
	p.Flags = 0
	if p.Type == TypeNeighborAdvertisement {
		p.Flags = msg[4] & (FlagRouter | FlagSolicited | FlagOverride)
	}
	p.Target = netip.AddrFrom16([16]byte(msg[8:24]))
	if p.Target.IsMulticast() {
		return fault{ErrInvalid, "target address (multicast)", off + 8, uint64(msg[8])}
	}
	if p.Src.IsMulticast() {
		return fault{ErrInvalid, "IPv6 source address (multicast)", off - ipv6Len + 8, uint64(p.Src.As16()[0])}
	}
	p.HasSourceLL, p.HasTargetLL = false, false
	p.SourceLL, p.TargetLL = MAC{}, MAC{}
	for o := ndpLen; o < len(msg); {
		if len(msg)-o < 2 {
			return fault{ErrInvalid, "option header", off + o, uint64(len(msg) - o)}
		}
		typ, n := msg[o], int(msg[o+1])*8
		if n == 0 {
			return fault{ErrInvalid, "option length", off + o + 1, 0}
		}
		if len(msg)-o < n {
			return fault{ErrInvalid, "option length (past end of message)", off + o + 1, uint64(msg[o+1])}
		}
		if typ == 1 || typ == 2 {
			if n != optLLLen {
				return fault{ErrInvalid, "link-layer address option length", off + o + 1, uint64(msg[o+1])}
			}
			if typ == 1 {
				copy(p.SourceLL[:], msg[o+2:o+8])
				p.HasSourceLL = true
			} else {
				copy(p.TargetLL[:], msg[o+2:o+8])
				p.HasTargetLL = true
			}
		}
		o += n
	}
	switch p.Type {
	case TypeNeighborSolicitation:
		// RFC 4861 7.1.1: a solicitation from the unspecified address
		// (duplicate address detection) goes to the solicited-node
		// address and carries no source link-layer option.
		p.HasTargetLL, p.TargetLL = false, MAC{} // meaningless in a solicitation
		if p.Src.IsUnspecified() {
			if p.Dst != solicitedNode(p.Target) {
				return fault{ErrInvalid, "destination of a solicitation from :: (not solicited-node)", off - ipv6Len + 24, uint64(p.Dst.As16()[0])}
			}
			if p.HasSourceLL {
				return fault{ErrInvalid, "source link-layer option from ::", off, 1}
			}
		}
	case TypeNeighborAdvertisement:
		p.HasSourceLL, p.SourceLL = false, MAC{}
		// RFC 4861 7.1.2: a multicast advertisement is never solicited.
		if p.Dst.IsMulticast() && p.Flags&FlagSolicited != 0 {
			return fault{ErrInvalid, "solicited flag on a multicast advertisement", off + 4, uint64(msg[4])}
		}
	}
	return fault{}
}

// ndpChecksum is the ICMPv6 checksum over the IPv6 pseudo-header and msg.
// Over a message with its checksum field filled in, it returns 0 when the
// checksum is right; over one with a zero field, the value to store.
func ndpChecksum(src, dst netip.Addr, msg []byte) uint16 {
	return wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(src, dst, protoICMPv6, len(msg))))
}

package forwarder

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/drlb/drlb/internal/wire"
)

// IP protocol numbers the decoder knows.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoAH     = 51
	protoICMPv6 = 58
)

// TCP flag bits in byte 13 of the TCP header.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Decode errors. A frame that fails to decode is malformed: wire.ErrTruncated
// (a header runs past the frame or packet) or errBadHeader.
var errBadHeader = errors.New("bad header")

// flow is the 5-tuple of a packet, client side first.
type flow struct {
	proto   uint8
	src     netip.Addr
	dst     netip.Addr
	srcPort uint16
	dstPort uint16
}

// packet is what decode learns about a frame. Offsets index the frame.
type packet struct {
	l3     int // offset of the IP header, behind any VLAN tags
	l3End  int // end of the IP packet (Ethernet padding excluded)
	family uint8

	flow
	l4       int // offset of the L4 header; 0 when there is none (non-first fragment)
	tcpFlags uint8

	// Fragments: frag is set for any fragment; fragFirst for offset 0.
	frag      bool
	fragFirst bool
	fragID    uint32

	// ICMP errors: icmpErr is set when the packet is an ICMP/ICMPv6 error
	// whose quoted packet decoded; inner is the quoted flow turned around
	// (client first), so it is the key of the connection it belongs to.
	icmpErr bool
	inner   flow
}

// decode parses frame into p. It returns errNotIP (not an error for the
// director: the frame is simply not IP) or a malformed-frame error.
func decode(frame []byte, p *packet) error {
	*p = packet{}
	et, off, ok := wire.EtherType(frame)
	if !ok {
		return wire.ErrTruncated
	}
	p.l3 = off
	switch et {
	case wire.EtherTypeIPv4:
		p.family = 4
		return decodeIPv4(frame, off, p)
	case wire.EtherTypeIPv6:
		p.family = 6
		return decodeIPv6(frame, off, p)
	}
	return errNotIP
}

var errNotIP = errors.New("not IP")

func decodeIPv4(frame []byte, off int, p *packet) error {
	b := frame[off:]
	if len(b) < 20 {
		return wire.ErrTruncated
	}
	if b[0]>>4 != 4 {
		return errBadHeader
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl {
		return errBadHeader
	}
	if total > len(b) {
		return wire.ErrTruncated
	}
	p.l3End = off + total
	p.proto = b[9]
	p.src = netip.AddrFrom4([4]byte(b[12:16]))
	p.dst = netip.AddrFrom4([4]byte(b[16:20]))
	fragField := binary.BigEndian.Uint16(b[6:8])
	moreFrags := fragField&0x2000 != 0
	fragOff := fragField & 0x1fff
	if moreFrags || fragOff != 0 {
		p.frag = true
		p.fragFirst = fragOff == 0
		p.fragID = uint32(binary.BigEndian.Uint16(b[4:6]))
		if !p.fragFirst {
			return nil // no L4 header in this fragment
		}
	}
	return decodeL4(frame, off+ihl, p)
}

func decodeIPv6(frame []byte, off int, p *packet) error {
	b := frame[off:]
	if len(b) < 40 {
		return wire.ErrTruncated
	}
	if b[0]>>4 != 6 {
		return errBadHeader
	}
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if 40+plen > len(b) {
		return wire.ErrTruncated
	}
	p.l3End = off + 40 + plen
	p.src = netip.AddrFrom16([16]byte(b[8:24]))
	p.dst = netip.AddrFrom16([16]byte(b[24:40]))
	w, err := wire.WalkIPv6(frame[:p.l3End], b[6], off+40)
	if w.AH != 0 {
		// The forwarder does not look behind AH (nor at AH in IPv4):
		// such packets stay unsupported, whatever follows the AH.
		p.proto, p.l4 = protoAH, w.AH
		return nil
	}
	if err != nil {
		return err
	}
	if w.Fragment {
		p.fragID = w.FragID
		// An atomic fragment (offset 0, no more fragments, RFC 6946) is
		// a whole packet, not part of a train.
		p.frag = w.IsFragment()
		p.fragFirst = p.frag && w.FragOffset == 0
	}
	p.proto = w.Proto
	if p.frag && !p.fragFirst {
		return nil // no L4 header in this fragment
	}
	return decodeL4(frame, w.Offset, p)
}

// decodeL4 reads ports and flags, or the quoted packet of an ICMP error.
func decodeL4(frame []byte, off int, p *packet) error {
	end := p.l3End
	switch p.proto {
	case protoTCP:
		if off+20 > end {
			return wire.ErrTruncated
		}
		if int(frame[off+12]>>4)*4 < 20 {
			return errBadHeader
		}
		p.l4 = off
		p.srcPort = binary.BigEndian.Uint16(frame[off:])
		p.dstPort = binary.BigEndian.Uint16(frame[off+2:])
		p.tcpFlags = frame[off+13]
	case protoUDP:
		if off+8 > end {
			return wire.ErrTruncated
		}
		p.l4 = off
		p.srcPort = binary.BigEndian.Uint16(frame[off:])
		p.dstPort = binary.BigEndian.Uint16(frame[off+2:])
	case protoICMP:
		if off+8 > end {
			return wire.ErrTruncated
		}
		p.l4 = off
		switch frame[off] {
		case 3, 4, 11, 12: // unreachable (incl. frag needed), source quench, time exceeded, parameter problem
			p.icmpErr = decodeQuotedIPv4(frame[off+8:end], &p.inner)
		}
	case protoICMPv6:
		if off+8 > end {
			return wire.ErrTruncated
		}
		p.l4 = off
		switch frame[off] {
		case 1, 2, 3, 4: // unreachable, packet too big, time exceeded, parameter problem
			p.icmpErr = decodeQuotedIPv6(frame[off+8:end], &p.inner)
		}
	default:
		p.l4 = off
	}
	return nil
}

// decodeQuotedIPv4 reads the packet quoted in an ICMP error: it was sent by
// the real server (source VIP) to the client, so the flow is turned around.
func decodeQuotedIPv4(b []byte, f *flow) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl+4 {
		return false
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return false // a non-first fragment quotes no ports
	}
	f.proto = b[9]
	f.dst = netip.AddrFrom4([4]byte(b[12:16])) // quoted source: the VIP
	f.src = netip.AddrFrom4([4]byte(b[16:20])) // quoted destination: the client
	return quotedPorts(b[ihl:], f)
}

func decodeQuotedIPv6(b []byte, f *flow) bool {
	if len(b) < 40 || b[0]>>4 != 6 {
		return false
	}
	f.dst = netip.AddrFrom16([16]byte(b[8:24]))
	f.src = netip.AddrFrom16([16]byte(b[24:40]))
	w, err := wire.WalkIPv6(b, b[6], 40)
	if err != nil || w.AH != 0 || w.FragOffset != 0 {
		return false // cut short, behind AH, or a non-first fragment: no ports
	}
	f.proto = w.Proto
	return quotedPorts(b[w.Offset:], f)
}

func quotedPorts(l4 []byte, f *flow) bool {
	if f.proto != protoTCP && f.proto != protoUDP {
		return false
	}
	if len(l4) < 4 {
		return false
	}
	f.dstPort = binary.BigEndian.Uint16(l4[0:2]) // quoted source port: the VIP's
	f.srcPort = binary.BigEndian.Uint16(l4[2:4])
	return true
}

// Package framegen builds Ethernet frames for tests, golden scenarios and
// fuzz seeds: TCP, UDP, ICMP errors, fragments, VLAN tags and deliberately
// broken frames. It uses gopacket to serialise, so the frames are what a
// real stack would send; it is not used on any data path.
package framegen

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// L2 is the Ethernet part of a frame.
type L2 struct {
	Src, Dst net.HardwareAddr
	VLAN     uint16 // 802.1Q VLAN ID; 0 = untagged
	// Outer is the VLAN ID of an outer (service) tag in front of VLAN,
	// for QinQ frames; 0 = none. OuterTPID is its TPID, 0 meaning
	// wire.EtherTypeQinQ (802.1ad); wire.EtherTypeVLAN stacks 802.1Q.
	Outer     uint16
	OuterTPID uint16
}

// TCP flag sets, as tcpdump prints them.
const (
	SYN    = "S"
	SYNACK = "SA"
	ACK    = "A"
	PSHACK = "PA"
	FINACK = "FA"
	RST    = "R"
)

var opts = gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}

func serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		panic("framegen: " + err.Error()) // a bug in the test input, not a runtime condition
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ethernet(l2 L2, et layers.EthernetType) []gopacket.SerializableLayer {
	eth := &layers.Ethernet{SrcMAC: l2.Src, DstMAC: l2.Dst, EthernetType: et}
	ls := []gopacket.SerializableLayer{eth}
	// Each tag's layer carries the type of what follows it.
	next := &eth.EthernetType
	if l2.Outer != 0 {
		tpid := layers.EthernetType(l2.OuterTPID)
		if tpid == 0 {
			tpid = wire.EtherTypeQinQ
		}
		q := &layers.Dot1Q{VLANIdentifier: l2.Outer, Type: et}
		*next, next = tpid, &q.Type
		ls = append(ls, q)
	}
	if l2.VLAN != 0 {
		q := &layers.Dot1Q{VLANIdentifier: l2.VLAN, Type: et}
		*next = wire.EtherTypeVLAN
		ls = append(ls, q)
	}
	return ls
}

// ip returns the network layer for src->dst with protocol proto.
func ip(src, dst netip.Addr, proto layers.IPProtocol, id uint16) (gopacket.SerializableLayer, gopacket.NetworkLayer, layers.EthernetType) {
	if src.Is4() {
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Flags: layers.IPv4DontFragment,
			Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		return l, l, layers.EthernetTypeIPv4
	}
	l := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	return l, l, layers.EthernetTypeIPv6
}

// TCP builds a TCP segment src->dst with flags (a string of S A F R P).
func TCP(l2 L2, src, dst netip.AddrPort, flags string, seq, ack uint32, payload []byte) []byte {
	t := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, Window: 65535}
	for _, c := range flags {
		switch c {
		case 'S':
			t.SYN = true
		case 'A':
			t.ACK = true
		case 'F':
			t.FIN = true
		case 'R':
			t.RST = true
		case 'P':
			t.PSH = true
		}
	}
	if !t.ACK {
		t.Ack = 0
	}
	l3, nl, et := ip(src.Addr(), dst.Addr(), layers.IPProtocolTCP, uint16(seq))
	_ = t.SetNetworkLayerForChecksum(nl)
	return serialize(append(ethernet(l2, et), l3, t, gopacket.Payload(payload))...)
}

// UDP builds a UDP datagram src->dst.
func UDP(l2 L2, src, dst netip.AddrPort, payload []byte) []byte {
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	l3, nl, et := ip(src.Addr(), dst.Addr(), layers.IPProtocolUDP, uint16(len(payload)))
	_ = u.SetNetworkLayerForChecksum(nl)
	return serialize(append(ethernet(l2, et), l3, u, gopacket.Payload(payload))...)
}

// PartialChecksum turns a frame's complete TCP/UDP checksum into the
// partial one a sender relying on checksum offload hands to its NIC: the
// folded pseudo-header sum, not complemented (Linux CHECKSUM_PARTIAL).
// It returns the checksum's start and the field's offset within it.
func PartialChecksum(frame []byte) (start, off int) {
	_, l3, _ := wire.EtherType(frame)
	var src, dst netip.Addr
	var proto byte
	var l4, l4len int
	if frame[l3]>>4 == 4 {
		ihl := int(frame[l3]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(frame[l3+2:]))
		proto = frame[l3+9]
		l4, l4len = l3+ihl, total-ihl
		src, dst = netip.AddrFrom4([4]byte(frame[l3+12:])), netip.AddrFrom4([4]byte(frame[l3+16:]))
	} else {
		proto = frame[l3+6]
		l4, l4len = l3+40, int(binary.BigEndian.Uint16(frame[l3+4:]))
		src, dst = netip.AddrFrom16([16]byte(frame[l3+8:])), netip.AddrFrom16([16]byte(frame[l3+24:]))
	}
	off = 16
	if proto == 17 {
		off = 6
	}
	// The partial value is the folded sum itself, not its complement.
	binary.BigEndian.PutUint16(frame[l4+off:], ^wire.Fold(wire.PseudoHeaderSum(src, dst, proto, l4len)))
	return l4, off
}

// ICMPFragNeeded builds the ICMP "fragmentation needed" a router sends to
// the VIP about a too-big packet that the real server sent (source VIP) to
// the client; quoted is that packet's IP header and first bytes.
func ICMPFragNeeded(l2 L2, router, vip netip.Addr, quoted []byte, mtu uint16) []byte {
	if router.Is4() {
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: mtu}
		l3, _, et := ip(router, vip, layers.IPProtocolICMPv4, 7)
		return serialize(append(ethernet(l2, et), l3, ic, gopacket.Payload(quoted))...)
	}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(2, 0)}
	l3, nl, et := ip(router, vip, layers.IPProtocolICMPv6, 7)
	_ = ic.SetNetworkLayerForChecksum(nl)
	mtuField := make([]byte, 4)
	binary.BigEndian.PutUint32(mtuField, uint32(mtu))
	return serialize(append(ethernet(l2, et), l3, ic, gopacket.Payload(append(mtuField, quoted...)))...)
}

// IPPacket strips the Ethernet header and VLAN tags off a frame: the IP packet.
func IPPacket(frame []byte) []byte {
	_, l3, _ := wire.EtherType(frame)
	return frame[l3:]
}

// IPv4Fragments splits a UDP datagram src->dst into IPv4 fragments whose
// payloads are at most size bytes (a multiple of 8), in order.
func IPv4Fragments(l2 L2, src, dst netip.AddrPort, payload []byte, size int, id uint16) [][]byte {
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	pseudo := &layers.IPv4{Version: 4, IHL: 5, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	_ = u.SetNetworkLayerForChecksum(pseudo)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, u, gopacket.Payload(payload)); err != nil {
		panic("framegen: " + err.Error())
	}
	whole := buf.Bytes()
	var frames [][]byte
	for off := 0; off < len(whole); off += size {
		end := min(off+size, len(whole))
		l := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: id, Protocol: layers.IPProtocolUDP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice(), FragOffset: uint16(off / 8)}
		if end < len(whole) {
			l.Flags = layers.IPv4MoreFragments
		}
		frames = append(frames, serialize(append(ethernet(l2, layers.EthernetTypeIPv4), l, gopacket.Payload(whole[off:end]))...))
	}
	return frames
}

// ARPRequest builds a who-has request for target from sender.
func ARPRequest(l2 L2, sender, target netip.Addr) []byte {
	a := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest,
		SourceHwAddress: l2.Src, SourceProtAddress: sender.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice()}
	return serialize(append(ethernet(l2, layers.EthernetTypeARP), a)...)
}

// ICMPEcho builds a ping src->dst.
func ICMPEcho(l2 L2, src, dst netip.Addr, seq uint16) []byte {
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: seq}
	l3, _, et := ip(src, dst, layers.IPProtocolICMPv4, seq)
	return serialize(append(ethernet(l2, et), l3, ic, gopacket.Payload("ping"))...)
}

// IPv6Fragments splits a UDP datagram src->dst into IPv6 fragments (a
// fragment extension header each) whose fragmentable parts are at most
// size bytes (a multiple of 8), in order.
func IPv6Fragments(l2 L2, src, dst netip.AddrPort, payload []byte, size int, id uint32) [][]byte {
	u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	pseudo := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	_ = u.SetNetworkLayerForChecksum(pseudo)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, opts, u, gopacket.Payload(payload)); err != nil {
		panic("framegen: " + err.Error())
	}
	whole := buf.Bytes()
	var frames [][]byte
	for off := 0; off < len(whole); off += size {
		end := min(off+size, len(whole))
		frag := make([]byte, 8, 8+end-off)
		frag[0] = byte(layers.IPProtocolUDP)
		fo := uint16(off/8) << 3
		if end < len(whole) {
			fo |= 1 // more fragments
		}
		binary.BigEndian.PutUint16(frag[2:], fo)
		binary.BigEndian.PutUint32(frag[4:], id)
		frag = append(frag, whole[off:end]...)
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolIPv6Fragment,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		frames = append(frames, serialize(append(ethernet(l2, layers.EthernetTypeIPv6), ip, gopacket.Payload(frag))...))
	}
	return frames
}

// NeighborSolicitation builds an ICMPv6 neighbor solicitation for target
// from src (with a source link-layer option), sent to target's
// solicited-node group, hop limit 255 as RFC 4861 requires.
func NeighborSolicitation(l2 L2, src, target netip.Addr) []byte {
	t := target.As16()
	group := netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: target.AsSlice(),
		Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: l2.Src}}}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}
	l3 := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: src.AsSlice(), DstIP: group.AsSlice()}
	_ = ic.SetNetworkLayerForChecksum(l3)
	return serialize(append(ethernet(l2, layers.EthernetTypeIPv6), l3, ic, ns)...)
}

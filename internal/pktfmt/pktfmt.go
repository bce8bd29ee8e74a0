// Package pktfmt describes frames in one line for people: replay listings
// and the director's trace. It reads VLAN tags with internal/wire, as the
// forwarder does, so a frame is described the way drlb treated it, and the
// rest with gopacket; it allocates freely, so it is never on the
// forwarding path.
package pktfmt

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Describe summarises a frame for the listing: protocol and flow, TCP
// flags, VLAN tags (an 802.1ad service tag as "svlan"), fragment; only for
// humans, so it may be slow.
func Describe(frame []byte) string {
	var parts []string
	tags, n := wire.Tags(frame)
	for _, t := range tags[:n] {
		name := "vlan"
		if t.TPID == wire.EtherTypeQinQ {
			name = "svlan"
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, t.VID()))
	}
	if et, _, ok := wire.EtherType(frame); ok && (et == wire.EtherTypeVLAN || et == wire.EtherTypeQinQ) {
		// gopacket would read on through any number of tags; drlb reads
		// two, so to it this frame is not IP.
		return strings.Join(append(parts, "non-ip (more than two vlan tags)"), " ")
	}
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	if a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		s, _ := netip.AddrFromSlice(a.SourceProtAddress)
		d, _ := netip.AddrFromSlice(a.DstProtAddress)
		op := "reply"
		if a.Operation == layers.ARPRequest {
			op = "who-has"
		}
		return strings.Join(append(parts, fmt.Sprintf("arp %s %s tell %s", op, d, s)), " ")
	}
	if e := pkt.ErrorLayer(); e != nil {
		return strings.Join(append(parts, "malformed: "+e.Error().Error()), " ")
	}
	nl := pkt.NetworkLayer()
	if nl == nil {
		return strings.Join(append(parts, "non-ip"), " ")
	}
	src, dst := nl.NetworkFlow().Src().String(), nl.NetworkFlow().Dst().String()
	if ip4, ok := nl.(*layers.IPv4); ok && (ip4.Flags&layers.IPv4MoreFragments != 0 || ip4.FragOffset != 0) {
		return strings.Join(append(parts, fmt.Sprintf("ip %s -> %s frag id %d offset %d", src, dst, ip4.Id, int(ip4.FragOffset)*8)), " ")
	}
	switch l := pkt.TransportLayer().(type) {
	case *layers.TCP:
		return strings.Join(append(parts, fmt.Sprintf("tcp %s -> %s %s", hostPort(src, uint16(l.SrcPort)), hostPort(dst, uint16(l.DstPort)), tcpFlags(l))), " ")
	case *layers.UDP:
		return strings.Join(append(parts, fmt.Sprintf("udp %s -> %s", hostPort(src, uint16(l.SrcPort)), hostPort(dst, uint16(l.DstPort)))), " ")
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		return strings.Join(append(parts, fmt.Sprintf("icmp %s -> %s %s", src, dst, ic.TypeCode)), " ")
	}
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		return strings.Join(append(parts, fmt.Sprintf("icmp6 %s -> %s %s", src, dst, ic.TypeCode)), " ")
	}
	return strings.Join(append(parts, fmt.Sprintf("ip %s -> %s", src, dst)), " ")
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func tcpFlags(t *layers.TCP) string {
	var b []byte
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.SYN, 'S'}, {t.FIN, 'F'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, '.'}} {
		if f.on {
			b = append(b, f.c)
		}
	}
	return "[" + string(b) + "]"
}

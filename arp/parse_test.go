package arp

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket/layers"
)

func TestParseARP(t *testing.T) {
	req := gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)
	tagged := gpARP(t, tag(42, 5), broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)
	reply := gpARP(t, nil, dirMAC, OpReply, rs1MAC, rs1IP, dirMAC, dirIP)
	mut := func(f []byte, fn func([]byte)) []byte {
		c := append([]byte(nil), f...)
		fn(c)
		return c
	}
	tests := []struct {
		name    string
		frame   []byte
		want    ARPPacket
		err     error
		errText string // the field the error must name
	}{
		{name: "request", frame: req, want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC}, Op: OpRequest,
			SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "tagged request", frame: tagged, want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC, VLAN: VLAN{Tagged: true, TCI: 5<<13 | 42}}, Op: OpRequest,
			SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "reply", frame: reply, want: ARPPacket{
			Ethernet: Ethernet{Dst: dirMAC, Src: rs1MAC}, Op: OpReply,
			SenderMAC: rs1MAC, SenderIP: rs1IP, TargetMAC: dirMAC, TargetIP: dirIP}},
		{name: "unpadded 42 bytes", frame: req[:42], want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC}, Op: OpRequest,
			SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "empty", frame: nil, err: ErrTruncated, errText: "frame length"},
		{name: "13 bytes", frame: req[:13], err: ErrTruncated, errText: "frame length"},
		{name: "tag cut", frame: tagged[:17], err: ErrTruncated, errText: "frame length"},
		{name: "body cut", frame: req[:41], err: ErrTruncated, errText: "ARP body length"},
		{name: "tagged body cut", frame: tagged[:45], err: ErrTruncated, errText: "ARP body length"},
		{name: "IPv4 ethertype", frame: mut(req, func(b []byte) { b[12], b[13] = 0x08, 0x00 }), err: ErrNotARP, errText: "ethertype"},
		{name: "tagged IPv6", frame: mut(tagged, func(b []byte) { b[16], b[17] = 0x86, 0xdd }), err: ErrNotARP},
		{name: "QinQ request", frame: withOuter(tagged, wire.EtherTypeQinQ, 0x2064), want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC, VLAN: VLAN{Tagged: true, TCI: 5<<13 | 42}, Outer: wire.Tag{TPID: wire.EtherTypeQinQ, TCI: 0x2064}},
			Op:       OpRequest, SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "802.1Q in 802.1Q request", frame: withOuter(tagged, wire.EtherTypeVLAN, 100), want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC, VLAN: VLAN{Tagged: true, TCI: 5<<13 | 42}, Outer: wire.Tag{TPID: wire.EtherTypeVLAN, TCI: 100}},
			Op:       OpRequest, SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "802.1ad tag alone", frame: withOuter(req, wire.EtherTypeQinQ, 100), want: ARPPacket{
			Ethernet: Ethernet{Dst: broadcast, Src: routerMAC, Outer: wire.Tag{TPID: wire.EtherTypeQinQ, TCI: 100}},
			Op:       OpRequest, SenderMAC: routerMAC, SenderIP: routerIP, TargetIP: vip4}},
		{name: "QinQ inner tag cut", frame: withOuter(tagged, wire.EtherTypeQinQ, 100)[:21], err: ErrTruncated, errText: "frame length"},
		{name: "QinQ body cut", frame: withOuter(tagged, wire.EtherTypeQinQ, 100)[:49], err: ErrTruncated, errText: "ARP body length"},
		{name: "stacked tags", frame: mut(withOuter(tagged, wire.EtherTypeQinQ, 100), func(b []byte) { b[20], b[21] = 0x81, 0x00 }), err: ErrUnsupported, errText: "stacked"},
		{name: "S-tag inside a C-tag", frame: mut(tagged, func(b []byte) { b[16], b[17] = 0x88, 0xa8 }), err: ErrUnsupported, errText: "stacked"},
		{name: "htype 6", frame: mut(req, func(b []byte) { b[15] = 6 }), err: ErrUnsupported, errText: "hardware type"},
		{name: "ptype IPv6", frame: mut(req, func(b []byte) { b[16], b[17] = 0x86, 0xdd }), err: ErrUnsupported, errText: "protocol type"},
		{name: "hlen 8", frame: mut(req, func(b []byte) { b[18] = 8 }), err: ErrUnsupported, errText: "hardware address length"},
		{name: "plen 16", frame: mut(req, func(b []byte) { b[19] = 16 }), err: ErrUnsupported, errText: "protocol address length"},
		{name: "RARP op 3", frame: mut(req, func(b []byte) { b[21] = 3 }), err: ErrUnsupported, errText: "operation"},
		{name: "op 0", frame: mut(req, func(b []byte) { b[21] = 0 }), err: ErrUnsupported, errText: "operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseARP(tt.frame)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.errText) || !strings.HasPrefix(err.Error(), "arp: ") {
					t.Fatalf("err %q is not a ParseError naming %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestARPPredicates(t *testing.T) {
	tests := []struct {
		name             string
		p                ARPPacket
		probe, gratuitus bool
	}{
		{"request", ARPPacket{Op: OpRequest, SenderIP: routerIP, TargetIP: vip4}, false, false},
		{"probe", ARPPacket{Op: OpRequest, SenderIP: zero4, TargetIP: vip4}, true, false},
		{"gratuitous request", ARPPacket{Op: OpRequest, SenderIP: vip4, TargetIP: vip4}, false, true},
		{"gratuitous reply", ARPPacket{Op: OpReply, SenderIP: vip4, TargetIP: vip4}, false, true},
		{"zero reply", ARPPacket{Op: OpReply, SenderIP: zero4, TargetIP: zero4}, false, false},
	}
	for _, tt := range tests {
		if got := tt.p.IsProbe(); got != tt.probe {
			t.Errorf("%s: IsProbe = %v", tt.name, got)
		}
		if got := tt.p.IsGratuitous(); got != tt.gratuitus {
			t.Errorf("%s: IsGratuitous = %v", tt.name, got)
		}
	}
}

// ndpFrame builds an NS/NA frame with gopacket and lets a test mutate it,
// fixing the checksum afterwards unless keepSum.
func ndpFrame(t *testing.T, s ndpSpec, keepSum bool, fn func(b []byte, off int)) []byte {
	b := gpNDP(t, s)
	if fn != nil {
		_, off, _ := wire.EtherType(b)
		fn(b, off)
		if !keepSum {
			fixChecksum(b)
		}
	}
	return b
}

func TestParseNDP(t *testing.T) {
	sn := solicitedNode(vip6)
	ns := ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: routerIP6, dip: sn, typ: TypeNeighborSolicitation, target: vip6, ll: macp(routerMAC)}
	dad := ndpSpec{dst: multicastMAC(sn), src: routerMAC, sip: zero6, dip: sn, typ: TypeNeighborSolicitation, target: vip6}
	na := ndpSpec{dst: dirMAC, src: rs1MAC, sip: rs1IP6, dip: dirIP6, typ: TypeNeighborAdvertisement,
		flags: FlagSolicited | FlagOverride, target: rs1IP6, ll: macp(rs1MAC)}
	withV := func(s ndpSpec) ndpSpec { s.v = tag(7, 0); return s }
	with := func(s ndpSpec, fn func(*ndpSpec)) ndpSpec { fn(&s); return s }

	tests := []struct {
		name    string
		frame   []byte
		want    *NDPPacket
		err     error
		errText string
	}{
		{name: "solicitation", frame: gpNDP(t, ns), want: &NDPPacket{
			Ethernet: Ethernet{Dst: multicastMAC(sn), Src: routerMAC}, Src: routerIP6, Dst: sn, HopLimit: 255,
			Type: TypeNeighborSolicitation, Target: vip6, SourceLL: routerMAC, HasSourceLL: true}},
		{name: "tagged solicitation", frame: gpNDP(t, withV(ns)), want: &NDPPacket{
			Ethernet: Ethernet{Dst: multicastMAC(sn), Src: routerMAC, VLAN: VLANID(7)}, Src: routerIP6, Dst: sn, HopLimit: 255,
			Type: TypeNeighborSolicitation, Target: vip6, SourceLL: routerMAC, HasSourceLL: true}},
		{name: "QinQ solicitation", frame: withOuter(gpNDP(t, withV(ns)), wire.EtherTypeQinQ, 0xe123), want: &NDPPacket{
			Ethernet: Ethernet{Dst: multicastMAC(sn), Src: routerMAC, VLAN: VLANID(7), Outer: wire.Tag{TPID: wire.EtherTypeQinQ, TCI: 0xe123}},
			Src:      routerIP6, Dst: sn, HopLimit: 255, Type: TypeNeighborSolicitation, Target: vip6, SourceLL: routerMAC, HasSourceLL: true}},
		{name: "DAD", frame: gpNDP(t, dad), want: &NDPPacket{
			Ethernet: Ethernet{Dst: multicastMAC(sn), Src: routerMAC}, Src: zero6, Dst: sn, HopLimit: 255,
			Type: TypeNeighborSolicitation, Target: vip6}},
		{name: "advertisement", frame: gpNDP(t, na), want: &NDPPacket{
			Ethernet: Ethernet{Dst: dirMAC, Src: rs1MAC}, Src: rs1IP6, Dst: dirIP6, HopLimit: 255,
			Type: TypeNeighborAdvertisement, Flags: FlagSolicited | FlagOverride, Target: rs1IP6, TargetLL: rs1MAC, HasTargetLL: true}},
		{name: "advertisement without option", frame: gpNDP(t, with(na, func(s *ndpSpec) { s.ll = nil })), want: &NDPPacket{
			Ethernet: Ethernet{Dst: dirMAC, Src: rs1MAC}, Src: rs1IP6, Dst: dirIP6, HopLimit: 255,
			Type: TypeNeighborAdvertisement, Flags: FlagSolicited | FlagOverride, Target: rs1IP6}},
		{name: "unknown option skipped", frame: ndpFrame(t, ns, false, func(b []byte, off int) {
			b[off+ipv6Len+24] = 14 // nonce option, RFC 3971
		}), want: &NDPPacket{
			Ethernet: Ethernet{Dst: multicastMAC(sn), Src: routerMAC}, Src: routerIP6, Dst: sn, HopLimit: 255,
			Type: TypeNeighborSolicitation, Target: vip6}},

		{name: "empty", frame: []byte{}, err: ErrTruncated, errText: "frame length"},
		{name: "ARP", frame: gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4), err: ErrNotNDP, errText: "ethertype"},
		{name: "IPv6 header cut", frame: gpNDP(t, ns)[:14+39], err: ErrTruncated, errText: "IPv6 header length"},
		{name: "payload cut", frame: gpNDP(t, ns)[:14+40+31], err: ErrTruncated, errText: "IPv6 payload length"},
		{name: "tiny ICMPv6", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off+5] = 3 }), err: ErrTruncated, errText: "ICMPv6 length"},
		{name: "short NS", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off+5] = 20 }), err: ErrTruncated, errText: "ICMPv6 length"},
		{name: "UDP", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off+6] = 17 }), err: ErrNotNDP, errText: "next header"},
		{name: "hop-by-hop header", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off+6] = 0 }), err: ErrUnsupported, errText: "extension header"},
		{name: "echo request", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+40] = 128 }), err: ErrNotNDP, errText: "ICMPv6 type"},
		{name: "router solicitation", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+40] = 133 }), err: ErrNotNDP},
		{name: "IP version 4", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off] = 0x40 }), err: ErrInvalid, errText: "IP version"},
		{name: "hop limit 64", frame: gpNDP(t, with(ns, func(s *ndpSpec) { s.hop = 64 })), err: ErrBadHopLimit, errText: "hop limit = 64"},
		{name: "tagged hop limit 254", frame: gpNDP(t, withV(with(na, func(s *ndpSpec) { s.hop = 254 }))), err: ErrBadHopLimit},
		{name: "bad checksum", frame: ndpFrame(t, ns, true, func(b []byte, off int) { b[off+42] ^= 0xff }), err: ErrBadChecksum, errText: "checksum"},
		{name: "body changed, checksum kept", frame: ndpFrame(t, na, true, func(b []byte, off int) { b[off+40+23] ^= 1 }), err: ErrBadChecksum},
		{name: "code 1", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+41] = 1 }), err: ErrInvalid, errText: "ICMPv6 code"},
		{name: "multicast target", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+48] = 0xff }), err: ErrInvalid, errText: "target"},
		{name: "multicast source", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+8] = 0xff }), err: ErrInvalid, errText: "source"},
		{name: "option length 0", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+40+25] = 0 }), err: ErrInvalid, errText: "option length"},
		{name: "option past end", frame: ndpFrame(t, ns, false, func(b []byte, off int) { b[off+40+25] = 2 }), err: ErrInvalid, errText: "past end"},
		{name: "odd option tail", frame: ndpFrame(t, ns, false, func(b []byte, off int) {
			binary.BigEndian.PutUint16(b[off+4:], 33)
		}), err: ErrTruncated},
		{name: "DAD with source option", frame: gpNDP(t, with(dad, func(s *ndpSpec) { s.ll = macp(routerMAC) })), err: ErrInvalid, errText: "from ::"},
		{name: "DAD to unicast", frame: gpNDP(t, with(dad, func(s *ndpSpec) { s.dip = vip6 })), err: ErrInvalid, errText: "solicited-node"},
		{name: "solicited multicast NA", frame: gpNDP(t, with(na, func(s *ndpSpec) { s.dip = allNodes })), err: ErrInvalid, errText: "solicited flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNDP(tt.frame)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.errText) || !strings.HasPrefix(err.Error(), "ndp: ") {
					t.Fatalf("err %q is not a ParseError naming %q", err, tt.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != *tt.want {
				t.Fatalf("got  %+v\nwant %+v", got, *tt.want)
			}
		})
	}
}

// TestEncodeCrossCheck encodes with our builders and decodes with gopacket.
func TestEncodeCrossCheck(t *testing.T) {
	arps := []ARPPacket{
		{Ethernet: Ethernet{Dst: routerMAC, Src: dirMAC}, Op: OpReply, SenderMAC: dirMAC, SenderIP: vip4, TargetMAC: routerMAC, TargetIP: routerIP},
		{Ethernet: Ethernet{Dst: broadcast, Src: dirMAC, VLAN: VLAN{Tagged: true, TCI: 0xe00f}}, Op: OpRequest, SenderMAC: dirMAC, SenderIP: dirIP, TargetIP: rs1IP},
		{Ethernet: Ethernet{Dst: broadcast, Src: dirMAC, VLAN: VLAN{Tagged: true, TCI: 0xe00f}, Outer: wire.Tag{TPID: wire.EtherTypeQinQ, TCI: 0x3fff}},
			Op: OpRequest, SenderMAC: dirMAC, SenderIP: dirIP, TargetIP: rs1IP},
	}
	for i, p := range arps {
		var buf [MaxFrameLen]byte
		n := p.Encode(buf[:])
		if n != MinFrameLen {
			t.Fatalf("arp %d: length %d, want padded %d", i, n, MinFrameLen)
		}
		d := gpDecode(t, buf[:n])
		if d.arp == nil || d.arp.Operation != p.Op || MAC(d.arp.SourceHwAddress) != p.SenderMAC ||
			[4]byte(d.arp.SourceProtAddress) != p.SenderIP.As4() || MAC(d.arp.DstHwAddress) != p.TargetMAC ||
			[4]byte(d.arp.DstProtAddress) != p.TargetIP.As4() {
			t.Fatalf("arp %d: gopacket sees %+v", i, d.arp)
		}
		if got, want := gpTags(buf[:n]), ethTags(p.Ethernet); !slices.Equal(got, want) {
			t.Fatalf("arp %d: tags %+v, want %+v", i, got, want)
		}
		if back, err := ParseARP(buf[:n]); err != nil || back != p {
			t.Fatalf("arp %d: round trip %+v, %v", i, back, err)
		}
	}
	ndps := []NDPPacket{
		{Ethernet: Ethernet{Dst: routerMAC, Src: dirMAC}, Src: vip6, Dst: routerIP6, HopLimit: 255, Type: TypeNeighborAdvertisement,
			Flags: FlagSolicited | FlagOverride, Target: vip6, TargetLL: dirMAC, HasTargetLL: true},
		{Ethernet: Ethernet{Dst: multicastMAC(solicitedNode(rs1IP6)), Src: dirMAC, VLAN: VLANID(4094)}, Src: dirIP6, Dst: solicitedNode(rs1IP6),
			HopLimit: 255, Type: TypeNeighborSolicitation, Target: rs1IP6, SourceLL: dirMAC, HasSourceLL: true},
		{Ethernet: Ethernet{Dst: multicastMAC(solicitedNode(rs1IP6)), Src: dirMAC}, Src: zero6, Dst: solicitedNode(rs1IP6),
			HopLimit: 255, Type: TypeNeighborSolicitation, Target: rs1IP6},
		{Ethernet: Ethernet{Dst: routerMAC, Src: dirMAC, VLAN: VLANID(4094), Outer: wire.Tag{TPID: wire.EtherTypeVLAN, TCI: 1}}, Src: vip6, Dst: routerIP6,
			HopLimit: 255, Type: TypeNeighborAdvertisement, Flags: FlagOverride, Target: vip6, TargetLL: dirMAC, HasTargetLL: true},
	}
	for i, p := range ndps {
		var buf [MaxFrameLen]byte
		n := p.Encode(buf[:])
		if n == 0 {
			t.Fatalf("ndp %d: not encoded", i)
		}
		d := gpDecode(t, buf[:n])
		if got, want := gpTags(buf[:n]), ethTags(p.Ethernet); !slices.Equal(got, want) {
			t.Fatalf("ndp %d: tags %+v, want %+v", i, got, want)
		}
		if d.ip6 == nil || d.ip6.HopLimit != 255 || !d.ip6.SrcIP.Equal(ip(p.Src)) || !d.ip6.DstIP.Equal(ip(p.Dst)) {
			t.Fatalf("ndp %d: ip6 %+v", i, d.ip6)
		}
		switch p.Type {
		case TypeNeighborAdvertisement:
			ll, ok := llOption(d.na.Options, layers.ICMPv6OptTargetAddress)
			if d.na == nil || d.na.Flags != p.Flags || !d.na.TargetAddress.Equal(ip(p.Target)) || ok != p.HasTargetLL || ll != p.TargetLL {
				t.Fatalf("ndp %d: na %+v", i, d.na)
			}
		case TypeNeighborSolicitation:
			ll, ok := llOption(d.ns.Options, layers.ICMPv6OptSourceAddress)
			if d.ns == nil || !d.ns.TargetAddress.Equal(ip(p.Target)) || ok != p.HasSourceLL || ll != p.SourceLL {
				t.Fatalf("ndp %d: ns %+v", i, d.ns)
			}
		}
		if back, err := ParseNDP(buf[:n]); err != nil || back != p {
			t.Fatalf("ndp %d: round trip %+v, %v", i, back, err)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	var buf [MaxFrameLen]byte
	a := ARPPacket{Op: OpRequest, SenderIP: dirIP, TargetIP: rs1IP}
	if n := a.Encode(buf[:MinFrameLen-1]); n != 0 {
		t.Errorf("ARP into short buffer: %d", n)
	}
	a.TargetIP = rs1IP6
	if n := a.Encode(buf[:]); n != 0 {
		t.Errorf("ARP with IPv6 target: %d", n)
	}
	nd := NDPPacket{Src: dirIP6, Dst: rs1IP6, Type: TypeNeighborAdvertisement, Target: rs1IP6, HasTargetLL: true, Ethernet: Ethernet{VLAN: VLANID(1)}}
	if n := nd.Encode(buf[:MaxFrameLen-wire.TagLen-1]); n != 0 {
		t.Errorf("tagged NA with option into short buffer: %d", n)
	}
	if n := nd.Encode(buf[:]); n != MaxFrameLen-wire.TagLen {
		t.Errorf("tagged NA with option: %d, want MaxFrameLen-TagLen %d", n, MaxFrameLen-wire.TagLen)
	}
	nd.Ethernet.Outer = wire.Tag{TPID: wire.EtherTypeQinQ, TCI: 2}
	if n := nd.Encode(buf[:MaxFrameLen-1]); n != 0 {
		t.Errorf("QinQ NA with option into short buffer: %d", n)
	}
	if n := nd.Encode(buf[:]); n != MaxFrameLen {
		t.Errorf("QinQ NA with option: %d, want MaxFrameLen %d", n, MaxFrameLen)
	}
	for _, tpid := range []uint16{wire.EtherTypeIPv4, 0x9100} {
		nd.Ethernet.Outer.TPID = tpid
		if n := nd.Encode(buf[:]); n != 0 {
			t.Errorf("NA with outer TPID %#04x: %d", tpid, n)
		}
		a := ARPPacket{Op: OpRequest, SenderIP: dirIP, TargetIP: rs1IP, Ethernet: nd.Ethernet}
		if n := a.Encode(buf[:]); n != 0 {
			t.Errorf("ARP with outer TPID %#04x: %d", tpid, n)
		}
	}
	nd.Ethernet.Outer = wire.Tag{}
	nd.Src = dirIP
	if n := nd.Encode(buf[:]); n != 0 {
		t.Errorf("NDP from IPv4: %d", n)
	}
}

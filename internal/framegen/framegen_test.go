package framegen

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestTags: the tags asked for are the tags gopacket reads back, outermost
// first, and IPPacket finds the IP packet behind them.
func TestTags(t *testing.T) {
	src, dst := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	c, v := netip.MustParseAddrPort("198.18.1.10:1000"), netip.MustParseAddrPort("198.18.0.100:80")
	for _, tt := range []struct {
		name  string
		l2    L2
		tpids []layers.EthernetType // Ethernet's type, then each tag's
		vids  []uint16
	}{
		{"untagged", L2{}, []layers.EthernetType{layers.EthernetTypeIPv4}, nil},
		{"802.1Q", L2{VLAN: 7}, []layers.EthernetType{wire.EtherTypeVLAN, layers.EthernetTypeIPv4}, []uint16{7}},
		{"802.1ad alone", L2{Outer: 100}, []layers.EthernetType{wire.EtherTypeQinQ, layers.EthernetTypeIPv4}, []uint16{100}},
		{"QinQ", L2{Outer: 100, VLAN: 7}, []layers.EthernetType{wire.EtherTypeQinQ, wire.EtherTypeVLAN, layers.EthernetTypeIPv4}, []uint16{100, 7}},
		{"802.1Q in 802.1Q", L2{Outer: 100, OuterTPID: wire.EtherTypeVLAN, VLAN: 7}, []layers.EthernetType{wire.EtherTypeVLAN, wire.EtherTypeVLAN, layers.EthernetTypeIPv4}, []uint16{100, 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.l2.Src, tt.l2.Dst = src, dst
			f := TCP(tt.l2, c, v, SYN, 1, 0, nil)
			pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
			if e := pkt.ErrorLayer(); e != nil {
				t.Fatal(e.Error())
			}
			types := []layers.EthernetType{pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet).EthernetType}
			var vids []uint16
			for _, l := range pkt.Layers() {
				if q, ok := l.(*layers.Dot1Q); ok {
					types = append(types, q.Type)
					vids = append(vids, q.VLANIdentifier)
				}
			}
			if len(types) != len(tt.tpids) || len(vids) != len(tt.vids) {
				t.Fatalf("types %v vids %v, want %v %v", types, vids, tt.tpids, tt.vids)
			}
			for i := range types {
				if types[i] != tt.tpids[i] {
					t.Fatalf("types %v, want %v", types, tt.tpids)
				}
			}
			for i := range vids {
				if vids[i] != tt.vids[i] {
					t.Fatalf("vids %v, want %v", vids, tt.vids)
				}
			}
			nl := pkt.NetworkLayer()
			// Ethernet padding stays on: IPPacket only strips the header.
			if !bytes.HasPrefix(IPPacket(f), append(append([]byte(nil), nl.LayerContents()...), nl.LayerPayload()...)) {
				t.Fatal("IPPacket is not the IP packet")
			}
		})
	}
}

// TestPartialChecksum: completing the partial checksum over the segment
// gives back the checksum gopacket computed, behind any tags.
func TestPartialChecksum(t *testing.T) {
	c6, v6 := netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.MustParseAddrPort("[2001:2::100]:53")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, l2 := range []L2{{}, {VLAN: 3}, {Outer: 4, VLAN: 3}} {
		l2.Src, l2.Dst = mac, mac
		for _, f := range [][]byte{
			TCP(l2, netip.MustParseAddrPort("198.18.1.10:1000"), netip.MustParseAddrPort("198.18.0.100:80"), PSHACK, 1, 1, []byte("abc")),
			UDP(l2, c6, v6, []byte("q")),
		} {
			want := append([]byte(nil), f...)
			start, off := PartialChecksum(f)
			if bytes.Equal(f, want) {
				t.Fatal("PartialChecksum changed nothing")
			}
			// The field holds the pseudo-header sum: summing the segment
			// over it is what a NIC does to complete it.
			cs := wire.Fold(wire.Sum(f[start:], 0))
			if cs == 0 && off == 6 {
				cs = 0xffff
			}
			if got := uint16(want[start+off])<<8 | uint16(want[start+off+1]); got != cs {
				t.Fatalf("completed %#04x, gopacket %#04x", cs, got)
			}
		}
	}
}

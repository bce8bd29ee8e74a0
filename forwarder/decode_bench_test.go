package forwarder

import (
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The decoder is hand-written because it is faster than gopacket's
// DecodingLayerParser (both allocate nothing); these benchmarks keep that
// claim checked. FuzzDecode keeps the two in agreement.

var benchFrame = framegen.TCP(framegen.L2{Src: clientMAC, Dst: directorMAC},
	netip.MustParseAddrPort("198.18.1.10:40000"), netip.MustParseAddrPort("198.18.0.100:80"), "PA", 1, 1, make([]byte, 64))

func BenchmarkDecode(b *testing.B) {
	var p packet
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(benchFrame, &p); err != nil || p.dstPort != 80 {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodingLayerParser(b *testing.B) {
	var (
		eth     layers.Ethernet
		dot1q   layers.Dot1Q
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		udp     layers.UDP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp, &payload)
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := parser.DecodeLayers(benchFrame, &decoded); err != nil || tcp.DstPort != 80 {
			b.Fatal(err)
		}
		// What Process needs next: the addresses as netip values.
		src, _ := netip.AddrFromSlice(ip4.SrcIP)
		dst, _ := netip.AddrFromSlice(ip4.DstIP)
		if !src.IsValid() || !dst.IsValid() {
			b.Fatal("no addresses")
		}
	}
}

package wire

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// refChecksum is RFC 1071 as written: 16-bit words, end-around carry,
// complement.
func refChecksum(b []byte, initial uint64) uint16 {
	s := initial
	for i := 0; i < len(b); i += 2 {
		w := uint64(b[i]) << 8
		if i+1 < len(b) {
			w |= uint64(b[i+1])
		}
		s += w
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func hexBytes(words ...uint16) []byte {
	var b []byte
	for _, w := range words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	return b
}

func TestSumFold(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		initial uint32
		want    uint16
	}{
		// RFC 1071 section 3: the words sum to 0xddf2.
		{"RFC 1071 example", []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, 0, ^uint16(0xddf2)},
		// An IPv4 header with its checksum field zeroed; 0xb861 is the
		// value it carries on the wire.
		{"IPv4 header", hexBytes(0x4500, 0x0073, 0x0000, 0x4000, 0x4011, 0x0000, 0xc0a8, 0x0001, 0xc0a8, 0x00c7), 0, 0xb861},
		{"IPv4 header verified", hexBytes(0x4500, 0x0073, 0x0000, 0x4000, 0x4011, 0xb861, 0xc0a8, 0x0001, 0xc0a8, 0x00c7), 0, 0},
		{"odd length pads with zero", []byte{0x12, 0x34, 0x56}, 0, ^uint16(0x1234 + 0x5600)},
		{"empty", nil, 0, 0xffff},
		{"initial carried", []byte{0x00, 0x01}, 0x1fffe, ^uint16(0x0001)}, // 0x1ffff folds to 0x0001
		{"all ones stays nonzero", []byte{0xff, 0xff, 0xff, 0xff}, 0, 0},
		{"many carries", bytesOf(0xff, 4099), 0, refChecksum(bytesOf(0xff, 4099), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fold(Sum(tt.b, tt.initial)); got != tt.want {
				t.Fatalf("Fold(Sum) = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

func bytesOf(v byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = v
	}
	return b
}

// TestSumLarge: a 64 KiB super-frame's worth of 0xff still sums right;
// the running sum must not overflow 32 bits between calls either.
func TestSumLarge(t *testing.T) {
	b := bytesOf(0xff, 1<<17+3)
	s := Sum(b, 0xffffffff)
	if got, want := Fold(s), refChecksum(b, 0xffffffff); got != want {
		t.Fatalf("Fold = %#04x, want %#04x", got, want)
	}
}

// TestPseudoHeaderSum checks TCP checksums against gopacket's, over IPv4
// and IPv6, even and odd payloads.
func TestPseudoHeaderSum(t *testing.T) {
	tests := []struct {
		src, dst netip.Addr
		payload  string
	}{
		{netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.0.100"), "hello"},
		{netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.0.100"), "even"},
		{netip.MustParseAddr("2001:2:0:1::10"), netip.MustParseAddr("2001:2::100"), "hello"},
		{netip.MustParseAddr("::ffff:198.18.1.10"), netip.MustParseAddr("2001:2::100"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.src.String(), func(t *testing.T) {
			tcp := &layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 7, SYN: true, Window: 1000}
			var nl gopacket.NetworkLayer
			if tt.src.Is4() {
				nl = &layers.IPv4{Version: 4, Protocol: layers.IPProtocolTCP, SrcIP: net.IP(tt.src.AsSlice()), DstIP: net.IP(tt.dst.AsSlice())}
			} else {
				nl = &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(tt.src.AsSlice()), DstIP: net.IP(tt.dst.AsSlice())}
			}
			if err := tcp.SetNetworkLayerForChecksum(nl); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, tcp, gopacket.Payload(tt.payload)); err != nil {
				t.Fatal(err)
			}
			seg := buf.Bytes()
			want := binary.BigEndian.Uint16(seg[16:])
			if got := Fold(Sum(seg, PseudoHeaderSum(tt.src, tt.dst, 6, len(seg)))); got != 0 {
				t.Fatalf("verifying gopacket's segment gives %#04x, want 0", got)
			}
			seg[16], seg[17] = 0, 0
			if got := Fold(Sum(seg, PseudoHeaderSum(tt.src, tt.dst, 6, len(seg)))); got != want {
				t.Fatalf("checksum %#04x, gopacket %#04x", got, want)
			}
		})
	}
}

// TestPseudoHeaderLength: IPv6 upper-layer lengths are 32 bits (jumbograms).
func TestPseudoHeaderLength(t *testing.T) {
	a, b := netip.IPv6Unspecified(), netip.IPv6Unspecified()
	if got, want := Fold(PseudoHeaderSum(a, b, 0, 0x12345)), refChecksum(hexBytes(0x0001, 0x2345), 0); got != want {
		t.Fatalf("%#04x, want %#04x", got, want)
	}
}

func FuzzSum(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint16(1), uint32(0))
	f.Add(bytesOf(0xff, 100), uint16(50), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, b []byte, split uint16, initial uint32) {
		want := refChecksum(b, uint64(initial))
		if got := Fold(Sum(b, initial)); got != want {
			t.Fatalf("Fold(Sum(%x, %#x)) = %#04x, want %#04x", b, initial, got, want)
		}
		// Summing in two pieces split at an even offset is the same.
		k := min(int(split)&^1, len(b))
		if got := Fold(Sum(b[k:], Sum(b[:k], initial))); got != want {
			t.Fatalf("split at %d: %#04x, want %#04x", k, got, want)
		}
	})
}

func TestChecksumNoAllocations(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:2:0:1::10"), netip.MustParseAddr("2001:2::100")
	src4, dst4 := netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.0.100")
	b := bytesOf(0x5a, 1500)
	var sink uint16
	if a := testing.AllocsPerRun(1000, func() {
		sink += Fold(Sum(b, PseudoHeaderSum(src, dst, 6, len(b))))
		sink += Fold(Sum(b, PseudoHeaderSum(src4, dst4, 17, len(b))))
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
	_ = sink
}

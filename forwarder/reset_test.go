package forwarder

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestReset: a client whose real server is gone gets a reset from the VIP
// that its stack accepts: right addresses, ports, sequence numbers and
// checksums, its VLAN tag kept.
func TestReset(t *testing.T) {
	c6 := netip.MustParseAddrPort("[2001:2:0:1::10]:4000")
	tagged := toDir
	tagged.VLAN = 12
	data := []byte("GET / HTTP/1.1\r\n\r\n")
	for _, tc := range []struct {
		name     string
		frame    []byte
		seq, ack uint32
		ackFlag  bool
	}{
		{"ipv4 ack with data", framegen.TCP(toDir, client(0, 1), netip.AddrPortFrom(vip, 80), "PA", 1000, 5000, data), 5000, 0, false},
		{"ipv4 tagged", framegen.TCP(tagged, client(1, 1), netip.AddrPortFrom(vip, 80), "A", 1000, 7000, nil), 7000, 0, false},
		{"ipv6", framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "A", 1, 9000, data), 9000, 0, false},
		{"fin without ack", framegen.TCP(toDir, client(2, 1), netip.AddrPortFrom(vip, 80), "F", 1000, 0, data), 0, 1000 + uint32(len(data)) + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("rr", 1), Options{})
			out := make([]byte, ResetMaxLen)
			n := f.Reset(tc.frame, out)
			if n == 0 {
				t.Fatal("Reset wrote nothing")
			}
			reply := out[:n]
			if !bytes.Equal(reply[0:6], tc.frame[6:12]) || !bytes.Equal(reply[6:12], tc.frame[0:6]) {
				t.Fatal("Ethernet addresses not turned around")
			}
			pkt := gopacket.NewPacket(reply, layers.LayerTypeEthernet, gopacket.Default)
			orig := gopacket.NewPacket(tc.frame, layers.LayerTypeEthernet, gopacket.Default)
			if e := pkt.ErrorLayer(); e != nil {
				t.Fatalf("reset does not decode: %v", e.Error())
			}
			if (pkt.Layer(layers.LayerTypeDot1Q) == nil) != (orig.Layer(layers.LayerTypeDot1Q) == nil) {
				t.Fatal("VLAN tag not kept")
			}
			if nf, of := pkt.NetworkLayer().NetworkFlow(), orig.NetworkLayer().NetworkFlow(); nf != of.Reverse() {
				t.Fatalf("addresses %v, want %v", nf, of.Reverse())
			}
			r := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
			o := orig.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if r.SrcPort != o.DstPort || r.DstPort != o.SrcPort || !r.RST || r.ACK != tc.ackFlag || r.SYN || r.FIN ||
				r.Seq != tc.seq || r.Ack != tc.ack || len(r.Payload) != 0 {
				t.Fatalf("reset %+v, want ports turned around, seq %d ack %d (ACK flag %v)", r, tc.seq, tc.ack, tc.ackFlag)
			}
			// Checksums: the IPv4 header's, and TCP's over its pseudo-header.
			ipl := pkt.NetworkLayer()
			hdr := ipl.LayerContents()
			src, dst := ipl.NetworkFlow().Endpoints()
			sum := wire.Sum(src.Raw(), wire.Sum(dst.Raw(), 0)) + protoTCP + 20
			if ip4, ok := ipl.(*layers.IPv4); ok && (wire.Fold(wire.Sum(hdr, 0)) != 0 || ip4.Flags&layers.IPv4DontFragment == 0 || ip4.TTL != 64) {
				t.Fatal("bad IPv4 header")
			}
			if wire.Fold(wire.Sum(r.LayerContents(), sum)) != 0 {
				t.Fatal("bad TCP checksum")
			}
		})
	}
	f := newForwarder(t, testConfig("rr", 1), Options{})
	for name, frame := range map[string][]byte{
		"reset":   framegen.TCP(toDir, client(0, 1), netip.AddrPortFrom(vip, 80), "R", 1, 0, nil),
		"udp":     framegen.UDP(toDir, client(0, 1), netip.AddrPortFrom(vip, 53), []byte("q")),
		"garbage": {1, 2, 3},
	} {
		if n := f.Reset(frame, make([]byte, ResetMaxLen)); n != 0 {
			t.Errorf("%s answered with %d bytes", name, n)
		}
	}
	if n := f.Reset(ack(client(0, 1)), make([]byte, 20)); n != 0 {
		t.Errorf("wrote %d bytes into a 20-byte buffer", n)
	}
}

// TestResetDataOffset: a reset answering a segment without ACK
// acknowledges its length, which its data offset (TCP options) gives; a
// data offset past the segment's end gives none, and draws no reset
// (its ACK once wrapped below the segment's sequence number).
func TestResetDataOffset(t *testing.T) {
	dst := netip.AddrPortFrom(vip, 80)
	withOpts := framegen.TCP(toDir, client(0, 1), dst, "F", 1000, 0, []byte("\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00hello"))
	withOpts[14+20+12] = 8 << 4 // 12 bytes of options, then "hello"
	past := framegen.TCP(toDir, client(1, 1), dst, "F", 1000, 0, nil)
	past[14+20+12] = 15 << 4 // 60-byte header in a 20-byte segment
	for _, tc := range []struct {
		name  string
		frame []byte
		want  bool
		ack   uint32
	}{
		{"options", withOpts, true, 1000 + 5 + 1},
		{"offset past the segment", past, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("rr", 1), Options{})
			out := make([]byte, ResetMaxLen)
			n := f.Reset(tc.frame, out)
			if (n != 0) != tc.want {
				t.Fatalf("Reset wrote %d bytes, want a reset: %v", n, tc.want)
			}
			if n == 0 {
				return
			}
			r := gopacket.NewPacket(out[:n], layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeTCP).(*layers.TCP)
			if r.Ack != tc.ack || !r.RST || !r.ACK {
				t.Fatalf("reset ack %d (RST %v ACK %v), want %d", r.Ack, r.RST, r.ACK, tc.ack)
			}
		})
	}
}

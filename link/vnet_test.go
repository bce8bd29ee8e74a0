package link

import (
	"bytes"
	"testing"
)

func TestVnetHdrRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		o    Offload
	}{
		{"plain", Offload{}},
		{"partial udp", Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 6}},
		{"tcp4 super-frame", Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 16, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66}},
		{"tcp6 ecn", Offload{CsumPartial: true, CsumStart: 54, CsumOffset: 16, GSOType: GSOTCPv6 | GSOECN, GSOSize: 1428, HdrLen: 86}},
		{"udp l4", Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 6, GSOType: GSOUDPL4, GSOSize: 1200, HdrLen: 42}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b [vnetHdrLen]byte
			encodeVnetHdr(b[:], c.o)
			got, ok := decodeVnetHdr(b[:])
			if !ok || got != c.o {
				t.Fatalf("round trip: got %+v ok=%v, want %+v", got, ok, c.o)
			}
			if got.IsSuperFrame() != (c.o.GSOType&^GSOECN != 0) {
				t.Fatalf("IsSuperFrame = %v", got.IsSuperFrame())
			}
		})
	}
	// Checksum offsets without CsumPartial mean nothing and are not sent.
	var b [vnetHdrLen]byte
	encodeVnetHdr(b[:], Offload{CsumStart: 9, CsumOffset: 9})
	if !bytes.Equal(b[:], make([]byte, vnetHdrLen)) {
		t.Fatalf("offsets without NEEDS_CSUM encoded: % x", b)
	}
	if _, ok := decodeVnetHdr(b[:9]); ok {
		t.Fatal("decoded a 9-byte header")
	}
}

func TestInsertTag(t *testing.T) {
	frame := ether(-1, etherTypeIPv4, ipv4(17, cip4, vip4, []byte("payload")))
	tagged := ether(0x2064, etherTypeIPv4, ipv4(17, cip4, vip4, []byte("payload")))
	buf := make([]byte, vlanHeadroom+len(frame)+10)
	copy(buf[vlanHeadroom:], frame)
	got := insertTag(buf, len(frame), etherTypeVLAN, 0x2064)
	if !bytes.Equal(got, tagged) {
		t.Fatalf("tag inserted wrong:\n got % x\nwant % x", got, tagged)
	}
	if &got[0] != &buf[0] {
		t.Fatal("the tagged frame does not start at the headroom")
	}
	// A runt has no MAC addresses to move: left alone.
	copy(buf[vlanHeadroom:], []byte{1, 2, 3})
	if got := insertTag(buf, 3, etherTypeVLAN, 1); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("runt changed: % x", got)
	}
	o := Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 16, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66}
	if s := o.shiftForTag(); s.CsumStart != 38 || s.HdrLen != 70 || s.CsumOffset != 16 || s.GSOSize != 1448 {
		t.Fatalf("shiftForTag: %+v", s)
	}
	if s := (Offload{}).shiftForTag(); s != (Offload{}) {
		t.Fatalf("shiftForTag of no offload: %+v", s)
	}
}

func FuzzVnetHdr(f *testing.F) {
	var b [vnetHdrLen]byte
	encodeVnetHdr(b[:], Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 16, GSOType: GSOTCPv4, GSOSize: 1448, HdrLen: 66})
	f.Add(b[:])
	f.Add([]byte{})
	f.Add(make([]byte, vnetHdrLen))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, ok := decodeVnetHdr(in)
		if ok != (len(in) >= vnetHdrLen) {
			t.Fatalf("ok=%v for %d bytes", ok, len(in))
		}
		if !ok {
			return
		}
		var out [vnetHdrLen]byte
		encodeVnetHdr(out[:], o)
		again, _ := decodeVnetHdr(out[:])
		if again != o && o.CsumPartial {
			t.Fatalf("re-encoding changed %+v to %+v", o, again)
		}
	})
}

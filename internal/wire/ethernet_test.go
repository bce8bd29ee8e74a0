package wire

import (
	"encoding/binary"
	"testing"
)

// frame builds a link header with the given EtherType/TPID words after the
// MACs (each tag is TPID then TCI), followed by payload.
func frame(words []uint16, payload ...byte) []byte {
	b := make([]byte, 12, 12+2*len(words)+len(payload))
	for i := range 12 {
		b[i] = byte(i + 1)
	}
	for _, w := range words {
		b = binary.BigEndian.AppendUint16(b, w)
	}
	return append(b, payload...)
}

func TestEtherType(t *testing.T) {
	ip := []byte{0x45, 0, 0, 20}
	tests := []struct {
		name    string
		b       []byte
		et      uint16
		payload int
		ok      bool
		tags    []Tag
	}{
		{"untagged IPv4", frame([]uint16{EtherTypeIPv4}, ip...), EtherTypeIPv4, 14, true, nil},
		{"untagged, nothing after", frame([]uint16{EtherTypeARP}), EtherTypeARP, 14, true, nil},
		{"802.1Q", frame([]uint16{EtherTypeVLAN, 0xa007, EtherTypeIPv6}, ip...), EtherTypeIPv6, 18, true,
			[]Tag{{EtherTypeVLAN, 0xa007}}},
		{"802.1ad alone", frame([]uint16{EtherTypeQinQ, 100, EtherTypeIPv4}, ip...), EtherTypeIPv4, 18, true,
			[]Tag{{EtherTypeQinQ, 100}}},
		{"QinQ 88a8+8100", frame([]uint16{EtherTypeQinQ, 100, EtherTypeVLAN, 0x2007, EtherTypeIPv4}, ip...), EtherTypeIPv4, 22, true,
			[]Tag{{EtherTypeQinQ, 100}, {EtherTypeVLAN, 0x2007}}},
		{"stacked 8100+8100", frame([]uint16{EtherTypeVLAN, 5, EtherTypeVLAN, 6, EtherTypeARP}), EtherTypeARP, 22, true,
			[]Tag{{EtherTypeVLAN, 5}, {EtherTypeVLAN, 6}}},
		// A third tag, or an S-tag inside a C-tag, is not skipped: the
		// caller sees a tag's TPID, which is nobody's payload.
		{"three tags", frame([]uint16{EtherTypeQinQ, 1, EtherTypeVLAN, 2, EtherTypeVLAN, 3, EtherTypeIPv4}), EtherTypeVLAN, 22, true,
			[]Tag{{EtherTypeQinQ, 1}, {EtherTypeVLAN, 2}}},
		{"S-tag inside C-tag", frame([]uint16{EtherTypeVLAN, 1, EtherTypeQinQ, 2, EtherTypeIPv4}), EtherTypeQinQ, 18, true,
			[]Tag{{EtherTypeVLAN, 1}}},
		{"two S-tags", frame([]uint16{EtherTypeQinQ, 1, EtherTypeQinQ, 2, EtherTypeIPv4}), EtherTypeQinQ, 18, true,
			[]Tag{{EtherTypeQinQ, 1}}},
		{"empty", nil, 0, 0, false, nil},
		{"13 bytes", frame([]uint16{EtherTypeIPv4})[:13], 0, 0, false, nil},
		{"outer tag cut", frame([]uint16{EtherTypeQinQ, 100, EtherTypeIPv4})[:17], 0, 0, false, nil},
		{"802.1Q tag cut", frame([]uint16{EtherTypeVLAN, 100})[:15], 0, 0, false, nil},
		{"inner tag cut", frame([]uint16{EtherTypeQinQ, 100, EtherTypeVLAN, 7, EtherTypeIPv4})[:21], 0, 0, false, nil},
		{"inner tag exactly", frame([]uint16{EtherTypeVLAN, 100, EtherTypeVLAN, 7, EtherTypeIPv4}), EtherTypeIPv4, 22, true,
			[]Tag{{EtherTypeVLAN, 100}, {EtherTypeVLAN, 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			et, payload, ok := EtherType(tt.b)
			if et != tt.et || payload != tt.payload || ok != tt.ok {
				t.Fatalf("EtherType = %#04x, %d, %v; want %#04x, %d, %v", et, payload, ok, tt.et, tt.payload, tt.ok)
			}
			tags, n := Tags(tt.b)
			if n != len(tt.tags) {
				t.Fatalf("Tags: %d tags %+v, want %+v", n, tags[:n], tt.tags)
			}
			for i, want := range tt.tags {
				if tags[i] != want {
					t.Errorf("tag %d = %+v, want %+v", i, tags[i], want)
				}
			}
			for i := n; i < len(tags); i++ {
				if tags[i] != (Tag{}) {
					t.Errorf("unused tag %d = %+v, want zero", i, tags[i])
				}
			}
		})
	}
}

func TestTagVID(t *testing.T) {
	if v := (Tag{EtherTypeVLAN, 0xe00f}).VID(); v != 15 {
		t.Fatalf("VID = %d, want 15 (priority bits dropped)", v)
	}
}

// refEtherType is EtherType written as the rule it implements: at most
// two tags, the second one only 802.1Q.
func refEtherType(b []byte) (uint16, int, bool) {
	off := 12
	for depth := 0; ; depth++ {
		if len(b) < off+2 {
			return 0, 0, false
		}
		et := binary.BigEndian.Uint16(b[off:])
		tag := (depth == 0 && (et == EtherTypeVLAN || et == EtherTypeQinQ)) || (depth == 1 && et == EtherTypeVLAN)
		if !tag {
			return et, off + 2, true
		}
		off += TagLen
	}
}

func FuzzEtherType(f *testing.F) {
	f.Add(frame([]uint16{EtherTypeIPv4}))
	f.Add(frame([]uint16{EtherTypeVLAN, 7, EtherTypeIPv6}))
	f.Add(frame([]uint16{EtherTypeQinQ, 7, EtherTypeVLAN, 8, EtherTypeARP}))
	f.Add(frame([]uint16{EtherTypeVLAN, 7, EtherTypeVLAN, 8, EtherTypeVLAN, 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		et, payload, ok := EtherType(b)
		ret, rpayload, rok := refEtherType(b)
		if et != ret || payload != rpayload || ok != rok {
			t.Fatalf("EtherType(%x) = %#04x, %d, %v; reference %#04x, %d, %v", b, et, payload, ok, ret, rpayload, rok)
		}
		tags, n := Tags(b)
		if !ok {
			if n != 0 {
				t.Fatalf("%d tags on a frame EtherType refuses", n)
			}
			return
		}
		if payload > len(b) || payload != EthernetLen+n*TagLen {
			t.Fatalf("payload %d of %d bytes with %d tags", payload, len(b), n)
		}
		if n == 2 && tags[1].TPID != EtherTypeVLAN {
			t.Fatalf("inner tag %+v", tags[1])
		}
	})
}

func TestEthernetNoAllocations(t *testing.T) {
	b := frame([]uint16{EtherTypeQinQ, 100, EtherTypeVLAN, 7, EtherTypeIPv4}, 0x45)
	var sink int
	if a := testing.AllocsPerRun(1000, func() {
		_, p, _ := EtherType(b)
		_, n := Tags(b)
		sink += p + n
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
	_ = sink
}

package link

import (
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// TestSetVIPMapsReplacesAll: a VIP set replaced by another as large,
// together more than a map holds (600 VIPs by 600 others, in maps of
// 1024), ends in the map exactly, and so does the next change. New VIPs
// put first filled the map before the old ones went: the put failed, the
// map kept the old set and part of the new, and every later change failed
// the same way. It creates two BPF maps and nothing else.
func TestSetVIPMapsReplacesAll(t *testing.T) {
	testutil.NeedRoot(t)
	vip4, vip6, err := newVIPMaps()
	if err != nil {
		t.Fatal(err)
	}
	defer vip4.Close()
	defer vip6.Close()
	set := func(first byte) []netip.Addr {
		var out []netip.Addr
		for i := range 600 {
			out = append(out, netip.AddrFrom4([4]byte{198, 18, first + byte(i>>8), byte(i)}),
				netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(i), 14: byte(i >> 8), 13: first}))
		}
		return out
	}
	for _, first := range []byte{10, 20, 10} {
		vips := set(first)
		if err := setVIPMaps(vip4, vip6, vips); err != nil {
			t.Fatalf("VIPs from %d: %v", first, err)
		}
		var k4 [4]byte
		var k6 [16]byte
		var v uint8
		n4, n6 := 0, 0
		for it := vip4.Iterate(); it.Next(&k4, &v); n4++ {
			if k4[2] < first || k4[2] > first+2 {
				t.Fatalf("VIPs from %d: the map still holds %v", first, k4)
			}
		}
		for it := vip6.Iterate(); it.Next(&k6, &v); n6++ {
		}
		if n4 != 600 || n6 != 600 {
			t.Fatalf("VIPs from %d: the maps hold %d and %d, want 600 each", first, n4, n6)
		}
	}
}

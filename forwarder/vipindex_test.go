package forwarder

import (
	"fmt"
	"net/netip"
	"testing"
)

// TestVIPIndexMatchesMaps checks the data path's VIP index against the
// maps it stands in for, over VIPs with one, a few and many services
// (the map fallback), both families, and addresses that differ only in
// family (v4 and v4-mapped v6) or are no VIP at all; with few VIPs (the
// linear scan) and many (the hash table).
func TestVIPIndexMatchesMaps(t *testing.T) {
	for _, extra := range []int{0, 1, 40} {
		t.Run(fmt.Sprintf("extra=%d", extra), func(t *testing.T) { testVIPIndex(t, extra) })
	}
}

func testVIPIndex(t *testing.T, extra int) {
	vips := []netip.Addr{
		netip.MustParseAddr("198.18.0.100"),
		netip.MustParseAddr("198.18.0.101"),
		netip.MustParseAddr("2001:db8::100"),
		netip.MustParseAddr("198.18.0.102"),
	}
	st := &state{byKey: map[svcKey]*service{}, vips: map[netip.Addr]struct{}{}}
	add := func(proto uint8, vip netip.Addr, port uint16) {
		k := svcKey{proto: proto, vip: vip, port: port}
		s := &service{key: k, idx: len(st.services)}
		st.services = append(st.services, s)
		st.byKey[k] = s
		st.vips[vip] = struct{}{}
	}
	add(protoTCP, vips[0], 80)
	add(protoTCP, vips[0], 0)
	add(protoUDP, vips[0], 53)
	add(protoTCP, vips[1], 443)
	add(protoTCP, vips[2], 80)
	add(protoUDP, vips[2], 0)
	for p := range uint16(vipScanMax + 3) { // more than the index scans
		add(protoTCP, vips[3], 8000+p)
	}
	add(protoUDP, vips[3], 0)
	for i := range extra {
		vip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if i%2 == 1 {
			vip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
		}
		add(protoTCP, vip, 80)
		vips = append(vips, vip)
	}
	if linear := len(st.vips) <= vipLinearMax; linear != (newVIPIndex(st.services).shift == 0) {
		t.Fatalf("%d VIPs: linear scan %v, want %v", len(st.vips), !linear, linear)
	}
	st.vipx = newVIPIndex(st.services)

	probes := append([]netip.Addr{
		netip.MustParseAddr("::ffff:198.18.0.100"),
		netip.MustParseAddr("198.18.0.1"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("fe80::100%eth0"),
	}, vips...)
	for _, vip := range probes {
		_, isVIP := st.vips[vip]
		if got := st.vipx.find(vip) != nil; got != isVIP {
			t.Errorf("%v: index says VIP %v, map %v", vip, got, isVIP)
		}
		for _, proto := range []uint8{protoTCP, protoUDP, protoICMP} {
			for _, port := range []uint16{0, 53, 80, 443, 8000, 8005, 8000 + vipScanMax + 2, 9999} {
				want := st.lookupServiceMap(proto, vip, port)
				if got := st.lookupService(proto, vip, port); got != want {
					t.Errorf("%v proto %d port %d: %s, map says %s", vip, proto, port, svcName(got), svcName(want))
				}
			}
		}
	}
	var empty vipIndex
	if empty.find(vips[0]) != nil {
		t.Error("empty index finds a VIP")
	}
}

func svcName(s *service) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("service %d (%d %v:%d)", s.idx, s.key.proto, s.key.vip, s.key.port)
}

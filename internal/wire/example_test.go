package wire_test

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/drlb/drlb/internal/wire"
)

// A double-tagged (QinQ) frame carrying IPv6 with a hop-by-hop header in
// front of UDP: find the UDP header, then fill in its checksum.
func Example() {
	src, dst := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	frame := make([]byte, 22+40+8+8+4)
	binary.BigEndian.PutUint16(frame[12:], wire.EtherTypeQinQ)
	binary.BigEndian.PutUint16(frame[14:], 100) // S-tag: VLAN 100
	binary.BigEndian.PutUint16(frame[16:], wire.EtherTypeVLAN)
	binary.BigEndian.PutUint16(frame[18:], 7) // C-tag: VLAN 7
	binary.BigEndian.PutUint16(frame[20:], wire.EtherTypeIPv6)
	ip := frame[22:]
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], 8+8+4)
	ip[6] = wire.IPv6HopByHop
	copy(ip[8:24], src.AsSlice())
	copy(ip[24:40], dst.AsSlice())
	ip[40] = 17 // hop-by-hop header (8 bytes of padding options), then UDP
	udp := ip[48:]
	binary.BigEndian.PutUint16(udp[0:], 5353)
	binary.BigEndian.PutUint16(udp[2:], 53)
	binary.BigEndian.PutUint16(udp[4:], 8+4)
	copy(udp[8:], "ping")

	et, l3, ok := wire.EtherType(frame)
	tags, n := wire.Tags(frame)
	fmt.Printf("ethertype %#04x at %d (ok %v), %d tags: %d/%d\n", et, l3, ok, n, tags[0].VID(), tags[1].VID())

	w, err := wire.WalkIPv6(frame[:l3+40+int(binary.BigEndian.Uint16(frame[l3+4:]))], frame[l3+6], l3+40)
	fmt.Println("upper layer", w.Proto, "at", w.Offset, "error", err)

	seg := frame[w.Offset:]
	sum := wire.Fold(wire.Sum(seg, wire.PseudoHeaderSum(src, dst, w.Proto, len(seg))))
	binary.BigEndian.PutUint16(seg[6:], sum)
	fmt.Printf("checksum %#04x, verifies to %d\n", sum, wire.Fold(wire.Sum(seg, wire.PseudoHeaderSum(src, dst, w.Proto, len(seg)))))
	// Output:
	// ethertype 0x86dd at 22 (ok true), 2 tags: 100/7
	// upper layer 17 at 70 error <nil>
	// checksum 0xb072, verifies to 0
}

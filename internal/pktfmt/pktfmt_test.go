package pktfmt

import (
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
)

var (
	l2  = framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	cli = netip.MustParseAddrPort("198.18.1.10:40000")
	vip = netip.MustParseAddrPort("198.18.0.100:80")
)

func TestDescribe(t *testing.T) {
	tagged := l2
	tagged.VLAN = 10
	qinq := tagged
	qinq.Outer = 100
	stacked := qinq
	stacked.OuterTPID = 0x8100
	svlan := l2
	svlan.Outer = 7
	triple := framegen.TCP(qinq, cli, vip, "S", 1, 0, nil)
	triple = append(triple[:20:20], append([]byte{0x81, 0x00, 0, 3}, triple[20:]...)...)
	tests := []struct {
		frame []byte
		want  string
	}{
		{framegen.TCP(l2, cli, vip, "S", 1, 0, nil), "tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S]"},
		{framegen.TCP(tagged, cli, vip, "PA", 1, 1, []byte("x")), "vlan 10 tcp 198.18.1.10:40000 -> 198.18.0.100:80 [P.]"},
		{framegen.UDP(l2, cli, netip.MustParseAddrPort("198.18.0.100:53"), nil), "udp 198.18.1.10:40000 -> 198.18.0.100:53"},
		{framegen.TCP(l2, netip.MustParseAddrPort("[2001:2::10]:5"), netip.MustParseAddrPort("[2001:2::100]:80"), "FA", 1, 1, nil), "tcp [2001:2::10]:5 -> [2001:2::100]:80 [F.]"},
		{framegen.ARPRequest(l2, cli.Addr(), vip.Addr()), "arp who-has 198.18.0.100 tell 198.18.1.10"},
		{framegen.ICMPEcho(l2, cli.Addr(), vip.Addr(), 1), "icmp 198.18.1.10 -> 198.18.0.100 EchoRequest"},
		{framegen.IPv4Fragments(l2, cli, netip.MustParseAddrPort("198.18.0.100:53"), make([]byte, 3000), 1480, 9)[1], "ip 198.18.1.10 -> 198.18.0.100 frag id 9 offset 1480"},
		{[]byte{1, 2, 3}, "malformed: Ethernet packet too small"},
		{framegen.TCP(qinq, cli, vip, "S", 1, 0, nil), "svlan 100 vlan 10 tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S]"},
		{framegen.UDP(stacked, cli, netip.MustParseAddrPort("198.18.0.100:53"), nil), "vlan 100 vlan 10 udp 198.18.1.10:40000 -> 198.18.0.100:53"},
		{framegen.ARPRequest(svlan, cli.Addr(), vip.Addr()), "svlan 7 arp who-has 198.18.0.100 tell 198.18.1.10"},
		{triple, "svlan 100 vlan 10 non-ip (more than two vlan tags)"},
		{framegen.TCP(qinq, cli, vip, "S", 1, 0, nil)[:20], "malformed: 802.1Q tag length 2 too short"}, // drlb: truncated, so no tags named,
	}
	for _, tc := range tests {
		if got := Describe(tc.frame); got != tc.want {
			t.Errorf("Describe = %q, want %q", got, tc.want)
		}
	}
}

func FuzzDescribe(f *testing.F) {
	f.Add(framegen.TCP(l2, cli, vip, "S", 1, 0, nil))
	f.Add(framegen.ARPRequest(l2, cli.Addr(), vip.Addr()))
	f.Add(framegen.TCP(framegen.L2{Src: l2.Src, Dst: l2.Dst, Outer: 100, VLAN: 10}, cli, vip, "S", 1, 0, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if Describe(frame) == "" {
			t.Fatal("empty description")
		}
	})
}

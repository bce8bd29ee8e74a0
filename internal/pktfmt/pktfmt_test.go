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
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if Describe(frame) == "" {
			t.Fatal("empty description")
		}
	})
}

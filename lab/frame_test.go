package lab

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestParseFrame(t *testing.T) {
	l2 := framegen.L2{Src: macRouter, Dst: macDirector}
	syn := framegen.TCP(l2, testClient, testVIP, framegen.SYN, 1, 0, []byte("hello"))
	tagged := framegen.TCP(framegen.L2{Src: macRouter, Dst: macDirector, VLAN: 7}, testClient, testVIP, "SA", 1, 2, nil)
	qinq := framegen.TCP(framegen.L2{Src: macRouter, Dst: macDirector, Outer: 100, VLAN: 7}, testClient, testVIP, "SA", 1, 2, nil)
	stacked := framegen.ARPRequest(framegen.L2{Src: macRouter, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Outer: 100, OuterTPID: 0x8100, VLAN: 7}, testRouter, testVIP.Addr())
	who := framegen.ARPRequest(framegen.L2{Src: macRouter, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, testRouter, testVIP.Addr())
	for _, tc := range []struct {
		name  string
		frame []byte
		check func(t *testing.T, f frame)
	}{
		{"tcp syn", syn, func(t *testing.T, f frame) {
			if !f.isTCP(testClient, testVIP) || !f.isSYN() || f.isSYNACK() || f.tcpPayloadSize != 5 || len(f.ip) != 20+20+5 {
				t.Errorf("%+v", f)
			}
		}},
		{"tagged syn-ack", tagged, func(t *testing.T, f frame) {
			if !f.isTCP(testClient, testVIP) || !f.isSYNACK() {
				t.Errorf("%+v", f)
			}
		}},
		{"QinQ syn-ack", qinq, func(t *testing.T, f frame) {
			if !f.isTCP(testClient, testVIP) || !f.isSYNACK() || len(f.ip) != 40 {
				t.Errorf("%+v", f)
			}
		}},
		{"802.1Q in 802.1Q arp who-has", stacked, func(t *testing.T, f frame) {
			if f.arpOp != arpRequest || f.arpTargetIP != testVIP.Addr() || f.arpSenderIP != testRouter {
				t.Errorf("%+v", f)
			}
		}},
		{"QinQ inner tag cut", qinq[:20], func(t *testing.T, f frame) {
			if f.etherType != 0x88a8 || f.ip != nil {
				t.Errorf("%+v", f)
			}
		}},
		{"arp who-has", who, func(t *testing.T, f frame) {
			if f.arpOp != arpRequest || f.arpTargetIP != testVIP.Addr() || f.arpSenderIP != testRouter || f.arpSenderMAC.String() != macRouter.String() {
				t.Errorf("%+v", f)
			}
		}},
		{"padded arp reply", append(makeARPReply(macDirector, macRouter, testVIP.Addr(), testRouter), make([]byte, 18)...), func(t *testing.T, f frame) {
			if f.arpOp != arpReply || f.arpSenderIP != testVIP.Addr() {
				t.Errorf("%+v", f)
			}
		}},
		{"padded tcp", append(append([]byte(nil), syn...), 0, 0, 0, 0), func(t *testing.T, f frame) {
			if len(f.ip) != 20+20+5 {
				t.Errorf("padding kept in the IP packet: %d bytes", len(f.ip))
			}
		}},
		{"short", syn[:10], func(t *testing.T, f frame) {
			if f.etherType != 0 || f.ip != nil {
				t.Errorf("%+v", f)
			}
		}},
		{"truncated ip", syn[:30], func(t *testing.T, f frame) {
			if f.ipSrc.IsValid() {
				t.Errorf("%+v", f)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, parseFrame(time.Time{}, tc.frame)) })
	}
}

func FuzzParseFrame(f *testing.F) {
	l2 := framegen.L2{Src: macRouter, Dst: macDirector}
	f.Add(framegen.TCP(l2, testClient, testVIP, framegen.SYN, 1, 0, nil))
	f.Add(framegen.TCP(framegen.L2{Src: macRouter, Dst: macDirector, VLAN: 9}, testClient, testVIP, "FA", 1, 0, []byte("x")))
	f.Add(framegen.TCP(framegen.L2{Src: macRouter, Dst: macDirector, Outer: 8, VLAN: 9}, testClient, testVIP, "FA", 1, 0, []byte("x")))
	f.Add(framegen.ARPRequest(l2, testRouter, testVIP.Addr()))
	f.Add(framegen.UDP(l2, testClient, netip.MustParseAddrPort("198.18.0.100:7"), []byte("echo")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := parseFrame(time.Time{}, b)
		if len(fr.ip) > len(b) {
			t.Fatalf("IP packet of %d bytes from a %d-byte frame", len(fr.ip), len(b))
		}
		_ = flagNames(fr.tcpFlags)
	})
}

func TestFlagNames(t *testing.T) {
	for fl, want := range map[uint8]string{tcpSYN: "[S]", tcpSYN | tcpACK: "[S.]", tcpFIN | tcpACK: "[F.]", 0x18: "[P.]", 0: "[]"} {
		if got := flagNames(fl); got != want {
			t.Errorf("flagNames(%#x) = %q, want %q", fl, got, want)
		}
	}
}

func TestParseFrameMSSAndUDP(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macRS1, DstMAC: macRouter, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
		SrcIP: testVIP.Addr().AsSlice(), DstIP: testClient.Addr().AsSlice()}
	tcp := &layers.TCP{SrcPort: 80, DstPort: 40000, SYN: true, ACK: true, Window: 1000, Options: []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0x50}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
	}}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	f := parseFrame(time.Now(), buf.Bytes())
	if !f.isSYNACK() || f.mss != 1360 || !f.df || f.sport != 80 {
		t.Errorf("SYN-ACK with MSS 1360: %+v", f)
	}
	u := parseFrame(time.Now(), framegen.UDP(framegen.L2{Src: macRouter, Dst: macDirector}, testClient, netip.AddrPortFrom(testVIP.Addr(), 7), make([]byte, 100)))
	if u.proto != protoUDP || u.sport != testClient.Port() || u.dport != 7 || u.mss != 0 || len(u.ip) != 128 {
		t.Errorf("UDP: %+v", u)
	}
	for _, opts := range [][]byte{nil, {0}, {1, 1, 1}, {2}, {2, 4, 5}, {8, 0, 2, 4, 5, 0x50}, {3, 3, 7, 2, 4, 5, 0x50}} {
		want := uint16(0)
		if len(opts) == 7 {
			want = 1360
		}
		if got := mssOption(opts); got != want {
			t.Errorf("mssOption(%v) = %d, want %d", opts, got, want)
		}
	}
}

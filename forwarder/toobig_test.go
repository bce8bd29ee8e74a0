package forwarder

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/wire"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func TestTooBig(t *testing.T) {
	cfg := testConfig("rr", 2)
	f := newForwarder(t, cfg, Options{MTU: 1400})
	c6 := netip.MustParseAddrPort("[2001:2:0:1::10]:4000")
	tagged := toDir
	tagged.VLAN = 12
	qinq := tagged
	qinq.Outer = 300
	big := make([]byte, 1460)
	noDF := framegen.TCP(toDir, client(2, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big)
	noDF[14+6] &^= 0x40
	for _, tc := range []struct {
		name   string
		frame  []byte
		super  bool
		reason Reason
	}{
		{"ipv4 DF", framegen.TCP(toDir, client(0, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big), false, ReasonTooBig},
		{"ipv4 DF tagged", framegen.TCP(tagged, client(1, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big), false, ReasonTooBig},
		{"ipv4 no DF", noDF, false, ReasonTooBigNoDF},
		{"ipv6", framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, big), false, ReasonTooBig},
		{"ipv6 qinq", framegen.TCP(qinq, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, append(big, big...)), false, ReasonTooBig},
		{"ipv4 DF qinq", framegen.TCP(qinq, client(5, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big), false, ReasonTooBig},
		{"super-frame", framegen.TCP(toDir, client(3, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big), true, ReasonNew},
		{"fits", framegen.TCP(toDir, client(4, 1), netip.AddrPortFrom(vip, 80), "S", 1, 0, big[:1300]), false, ReasonNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]byte(nil), tc.frame...)
			res := f.Process(in, &Meta{Time: t0, Super: tc.super})
			if res.Reason != tc.reason {
				t.Fatalf("reason %v, want %v", res.Reason, tc.reason)
			}
			if tc.reason != ReasonTooBig {
				return
			}
			if !bytes.Equal(in, tc.frame) {
				t.Fatal("refused frame was modified")
			}
			out := make([]byte, TooBigMaxLen)
			n := f.TooBig(in, out)
			if n == 0 {
				t.Fatal("TooBig wrote nothing")
			}
			checkTooBig(t, tc.frame, out[:n])
		})
	}
	if n := f.TooBig([]byte{1, 2, 3}, make([]byte, TooBigMaxLen)); n != 0 {
		t.Fatalf("TooBig on garbage wrote %d bytes", n)
	}
}

func checkTooBig(t *testing.T, orig, reply []byte) {
	t.Helper()
	if !bytes.Equal(reply[0:6], orig[6:12]) || !bytes.Equal(reply[6:12], orig[0:6]) {
		t.Fatal("Ethernet addresses not turned around")
	}
	pkt := gopacket.NewPacket(reply, layers.LayerTypeEthernet, gopacket.Default)
	if e := pkt.ErrorLayer(); e != nil {
		t.Fatalf("reply does not decode: %v", e.Error())
	}
	origPkt := gopacket.NewPacket(orig, layers.LayerTypeEthernet, gopacket.Default)
	if (pkt.Layer(layers.LayerTypeDot1Q) == nil) != (origPkt.Layer(layers.LayerTypeDot1Q) == nil) {
		t.Fatal("VLAN tag not kept")
	}
	if got, want := dot1qVIDs(reply), dot1qVIDs(orig); !slices.Equal(got, want) || !bytes.Equal(reply[12:12+4*len(want)], orig[12:12+4*len(want)]) {
		t.Fatalf("tags %v, want the original's %v", got, want)
	}
	nl, onl := pkt.NetworkLayer().NetworkFlow(), origPkt.NetworkLayer().NetworkFlow()
	if nl.Src() != onl.Dst() || nl.Dst() != onl.Src() {
		t.Fatalf("addresses %v, want from the VIP to the client (%v)", nl, onl.Reverse())
	}
	l3 := len(reply) - len(pkt.NetworkLayer().LayerPayload()) - len(pkt.NetworkLayer().LayerContents())
	ip := reply[l3:]
	if ic, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		if ic.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || ic.Seq != 1400 {
			t.Fatalf("ICMP %v mtu %d, want frag-needed 1400", ic.TypeCode, ic.Seq)
		}
		if wire.Fold(wire.Sum(ip[:20], 0)) != 0 || wire.Fold(wire.Sum(ip[20:], 0)) != 0 {
			t.Fatal("bad IPv4 or ICMP checksum")
		}
		if !bytes.Equal(ic.Payload, framegen.IPPacket(orig)[:len(ic.Payload)]) || len(ic.Payload) < 28 {
			t.Fatal("quoted packet is not the original's start")
		}
		return
	}
	ic, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
	if !ok || ic.TypeCode != layers.CreateICMPv6TypeCode(2, 0) {
		t.Fatalf("not an ICMPv6 packet too big: %v", pkt)
	}
	plen := len(ip) - 40
	// The pseudo-header from the packet's own address bytes.
	if wire.Fold(wire.Sum(ip[40:], wire.Sum(ip[8:40], uint32(plen)+protoICMPv6))) != 0 {
		t.Fatal("bad ICMPv6 checksum")
	}
	if len(ip) > 1280 {
		t.Fatalf("ICMPv6 error of %d bytes exceeds the minimum MTU", len(ip))
	}
}

// TestTooBigNotAnswered: a frame over the MTU that must draw no ICMP error
// is dropped without one: an ICMP error (RFC 1122 3.2.2, RFC 4443 2.4(e);
// two hosts doing so could answer each other's errors) and a non-initial
// fragment (RFC 1122 3.2.2; IPVS: "only send ICMP too big on first
// fragment"), which quotes no ports and follows a first fragment that
// drew the error already.
func TestTooBigNotAnswered(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.Services = append(cfg.Services, config.Service{VIP: vip6, Port: 53, Protocol: config.UDP, Scheduler: "rr", RealServers: cfg.Services[2].RealServers})
	f := newForwarder(t, cfg, Options{MTU: 500})
	c := client(0, 2000)
	c6 := netip.MustParseAddrPort("[2001:2:0:1::10]:5353")
	reply := framegen.TCP(framegen.L2{Src: rsMACs[0], Dst: clientMAC}, netip.AddrPortFrom(vip, 80), c, "PA", 9, 2, make([]byte, 1400))
	icmp := framegen.ICMPFragNeeded(toDir, netip.MustParseAddr("198.18.1.1"), vip, framegen.IPPacket(reply)[:548], 1400)
	icmp[14+6] |= 0x40 // DF, as routers send them
	payload := make([]byte, 3000)
	frags := framegen.IPv4Fragments(toDir, client(1, 7000), netip.AddrPortFrom(vip, 53), payload, 1480, 5)
	frags[1][14+6] |= 0x40 // DF on fragments: Linux refragmenting a DF packet
	frags6 := framegen.IPv6Fragments(toDir, c6, netip.AddrPortFrom(vip6, 53), payload, 1232, 5)
	process(t, f, syn(c), t0)
	// The first fragments open the trains (over the MTU too: answered).
	process(t, f, frags[0], t0)
	process(t, f, frags6[0], t0)
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"icmp error", icmp},
		{"ipv4 non-initial fragment", frags[1]},
		{"ipv6 non-initial fragment", frags6[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.Process(append([]byte(nil), tc.frame...), &Meta{Time: t0})
			if res.Verdict != Drop {
				t.Fatalf("%d bytes over a 500-byte MTU: %v/%v, want a drop", len(framegen.IPPacket(tc.frame)), res.Verdict, res.Reason)
			}
			if n := f.TooBig(tc.frame, make([]byte, TooBigMaxLen)); n != 0 {
				t.Fatalf("TooBig answered with %d bytes", n)
			}
		})
	}
}

package director

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestServeOnATrunk: with vlan: 10 (a director on a trunk port), the
// director's own frames carry the tag: the VIP announcement and its ARP
// request for a real server. The real server's tagged answer resolves it,
// and a tagged client's SYN is forwarded with its tag.
func TestServeOnATrunk(t *testing.T) {
	const vid = 10
	rs := netip.MustParseAddr("198.18.0.11")
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, VLAN: vid, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{{Address: rs, Weight: 1}},
	}}}
	wire, d := lan(t, cfg)
	dirMAC := d.port.HardwareAddr()
	tagged := func(match func(gopacket.Packet) bool) func(gopacket.Packet) bool {
		return func(p gopacket.Packet) bool {
			q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q)
			return ok && q.VLANIdentifier == vid && match(p)
		}
	}
	expectFrame(t, wire, "tagged announcement of the VIP", tagged(isARP(layers.ARPRequest, vip)))
	expectFrame(t, wire, "tagged ARP request for the real server", tagged(isARP(layers.ARPRequest, rs)))

	reply := arpReply(rs1MAC, rs, dirMAC, netip.MustParseAddr("198.18.0.2"))
	send(t, wire, addTag(reply, vid))
	deadline := time.Now().Add(5 * time.Second)
	for d.Forwarder().Stats()[0].RealServers[0].MAC == nil {
		if time.Now().After(deadline) {
			t.Fatal("the tagged ARP reply did not resolve the real server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The MAC is stored before the scheduler is rebuilt with the server:
	// a second SetMAC waits for the first (see TestServeAnswersARPAndForwards).
	if err := d.Forwarder().SetMAC(rs, rs1MAC); err != nil {
		t.Fatal(err)
	}
	syn := framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC, VLAN: vid}, netip.MustParseAddrPort("198.18.1.10:40000"), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
	send(t, wire, syn)
	out := expectFrame(t, wire, "forwarded tagged SYN", tagged(func(p gopacket.Packet) bool {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		return ok && tcp.SYN
	}))
	if !bytes.Equal(out[0:6], rs1MAC) || !bytes.Equal(out[12:], syn[12:]) {
		t.Fatalf("forwarded %x -> %x, changed beyond the MACs: %t", out[6:12], out[0:6], !bytes.Equal(out[12:], syn[12:]))
	}
}

// addTag inserts an 802.1Q tag with VLAN ID vid into an untagged frame.
func addTag(frame []byte, vid uint16) []byte {
	out := append([]byte(nil), frame[:12]...)
	out = append(out, 0x81, 0x00, byte(vid>>8), byte(vid))
	return append(out, frame[12:]...)
}

// TestTrunkAnswersOnlyItsVLAN: with vlan: 10 the responder answers
// who-has VIP on VLAN 10 only. On another VLAN, or untagged (the trunk's
// native VLAN), the address is another network's: answering would draw
// that network's traffic for it to the director.
func TestTrunkAnswersOnlyItsVLAN(t *testing.T) {
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	router := netip.MustParseAddr("198.18.0.1")
	for _, tt := range []struct {
		name   string
		vlan   int // the director's vlan:
		tag    int // the request's
		answer bool
	}{
		{"our VLAN", 10, 10, true},
		{"another VLAN", 10, 20, false},
		{"untagged on a trunk", 10, 0, false},
		{"no vlan: configured, tagged", 0, 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, VLAN: tt.vlan, Services: []config.Service{{
				VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
				RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 1}},
			}}}
			port, wire := link.Pipe()
			t.Cleanup(func() { port.Close(); wire.Close() })
			d, err := New(cfg, port, Options{})
			if err != nil {
				t.Fatal(err)
			}
			req := framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: bcast, VLAN: uint16(tt.tag)}, router, vip)
			var out [arp.MaxFrameLen]byte
			if _, ok := d.responder.Handle(req, out[:]); ok != tt.answer {
				t.Fatalf("answered %v, want %v", ok, tt.answer)
			}
		})
	}
}

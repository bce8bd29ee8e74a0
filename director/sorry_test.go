package director

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestSorryServerResolved: the director resolves a sorry server's MAC by
// ARP like a real server's, and sends it new connections while no real
// server can take them (here the only one is quiesced).
func TestSorryServerResolved(t *testing.T) {
	sorry := netip.MustParseAddr("198.18.0.99")
	sorryMAC := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	cfg := &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 64, Services: []config.Service{{
		VIP: vip, Port: 80, Protocol: config.TCP, Scheduler: "rr",
		RealServers: []config.RealServer{{Address: netip.MustParseAddr("198.18.0.11"), Weight: 0, MAC: rs1MAC}},
		SorryServer: &config.SorryServer{Address: sorry},
	}}}
	wire, d := lan(t, cfg)
	dirMAC := d.port.HardwareAddr()
	expectFrame(t, wire, "ARP request for the sorry server", isARP(layers.ARPRequest, sorry))
	send(t, wire, arpReply(sorryMAC, sorry, dirMAC, netip.MustParseAddr("198.18.0.2")))
	deadline := time.Now().Add(5 * time.Second)
	for d.Forwarder().Stats()[0].Sorry.MAC == nil {
		if time.Now().After(deadline) {
			t.Fatal("the sorry server never resolved")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, 10}), 40000)
	send(t, wire, framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
	out := expectFrame(t, wire, "SYN forwarded to the sorry server", func(p gopacket.Packet) bool {
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		return ok && tcp.SYN && bytes.Equal(p.LinkLayer().LayerContents()[6:12], dirMAC)
	})
	if !bytes.Equal(out[0:6], sorryMAC) {
		t.Fatalf("SYN sent to %x, want the sorry server's %x", out[0:6], sorryMAC)
	}
	if addrs := cfg.RealServerAddrs(); len(addrs) != 2 || addrs[1] != sorry {
		t.Fatalf("RealServerAddrs = %v, want the sorry server listed for the doctor", addrs)
	}
}

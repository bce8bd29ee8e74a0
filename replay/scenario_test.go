package replay

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

var (
	routerMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	directorMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	toDirector  = framegen.L2{Src: routerMAC, Dst: directorMAC}
	vip         = netip.MustParseAddr("198.18.0.100")
	vip6        = netip.MustParseAddr("2001:2::100")
	router      = netip.MustParseAddr("198.18.0.1")
	router6     = netip.MustParseAddr("2001:2::1")
	director    = netip.MustParseAddr("198.18.0.2")
	start       = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
)

// frame is one frame of a scenario with its capture time.
type frame struct {
	at   time.Duration
	data []byte
}

// scenario builds a capture on the director's LAN interface; frames are
// sorted by time when written.
type scenario struct{ frames []frame }

func (s *scenario) add(at time.Duration, data ...[]byte) {
	for i, d := range data {
		s.frames = append(s.frames, frame{at: at + time.Duration(i)*time.Microsecond, data: d})
	}
}

func (s *scenario) write(t *testing.T, path string) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	// A stable sort by time keeps same-time frames in insertion order.
	fs := append([]frame(nil), s.frames...)
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].at < fs[j-1].at; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	for _, f := range fs {
		ci := gopacket.CaptureInfo{Timestamp: start.Add(f.at), CaptureLength: len(f.data), Length: len(f.data)}
		if err := w.WritePacket(ci, f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func clientAt(i int, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), port)
}

// tcpSession adds a whole client conversation as the director sees it:
// SYN, ACK, request, FIN, last ACK (replies go straight to the client).
func tcpSession(s *scenario, l2 framegen.L2, c, v netip.AddrPort, at time.Duration) {
	step := 3 * time.Millisecond
	s.add(at, framegen.TCP(l2, c, v, framegen.SYN, 100, 0, nil))
	s.add(at+step, framegen.TCP(l2, c, v, framegen.ACK, 101, 1, nil))
	s.add(at+2*step, framegen.TCP(l2, c, v, framegen.PSHACK, 101, 1, []byte("GET / HTTP/1.1\r\nHost: vip\r\n\r\n")))
	s.add(at+3*step, framegen.TCP(l2, c, v, framegen.FINACK, 130, 200, nil))
	s.add(at+4*step, framegen.TCP(l2, c, v, framegen.ACK, 131, 201, nil))
}

// mixedScenario is every kind of traffic a director's interface sees.
func mixedScenario() *scenario {
	s := &scenario{}
	web := netip.AddrPortFrom(vip, 80)
	ms := time.Millisecond
	// The router asks for the VIP; the director's own traffic is not ours.
	s.add(0, framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, router, vip))
	s.add(1*ms, framegen.TCP(toDirector, netip.AddrPortFrom(router, 5555), netip.AddrPortFrom(director, 22), framegen.SYN, 1, 0, nil))
	// The router asks for the IPv6 VIP too; another address is not ours to answer.
	allRouters := framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0x33, 0x33, 0xff, 0, 0x01, 0x00}}
	s.add(2*ms, framegen.NeighborSolicitation(allRouters, router6, vip6))
	s.add(3*ms, framegen.ARPRequest(framegen.L2{Src: routerMAC, Dst: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, router, director))
	// Twelve clients' HTTP sessions, interleaved.
	for i := 0; i < 12; i++ {
		tcpSession(s, toDirector, clientAt(i, uint16(40000+i)), web, 10*ms+time.Duration(i)*ms)
	}
	// UDP flows: four clients, three queries each.
	for i := 0; i < 4; i++ {
		for q := 0; q < 3; q++ {
			s.add(100*ms+time.Duration(q*10+i)*ms, framegen.UDP(toDirector, clientAt(20+i, 5353), netip.AddrPortFrom(vip, 53), []byte("query")))
		}
	}
	// A VLAN-tagged client.
	vl := toDirector
	vl.VLAN = 10
	tcpSession(s, vl, clientAt(30, 41000), web, 200*ms)
	// A sender relying on checksum offload: partial checksums.
	for i, at := range []time.Duration{300 * ms, 303 * ms, 306 * ms} {
		c := clientAt(31, 42000)
		flags := []string{framegen.SYN, framegen.ACK, framegen.PSHACK}[i]
		f := framegen.TCP(toDirector, c, web, flags, uint32(100+i), 1, []byte("partial"))
		framegen.PartialChecksum(f)
		s.add(at, f)
	}
	// A router on the way back says the real server's reply was too big.
	live := clientAt(32, 43000)
	s.add(400*ms, framegen.TCP(toDirector, live, web, framegen.SYN, 1, 0, nil))
	s.add(401*ms, framegen.TCP(toDirector, live, web, framegen.ACK, 2, 1, nil))
	reply := framegen.TCP(framegen.L2{Src: routerMAC, Dst: routerMAC}, web, live, framegen.PSHACK, 1, 2, make([]byte, 1460))
	s.add(402*ms, framegen.ICMPFragNeeded(toDirector, router, vip, framegen.IPPacket(reply)[:28], 1400))
	// The client sends more than the LAN's MTU with don't-fragment: the
	// director answers fragmentation-needed (replayed with MTU 1500).
	s.add(403*ms, framegen.TCP(toDirector, live, web, framegen.PSHACK, 2, 1, make([]byte, 1600)))
	// The director's own forwarded copy, seen in the capture: never again.
	s.add(404*ms, framegen.TCP(framegen.L2{Src: directorMAC, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 0x11}}, live, web, framegen.ACK, 2, 1, nil))
	// Fragmented UDP: in order, then last fragment first.
	big := bytes.Repeat([]byte("fragment"), 500)
	s.add(500*ms, framegen.IPv4Fragments(toDirector, clientAt(33, 6000), netip.AddrPortFrom(vip, 53), big, 1480, 77)...)
	out := framegen.IPv4Fragments(toDirector, clientAt(34, 6000), netip.AddrPortFrom(vip, 53), big, 1480, 78)
	s.add(510*ms, append(out[len(out)-1:], out[:len(out)-1]...)...)
	// IPv6 clients.
	for i := 0; i < 3; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 1, 15: byte(0x10 + i)}), uint16(44000+i))
		tcpSession(s, toDirector, c, netip.AddrPortFrom(vip6, 80), 600*ms+time.Duration(i)*ms)
	}
	// An IPv6 client's segment over the MTU: packet-too-big.
	big6 := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0, 1, 15: 0x20}), 44100)
	s.add(650*ms, framegen.TCP(toDirector, big6, netip.AddrPortFrom(vip6, 80), framegen.SYN, 1, 0, nil))
	s.add(651*ms, framegen.TCP(toDirector, big6, netip.AddrPortFrom(vip6, 80), framegen.PSHACK, 2, 1, make([]byte, 1500)))
	// Refused: ping to the VIP, a port without service, broken frames.
	s.add(700*ms, framegen.ICMPEcho(toDirector, clientAt(35, 0).Addr(), vip, 1))
	s.add(701*ms, framegen.TCP(toDirector, clientAt(35, 1000), netip.AddrPortFrom(vip, 443), framegen.SYN, 1, 0, nil))
	trunc := framegen.TCP(toDirector, clientAt(35, 1001), web, framegen.SYN, 1, 0, nil)
	s.add(702*ms, trunc[:14+20+8])
	bad := framegen.TCP(toDirector, clientAt(35, 1002), web, framegen.SYN, 1, 0, nil)
	bad[14] = 0x43 // IHL 3: not an IPv4 header
	s.add(703*ms, bad, []byte{1, 2, 3})
	// A mid-flow packet with no connection (a restarted director).
	s.add(800*ms, framegen.TCP(toDirector, clientAt(36, 45000), web, framegen.PSHACK, 5000, 1, []byte("more")))
	// Port reuse: client 0 comes back on the same port after its FIN.
	s.add(900*ms, framegen.TCP(toDirector, clientAt(0, 40000), web, framegen.SYN, 9000, 0, nil))
	// An idle established connection's next packet after its timeout.
	idle := clientAt(37, 46000)
	s.add(1000*ms, framegen.TCP(toDirector, idle, web, framegen.SYN, 1, 0, nil))
	s.add(1001*ms, framegen.TCP(toDirector, idle, web, framegen.ACK, 2, 1, nil))
	s.add(1000*time.Second, framegen.TCP(toDirector, idle, web, framegen.PSHACK, 2, 1, []byte("late")))
	return s
}

var scenarios = map[string]func() *scenario{
	"mixed": mixedScenario,
}

// flowKey identifies a transport flow (client side first) for invariants.
func flowKey(data []byte) (string, bool) {
	pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: true})
	nl, tl := pkt.NetworkLayer(), pkt.TransportLayer()
	if nl == nil || tl == nil {
		return "", false
	}
	return nl.NetworkFlow().String() + " " + tl.TransportFlow().String(), true
}

func u16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func scenarioPath(name string) string { return filepath.Join("..", "testdata", "replay", name+".pcap") }

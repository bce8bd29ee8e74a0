package link

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"golang.org/x/net/bpf"
)

// vmProgram is ClientHash's program with plain offsets, for bpf.VM (which
// has neither SKF_NET_OFF nor the protocol extension): the same
// instructions but for the loads' bases.
func vmProgram(t *testing.T, h ClientHash) *bpf.VM {
	t.Helper()
	return vmSplitProgram(t, h, 0)
}

// vmSplitProgram is vmProgram for a split group of n workers (0: none).
func vmSplitProgram(t *testing.T, h ClientHash, n int) *bpf.VM {
	t.Helper()
	raw, err := h.program(14, bpf.LoadAbsolute{Off: 12, Size: 2}, n)
	if err != nil {
		t.Fatal(err)
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("program does not disassemble")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// TestClientHashProgram runs the fanout program on frames in bpf.VM and
// checks it sorts each by the client Sum says: its source, or for an ICMP
// error the destination of the packet it quotes.
func TestClientHashProgram(t *testing.T) {
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	vip4, vip6 := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:2::100")
	router4, router6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:2::1")
	c4 := []netip.Addr{netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.1.11"), netip.MustParseAddr("198.19.200.7")}
	c6 := []netip.Addr{netip.MustParseAddr("2001:2::1:10"), netip.MustParseAddr("2001:2:0:ff::7")}
	for _, h := range []ClientHash{{}, {Bits4: 24, Bits6: 64}, {Bits4: 1, Bits6: 100}} {
		vm := vmProgram(t, h)
		type tc struct {
			name   string
			frame  []byte
			client netip.Addr
		}
		var cases []tc
		for _, c := range c4 {
			tcp := framegen.TCP(l2, netip.AddrPortFrom(c, 40000), netip.AddrPortFrom(vip4, 80), "S", 1, 0, nil)
			reply := framegen.TCP(l2, netip.AddrPortFrom(vip4, 80), netip.AddrPortFrom(c, 40000), "SA", 1, 2, nil)
			cases = append(cases,
				tc{"tcp " + c.String(), tcp, c},
				tc{"udp " + c.String(), framegen.UDP(l2, netip.AddrPortFrom(c, 53), netip.AddrPortFrom(vip4, 53), []byte("x")), c},
				tc{"frag-needed about " + c.String(), framegen.ICMPFragNeeded(l2, router4, vip4, framegen.IPPacket(reply), 1400), c},
				tc{"source quench about " + c.String(), sourceQuench(framegen.ICMPFragNeeded(l2, router4, vip4, framegen.IPPacket(reply), 1400)), c},
				tc{"echo " + c.String(), framegen.ICMPEcho(l2, c, vip4, 1), c},
			)
			for i, fr := range framegen.IPv4Fragments(l2, netip.AddrPortFrom(c, 5000), netip.AddrPortFrom(vip4, 53), make([]byte, 3000), 1000, 7) {
				cases = append(cases, tc{"fragment " + string(rune('0'+i)) + " " + c.String(), fr, c})
			}
		}
		for _, c := range c6 {
			reply := framegen.TCP(l2, netip.AddrPortFrom(vip6, 80), netip.AddrPortFrom(c, 40000), "SA", 1, 2, nil)
			cases = append(cases,
				tc{"tcp " + c.String(), framegen.TCP(l2, netip.AddrPortFrom(c, 40000), netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil), c},
				tc{"too-big about " + c.String(), framegen.ICMPFragNeeded(l2, router6, vip6, framegen.IPPacket(reply), 1400), c},
				tc{"too-big behind hop-by-hop about " + c.String(), behindHopByHop(framegen.ICMPFragNeeded(l2, router6, vip6, framegen.IPPacket(reply), 1400)), c},
			)
		}
		for _, c := range cases {
			got, err := vm.Run(c.frame)
			if err != nil {
				t.Fatalf("%+v %s: %v", h, c.name, err)
			}
			if want := h.Sum(c.client); uint32(got) != want {
				t.Errorf("%+v %s: program %#x, Sum(%v) %#x", h, c.name, uint32(got), c.client, want)
			}
		}
		if got, _ := vm.Run(framegen.ARPRequest(l2, router4, vip4)); got != 0 {
			t.Errorf("%+v: ARP hashed to %#x, want 0", h, got)
		}
	}
}

// TestClientHashPrefix: clients that share the hashed prefix share a
// worker (persistence netmask); the whole address spreads them.
func TestClientHashPrefix(t *testing.T) {
	a, b := netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.1.200")
	if (ClientHash{Bits4: 24}).Sum(a) != (ClientHash{Bits4: 24}).Sum(b) {
		t.Fatal("two clients of one /24 hash apart with Bits4 24")
	}
	a6, b6 := netip.MustParseAddr("2001:2::1"), netip.MustParseAddr("2001:2::ffff:1")
	if (ClientHash{Bits6: 64}).Sum(a6) != (ClientHash{Bits6: 64}).Sum(b6) {
		t.Fatal("two clients of one /64 hash apart with Bits6 64")
	}
	if (ClientHash{}).Sum(netip.MustParseAddr("::ffff:198.18.1.10")) != (ClientHash{}).Sum(a) {
		t.Fatal("an IPv4-mapped address hashes unlike its IPv4 form")
	}
	// 4096 clients spread over 2..8 workers within 10% of even.
	for n := 2; n <= 8; n++ {
		counts := make([]int, n)
		for i := range 4096 {
			c := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
			counts[(ClientHash{}).Index(c, n)]++
		}
		for w, k := range counts {
			if even := 4096 / n; k < even*9/10 || k > even*11/10 {
				t.Errorf("%d workers: worker %d got %d of 4096 clients, want about %d", n, w, k, even)
			}
		}
	}
	for _, h := range []ClientHash{{Bits4: 33}, {Bits6: 129}, {Bits4: -1}} {
		if _, err := h.Program(); err == nil {
			t.Errorf("%+v: Program accepted a bad prefix", h)
		}
	}
}

// splitCase is a frame and the member of a split group it must reach.
type splitCase struct {
	name    string
	frame   []byte
	client  netip.Addr // zero: not IP, member 0
	bareSYN bool
}

// splitCases are the frames of the split tests: bare SYNs (IPv4 with and
// without options, IPv6) and everything that must stay on the main
// sockets, of the clients c.
func splitCases(l2 framegen.L2, c4, c6 []netip.Addr) []splitCase {
	vip4, vip6 := netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("2001:2::100")
	router4 := netip.MustParseAddr("198.18.0.1")
	var cases []splitCase
	for i, c := range c4 {
		from, to := netip.AddrPortFrom(c, uint16(40000+i)), netip.AddrPortFrom(vip4, 80)
		syn := framegen.TCP(l2, from, to, "S", 1, 0, nil)
		reply := framegen.TCP(l2, to, from, "SA", 1, 2, nil)
		cases = append(cases,
			splitCase{"syn " + c.String(), syn, c, true},
			splitCase{"syn with IP options " + c.String(), withIPv4Options(syn), c, true},
			splitCase{"syn fragment (MF) " + c.String(), withIPv4Flags(syn, 0x2000), c, false},
			splitCase{"syn fin " + c.String(), framegen.TCP(l2, from, to, "SF", 1, 0, nil), c, true},
			// The client's SYN-ACK (simultaneous open), ACK, data, FIN, RST.
			splitCase{"syn-ack " + c.String(), framegen.TCP(l2, from, to, "SA", 1, 2, nil), c, false},
			splitCase{"ack " + c.String(), framegen.TCP(l2, from, to, "A", 2, 2, nil), c, false},
			splitCase{"data " + c.String(), framegen.TCP(l2, from, to, "PA", 2, 2, []byte("GET / HTTP/1.1\r\n\r\n")), c, false},
			splitCase{"fin " + c.String(), framegen.TCP(l2, from, to, "FA", 2, 2, nil), c, false},
			splitCase{"rst " + c.String(), framegen.TCP(l2, from, to, "R", 2, 0, nil), c, false},
			splitCase{"udp " + c.String(), framegen.UDP(l2, netip.AddrPortFrom(c, 53), netip.AddrPortFrom(vip4, 53), []byte("x")), c, false},
			splitCase{"echo " + c.String(), framegen.ICMPEcho(l2, c, vip4, 1), c, false},
			splitCase{"frag-needed about " + c.String(), framegen.ICMPFragNeeded(l2, router4, vip4, framegen.IPPacket(reply), 1400), c, false},
		)
		for j, fr := range framegen.IPv4Fragments(l2, netip.AddrPortFrom(c, 5000), netip.AddrPortFrom(vip4, 53), make([]byte, 2000), 1000, uint16(i)) {
			cases = append(cases, splitCase{"fragment " + string(rune('0'+j)) + " " + c.String(), fr, c, false})
		}
	}
	for i, c := range c6 {
		from, to := netip.AddrPortFrom(c, uint16(40000+i)), netip.AddrPortFrom(vip6, 80)
		syn := framegen.TCP(l2, from, to, "S", 1, 0, nil)
		cases = append(cases,
			splitCase{"syn " + c.String(), syn, c, true},
			splitCase{"syn behind hop-by-hop " + c.String(), withHopByHop(syn), c, false},
			splitCase{"ack " + c.String(), framegen.TCP(l2, from, to, "A", 2, 2, nil), c, false},
			splitCase{"data " + c.String(), framegen.TCP(l2, from, to, "PA", 2, 2, []byte("x")), c, false},
			splitCase{"udp " + c.String(), framegen.UDP(l2, netip.AddrPortFrom(c, 53), netip.AddrPortFrom(vip6, 53), []byte("x")), c, false},
		)
	}
	cases = append(cases,
		splitCase{"arp", framegen.ARPRequest(l2, router4, vip4), netip.Addr{}, false},
		splitCase{"ndp", framegen.NeighborSolicitation(l2, netip.MustParseAddr("2001:2::1"), vip6), netip.MustParseAddr("2001:2::1"), false},
	)
	return cases
}

// want is the member of a split group of n that c's frame must reach.
func (c splitCase) want(h ClientHash, n int) int {
	if !c.client.IsValid() {
		return 0
	}
	return h.SplitIndex(c.client, n, c.bareSYN)
}

// withIPv4Options returns the IPv4 frame f with 4 bytes of NOP options.
func withIPv4Options(f []byte) []byte {
	g := make([]byte, 0, len(f)+4)
	g = append(g, f[:14+20]...)
	g = append(g, 1, 1, 1, 1)
	g = append(g, f[14+20:]...)
	g[14] = 0x46
	binary.BigEndian.PutUint16(g[14+2:], binary.BigEndian.Uint16(g[14+2:])+4)
	ipv4Sum(g[14 : 14+24])
	return g
}

// withIPv4Flags returns the IPv4 frame f with the flags and fragment
// offset field set to v.
func withIPv4Flags(f []byte, v uint16) []byte {
	g := append([]byte(nil), f...)
	binary.BigEndian.PutUint16(g[14+6:], v)
	ipv4Sum(g[14 : 14+20])
	return g
}

func ipv4Sum(h []byte) {
	h[10], h[11] = 0, 0
	var s uint32
	for i := 0; i < len(h); i += 2 {
		s += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	binary.BigEndian.PutUint16(h[10:], ^uint16(s))
}

// withHopByHop returns the IPv6 frame f with an empty hop-by-hop options
// header in front of its payload.
func withHopByHop(f []byte) []byte {
	g := make([]byte, 0, len(f)+8)
	g = append(g, f[:14+40]...)
	g = append(g, f[14+6], 0, 1, 4, 0, 0, 0, 0) // next header, length 0, PadN(4)
	g = append(g, f[14+40:]...)
	g[14+6] = 0
	binary.BigEndian.PutUint16(g[14+4:], binary.BigEndian.Uint16(g[14+4:])+8)
	return g
}

// TestClientHashSplitProgram: in a split group, bare SYNs reach their
// client's SYN member and every other frame its main member (ARP: 0).
func TestClientHashSplitProgram(t *testing.T) {
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	c4 := []netip.Addr{netip.MustParseAddr("198.18.1.10"), netip.MustParseAddr("198.18.1.11"), netip.MustParseAddr("198.19.200.7")}
	c6 := []netip.Addr{netip.MustParseAddr("2001:2::1:10"), netip.MustParseAddr("2001:2:0:ff::7")}
	cases := splitCases(l2, c4, c6)
	for _, n := range []int{1, 2, 3, 8} {
		for _, h := range []ClientHash{{}, {Bits4: 24, Bits6: 64}} {
			vm := vmSplitProgram(t, h, n)
			for _, c := range cases {
				got, err := vm.Run(c.frame)
				if err != nil {
					t.Fatalf("n %d %+v %s: %v", n, h, c.name, err)
				}
				if want := c.want(h, n); got%(2*n) != want {
					t.Errorf("n %d %+v %s: member %d, want %d", n, h, c.name, got%(2*n), want)
				}
			}
		}
	}
	if _, err := (ClientHash{}).splitProgram(0); err == nil {
		t.Error("splitProgram accepted 0 workers")
	}
}

// sourceQuench turns an ICMP error frame into a source quench (type 4),
// which the forwarder also takes as an error about a connection.
func sourceQuench(frame []byte) []byte {
	f := append([]byte(nil), frame...)
	f[14+20] = 4
	return f
}

// behindHopByHop puts an 8-byte hop-by-hop options header between an IPv6
// frame's fixed header and what followed it.
func behindHopByHop(frame []byte) []byte {
	const l3 = 14
	next := frame[l3+6]
	hbh := []byte{next, 0, 1, 4, 0, 0, 0, 0} // PadN filling the 6 option bytes
	f := append([]byte(nil), frame[:l3+40]...)
	f[l3+6] = 0
	binary.BigEndian.PutUint16(f[l3+4:], binary.BigEndian.Uint16(frame[l3+4:])+8)
	f = append(f, hbh...)
	return append(f, frame[l3+40:]...)
}

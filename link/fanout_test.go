package link

import (
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
	raw, err := h.program(14, bpf.LoadAbsolute{Off: 12, Size: 2})
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

package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/net/bpf"
)

var (
	vip4   = netip.MustParseAddr("198.18.0.100")
	vip4b  = netip.MustParseAddr("198.18.0.101")
	vip6   = netip.MustParseAddr("2001:db8::100")
	other4 = netip.MustParseAddr("198.18.0.2")
	other6 = netip.MustParseAddr("2001:db8::2")
	cip4   = netip.MustParseAddr("198.18.1.10")
	cip6   = netip.MustParseAddr("2001:db8:1::10")
)

// vm assembles the filter for vips into a VM.
func vm(t testing.TB, vips ...netip.Addr) *bpf.VM {
	t.Helper()
	raw, err := VIPFilter(vips)
	if err != nil {
		t.Fatal(err)
	}
	ins, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	v, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatalf("NewVM: %v", err)
	}
	return v
}

func TestVIPFilter(t *testing.T) {
	icmpNS := []byte{icmpv6NS, 0, 0, 0, 0, 0, 0, 0}
	mld := []byte{143, 0, 0, 0}
	tcp := make([]byte, 20)
	cases := []struct {
		name  string
		vips  []netip.Addr
		frame []byte
		want  bool
	}{
		{"arp", []netip.Addr{vip4}, ether(-1, etherTypeARP, arpRequest(cip4, vip4)), true},
		{"arp tagged", []netip.Addr{vip4}, ether(7, etherTypeARP, arpRequest(cip4, vip4)), true},
		{"arp for other address", []netip.Addr{vip4}, ether(-1, etherTypeARP, arpRequest(cip4, other4)), true},
		{"ipv4 to vip", []netip.Addr{vip4}, ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)), true},
		{"ipv4 to vip tagged", []netip.Addr{vip4}, ether(100, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)), true},
		{"ipv4 to second vip", []netip.Addr{vip4, vip4b}, ether(-1, etherTypeIPv4, ipv4(17, cip4, vip4b, nil)), true},
		{"ipv4 to non-vip", []netip.Addr{vip4, vip4b}, ether(-1, etherTypeIPv4, ipv4(6, cip4, other4, tcp)), false},
		{"ipv4 to non-vip tagged", []netip.Addr{vip4}, ether(100, etherTypeIPv4, ipv4(6, cip4, other4, tcp)), false},
		{"ipv4 from vip", []netip.Addr{vip4}, ether(-1, etherTypeIPv4, ipv4(6, vip4, cip4, tcp)), false},
		{"ipv4 truncated header", []netip.Addr{vip4}, ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, nil)[:18]), false},
		{"ipv4 with only ipv6 vips", []netip.Addr{vip6}, ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)), false},
		{"ipv6 to vip", []netip.Addr{vip4, vip6}, ether(-1, etherTypeIPv6, ipv6(6, cip6, vip6, tcp)), true},
		{"ipv6 to vip tagged", []netip.Addr{vip6}, ether(5, etherTypeIPv6, ipv6(6, cip6, vip6, tcp)), true},
		{"ipv6 to non-vip", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(6, cip6, other6, tcp)), false},
		{"ipv6 to non-vip tagged", []netip.Addr{vip6}, ether(5, etherTypeIPv6, ipv6(6, cip6, other6, tcp)), false},
		{"ipv6 differs in last word", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(6, cip6, netip.MustParseAddr("2001:db8::101"), tcp)), false},
		{"ipv6 vip among several", []netip.Addr{other6.Next(), vip6}, ether(-1, etherTypeIPv6, ipv6(17, cip6, vip6, nil)), true},
		{"ndp ns", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), icmpNS)), true},
		{"ndp ns tagged", []netip.Addr{vip6}, ether(9, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), icmpNS)), true},
		{"ndp ns without ipv6 vips", []netip.Addr{vip4}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), icmpNS)), false},
		{"mld to solicited-node", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), mld)), false},
		{"mld report", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, netip.MustParseAddr("ff02::16"), mld)), false},
		{"udp to solicited-node", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(17, cip6, solicitedNode(vip6), icmpNS)), false},
		{"ns to all-nodes", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, netip.MustParseAddr("ff02::1"), icmpNS)), true},
		{"ns unicast (neighbour re-checking the vip)", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, other6, icmpNS)), true},
		{"na from a real server to the director", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, other6, cip6, append([]byte{136}, icmpNS[1:]...))), true},
		{"na tagged", []netip.Addr{vip6}, ether(3, etherTypeIPv6, ipv6(protoICMPv6, other6, cip6, append([]byte{136}, icmpNS[1:]...))), true},
		{"icmpv6 echo to non-vip", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, other6, append([]byte{128}, icmpNS[1:]...))), false},
		{"ns truncated", []netip.Addr{vip6}, ether(-1, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), nil)), false},
		{"lldp", []netip.Addr{vip4}, ether(-1, 0x88cc, make([]byte, 40)), false},
		{"qinq outer tag", []netip.Addr{vip4}, ether(-1, 0x88a8, append([]byte{0, 1, 8, 0}, ipv4(6, cip4, vip4, tcp)...)), false},
		{"runt", []netip.Addr{vip4}, testDst, false},
		{"empty", []netip.Addr{vip4}, nil, false},
		{"no vips: arp only", nil, ether(-1, etherTypeARP, arpRequest(cip4, vip4)), true},
		{"no vips: ipv4", nil, ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)), false},
		{"mapped vip", []netip.Addr{netip.AddrFrom16(vip4.As16())}, ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := vm(t, c.vips...).Run(c.frame)
			if err != nil {
				t.Fatalf("VM: %v", err)
			}
			if want := reference(c.frame, c.vips); want != c.want {
				t.Fatalf("test case disagrees with the reference classifier: want %v, reference %v", c.want, want)
			}
			if (got != 0) != c.want {
				t.Fatalf("filter returned %d, want accept=%v", got, c.want)
			}
			if got != 0 && got != FilterAccept {
				t.Fatalf("accepted with snap length %d, want FilterAccept %d", got, FilterAccept)
			}
		})
	}
}

func TestVIPFilterErrors(t *testing.T) {
	many := make([]netip.Addr, 500)
	base := vip6.As16()
	for i := range many {
		b := base
		binary.BigEndian.PutUint16(b[14:], uint16(i))
		many[i] = netip.AddrFrom16(b)
	}
	cases := []struct {
		name string
		vips []netip.Addr
		want string
	}{
		{"zero address", []netip.Addr{vip4, {}}, "VIP 1: invalid"},
		{"too many", many, "more than the kernel's 4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := VIPFilter(c.vips)
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("err = %v, want ErrFilter", err)
			}
			if !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
				t.Fatalf("err = %q, want it to mention %q", err, c.want)
			}
		})
	}
	// Duplicates and zones are folded, so a long list of one VIP fits.
	dups := make([]netip.Addr, 1000)
	for i := range dups {
		dups[i] = vip6.WithZone(fmt.Sprint(i))
	}
	if _, err := VIPFilter(dups); err != nil {
		t.Fatalf("duplicate VIPs: %v", err)
	}
}

// reference is the filter's specification in Go, for the table and the fuzzer.
func reference(f []byte, vips []netip.Addr) bool {
	if len(f) < 14 {
		return false
	}
	l2, et := 14, binary.BigEndian.Uint16(f[12:])
	if et == etherTypeVLAN {
		if len(f) < 18 {
			return false
		}
		l2, et = 18, binary.BigEndian.Uint16(f[16:])
	}
	has6 := false
	for _, v := range vips {
		has6 = has6 || !v.Unmap().Is4()
	}
	ip := f[l2:]
	switch et {
	case etherTypeARP:
		return true
	case etherTypeIPv4:
		if len(ip) < 20 {
			return false
		}
		dst := netip.AddrFrom4([4]byte(ip[16:20]))
		for _, v := range vips {
			if v.Unmap() == dst {
				return true
			}
		}
	case etherTypeIPv6:
		if len(ip) < 40 {
			return false
		}
		dst := netip.AddrFrom16([16]byte(ip[24:40]))
		for _, v := range vips {
			if v.WithZone("") == dst {
				return true
			}
		}
		// Neighbor solicitations and advertisements, whatever their
		// destination: the responder and the resolver sort them out.
		return has6 && ip[6] == protoICMPv6 && len(ip) > 40 && (ip[40] == icmpv6NS || ip[40] == icmpv6NA)
	}
	return false
}

func FuzzVIPFilter(f *testing.F) {
	vips := []netip.Addr{vip4, vip4b, vip6}
	tcp := make([]byte, 20)
	f.Add(ether(-1, etherTypeIPv4, ipv4(6, cip4, vip4, tcp)))
	f.Add(ether(3, etherTypeIPv4, ipv4(6, cip4, vip4b, tcp)))
	f.Add(ether(-1, etherTypeIPv6, ipv6(6, cip6, vip6, tcp)))
	f.Add(ether(3, etherTypeIPv6, ipv6(protoICMPv6, cip6, solicitedNode(vip6), []byte{icmpv6NS, 0})))
	f.Add(ether(-1, etherTypeARP, arpRequest(cip4, vip4)))
	f.Add(ether(-1, etherTypeVLAN, nil))
	f.Add([]byte{})
	v := vm(f, vips...)
	f.Fuzz(func(t *testing.T, frame []byte) {
		got, err := v.Run(frame)
		if err != nil {
			t.Fatalf("VM error: %v", err)
		}
		if got != 0 && got != FilterAccept {
			t.Fatalf("filter returned %d", got)
		}
		if want := reference(frame, vips); (got != 0) != want {
			t.Fatalf("filter accept=%v, reference %v for % x", got != 0, want, frame)
		}
	})
}

func ExampleVIPFilter() {
	filter, err := VIPFilter([]netip.Addr{netip.MustParseAddr("198.18.0.100")})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Pass it to Open: link.Open("eth0", link.Config{Filter: filter}).
	fmt.Println(len(filter), "instructions")
	// Output: 18 instructions
}

package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/sys/unix"
)

// XDP actions the kernel-flow tests expect: XDP_TX (forwarded by the
// program), XDP_REDIRECT (to drlb: an AF_XDP socket sits in every slot)
// and XDP_PASS (not a VIP).
const (
	kfPass, kfTX, kfDrlb = 2, 3, 4
)

// kflowLab is a kernel side over fresh flow maps: the XDP program
// (newKflowLab) or the AF_PACKET socket filter and tc program
// (newSockKflowLab). run gives every side's verdict as the XDP
// program's action: kfTX forwarded by the kernel, kfDrlb left to drlb,
// kfPass neither (not a VIP).
type kflowLab struct {
	t     testing.TB
	flows *flowMaps
	ours  net.HardwareAddr
	runFn func(t testing.TB, f []byte) (uint32, []byte)
	// notVIP is the verdict on a frame to another address whose flow is
	// in the map all the same: the XDP program checks the VIP first,
	// the socket filter trusts the map (drlb hands out VIP flows only).
	notVIP uint32
}

// newKflowLab is the XDP program over fresh maps, with an AF_XDP socket
// (never bound: the test run redirects nothing) in every lane's slot, so
// that a frame left to drlb returns XDP_REDIRECT.

func newKflowLab(t testing.TB, flows int) *kflowLab {
	t.Helper()
	testutil.NeedRoot(t)
	o, err := loadKernelFlows(1, 64, flows)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	if err := o.setVIPs(splitVIPs); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for _, lane := range []int{xskLaneMain, xskLaneSYN, xskLaneTrusted} {
		if err := o.xsks.Put(xskSlot(0, lane), uint32(fd)); err != nil {
			t.Fatal(err)
		}
	}
	return &kflowLab{t: t, flows: &o.flows, ours: net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}, notVIP: kfPass,
		runFn: func(t testing.TB, f []byte) (uint32, []byte) {
			ret, out, err := o.prog.Test(f)
			if err != nil {
				t.Fatalf("test run (%d bytes): %v", len(f), err)
			}
			return ret, out
		}}
}

func (l *kflowLab) servers(on bool, mtu int, servers []KernelServer) {
	l.t.Helper()
	if err := l.flows.setServers(on, l.ours, mtu, servers); err != nil {
		l.t.Fatal(err)
	}
}

// update is UpdateKernelFlows without a port.
func (l *kflowLab) update(add []KernelFlow, del []KernelFlowKey) int {
	l.t.Helper()
	now, err := monotonicNow()
	if err != nil {
		l.t.Fatal(err)
	}
	full, err := l.flows.update(add, del, now)
	if err != nil {
		l.t.Fatal(err)
	}
	return full
}

func (l *kflowLab) run(f []byte) (uint32, []byte) {
	l.t.Helper()
	return l.runFn(l.t, f)
}

// value is the flows map's entry of a flow.
func (l *kflowLab) value(c, v netip.AddrPort, proto uint8) (kflowValue, bool) {
	l.t.Helper()
	k, ok := kflowKeyOf(c, v, proto)
	if !ok {
		l.t.Fatalf("%v -> %v/%d: no key", c, v, proto)
	}
	var val kflowValue
	err := l.flows.flows.Lookup(&k, &val)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return val, false
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return val, true
}

func (l *kflowLab) counts() map[uint32]KernelCount {
	l.t.Helper()
	c, err := l.flows.counted()
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

// ipTotal is an IPv4 frame's total length field.
func ipTotal(f []byte) uint64 {
	if binary.BigEndian.Uint16(f[12:]) == 0x86dd {
		return 40 + uint64(binary.BigEndian.Uint16(f[14+4:]))
	}
	return uint64(binary.BigEndian.Uint16(f[14+2:]))
}

// setPayload6 rewrites an IPv6 frame's payload length.
func setPayload6(f []byte, n int) []byte {
	binary.BigEndian.PutUint16(f[14+4:], uint16(n))
	return f
}

// setTotal rewrites an IPv4 frame's total length (the checksum is no
// matter to the program).
func setTotal(f []byte, n int) []byte {
	binary.BigEndian.PutUint16(f[14+2:], uint16(n))
	return f
}

// TestXDPKernelFlows runs the XDP program in the kernel on frames of
// installed flows and on frames that differ from them in one way each:
// the flows' TCP ACKs and UDP datagrams leave with XDP_TX, MACs rewritten
// to the server's and ours and nothing else changed, counted per server;
// every frame one of the program's conditions refuses goes on to drlb
// (XDP_REDIRECT into the AF_XDP socket) untouched.
func TestXDPKernelFlows(t *testing.T) {
	testKernelFlows(t, newKflowLab(t, maxKernelFlows))
}

// testKernelFlows is TestXDPKernelFlows over any kernel side.
func testKernelFlows(t *testing.T, l *kflowLab) {
	vip := splitVIPs[0]
	clientMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	l2 := framegen.L2{Src: clientMAC, Dst: l.ours}
	srv := []KernelServer{{ID: 1, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 1}}, {ID: 2, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 2}}}
	l.servers(true, 0, srv)
	c := netip.MustParseAddrPort("198.18.1.10:40000")
	other := netip.MustParseAddrPort("198.18.1.11:40000")
	web, dns := netip.AddrPortFrom(vip, 80), netip.AddrPortFrom(vip, 53)
	unlisted := netip.AddrPortFrom(c.Addr(), 40002)
	c6 := netip.MustParseAddrPort("[2001:2::10]:40000")
	web6, dns6 := netip.AddrPortFrom(splitVIPs[1], 80), netip.AddrPortFrom(splitVIPs[1], 53)
	notVIP := netip.MustParseAddrPort("198.18.0.77:80")
	flows := []KernelFlow{
		{Client: c, VIP: web, Proto: protoTCP, Server: 1, Refresh: time.Hour},
		{Client: c, VIP: dns, Proto: protoUDP, Server: 2, Refresh: time.Hour},
		{Client: unlisted, VIP: web, Proto: protoTCP, Server: 99, Refresh: time.Hour},
		{Client: c, VIP: notVIP, Proto: protoTCP, Server: 1, Refresh: time.Hour},
		{Client: c6, VIP: web6, Proto: protoTCP, Server: 1, Refresh: time.Hour},
		{Client: c6, VIP: dns6, Proto: protoUDP, Server: 2, Refresh: time.Hour},
		// Skipped: they stay with drlb.
		{Client: c, VIP: web, Proto: protoICMP, Server: 1, Refresh: time.Hour},
		{Client: c, VIP: web6, Proto: protoTCP, Server: 1, Refresh: time.Hour}, // families mixed
	}
	if full := l.update(flows, nil); full != 0 {
		t.Fatalf("%d flows did not fit", full)
	}
	if n, n6 := mapLen(t, l.flows.flows), mapLen(t, l.flows.flows6); n != 4 || n6 != 2 {
		t.Fatalf("%d IPv4 and %d IPv6 flows in the maps, want 4 and 2 (ICMP and mixed families skipped)", n, n6)
	}
	// A key of another protocol, put directly (UpdateKernelFlows skips
	// them), for a frame that is TCP but for the protocol field.
	gre := kflowKey{Saddr: c.Addr().As4(), Daddr: vip.As4(), Sport: [2]byte{byte(c.Port() >> 8), byte(c.Port())}, Dport: [2]byte{0, 80}, Proto: 47}
	if err := l.flows.flows.Put(&gre, &kflowValue{Key: gre, Server: 1, Refresh: uint64(time.Hour), PuntAt: 1 << 62}); err != nil {
		t.Fatal(err)
	}
	ack := func(payload string) []byte { return framegen.TCP(l2, c, web, "A", 1, 1, []byte(payload)) }
	udp := func() []byte { return framegen.UDP(l2, c, dns, []byte("query")) }
	with := func(f []byte, edit func([]byte)) []byte { edit(f); return f }
	byMAC := func(dst net.HardwareAddr, src net.HardwareAddr) framegen.L2 { return framegen.L2{Src: src, Dst: dst} }
	mac := func(hw net.HardwareAddr, i int, b byte) net.HardwareAddr {
		m := append(net.HardwareAddr(nil), hw...)
		m[i] = b
		return m
	}
	ack6 := func(payload string) []byte { return framegen.TCP(l2, c6, web6, "A", 1, 1, []byte(payload)) }
	udp6 := func() []byte { return framegen.UDP(l2, c6, dns6, []byte("query")) }
	const tcpAt, tcp6At = 14 + 20, 14 + 40
	for _, tc := range []struct {
		name   string
		frame  []byte
		want   uint32
		server uint32 // of a forwarded frame
		off    bool   // kernel flows turned off first
		mtu    int
	}{
		{name: "TCP ACK", frame: ack(""), want: kfTX, server: 1},
		{name: "TCP ACK with data", frame: ack("GET / HTTP/1.1\r\n\r\n"), want: kfTX, server: 1},
		{name: "TCP PSH ACK", frame: framegen.TCP(l2, c, web, "PA", 1, 1, []byte("x")), want: kfTX, server: 1},
		{name: "UDP", frame: udp(), want: kfTX, server: 2},
		{name: "Ethernet padding after the packet", frame: append(ack(""), make([]byte, 6)...), want: kfTX, server: 1},
		{name: "DF set", frame: with(ack(""), func(f []byte) { f[14+6] = 0x40 }), want: kfTX, server: 1},
		{name: "source MAC ours but the last byte", frame: framegen.TCP(byMAC(l.ours, mac(l.ours, 5, 0x77)), c, web, "A", 1, 1, nil), want: kfTX, server: 1},
		{name: "source MAC ours but the first byte", frame: framegen.TCP(byMAC(l.ours, mac(l.ours, 0, 0x86)), c, web, "A", 1, 1, nil), want: kfTX, server: 1},
		{name: "total length at the mtu", frame: ack("12345"), mtu: 20 + 20 + 5, want: kfTX, server: 1},

		{name: "off", frame: ack(""), off: true, want: kfDrlb},
		{name: "SYN", frame: framegen.TCP(l2, c, web, "S", 1, 0, nil), want: kfDrlb},
		{name: "SYN-ACK", frame: framegen.TCP(l2, c, web, "SA", 1, 1, nil), want: kfDrlb},
		{name: "FIN", frame: framegen.TCP(l2, c, web, "FA", 1, 1, nil), want: kfDrlb},
		{name: "RST", frame: framegen.TCP(l2, c, web, "R", 1, 0, nil), want: kfDrlb},
		{name: "IP options", frame: with(ack("abcd"), func(f []byte) { f[14] = 0x46 }), want: kfDrlb},
		{name: "IP version 5", frame: with(ack(""), func(f []byte) { f[14] = 0x55 }), want: kfDrlb},
		{name: "fragment, MF", frame: with(ack(""), func(f []byte) { f[14+6] = 0x20 }), want: kfDrlb},
		{name: "fragment, offset", frame: with(ack(""), func(f []byte) { f[14+6], f[14+7] = 0, 1 }), want: kfDrlb},
		{name: "total length over the mtu", frame: ack("123456"), mtu: 20 + 20 + 5, want: kfDrlb},
		{name: "packet beyond the frame", frame: with(ack("abcd"), func(f []byte) { setTotal(f, len(f)-14+1) }), want: kfDrlb},
		{name: "TCP header beyond the packet", frame: with(ack(""), func(f []byte) { setTotal(f, 20+19) }), want: kfDrlb},
		{name: "TCP header beyond the frame", frame: setTotal(ack("")[:14+20+12], 20+12), want: kfDrlb},
		{name: "UDP header beyond the packet", frame: with(udp(), func(f []byte) { setTotal(f, 20+7) }), want: kfDrlb},
		{name: "UDP header beyond the frame", frame: setTotal(udp()[:14+20+6], 20+6), want: kfDrlb},
		{name: "TCP data offset 4", frame: with(ack(""), func(f []byte) { f[tcpAt+12] = 4 << 4 }), want: kfDrlb},
		{name: "another destination MAC (first byte)", frame: framegen.TCP(byMAC(mac(l.ours, 0, 0x86), clientMAC), c, web, "A", 1, 1, nil), want: kfDrlb},
		{name: "another destination MAC (last byte)", frame: framegen.TCP(byMAC(mac(l.ours, 5, 0x77), clientMAC), c, web, "A", 1, 1, nil), want: kfDrlb},
		{name: "from our MAC", frame: framegen.TCP(byMAC(l.ours, l.ours), c, web, "A", 1, 1, nil), want: kfDrlb},
		{name: "another client port", frame: framegen.TCP(l2, netip.AddrPortFrom(c.Addr(), 40001), web, "A", 1, 1, nil), want: kfDrlb},
		{name: "another client", frame: framegen.TCP(l2, other, web, "A", 1, 1, nil), want: kfDrlb},
		{name: "another VIP port", frame: framegen.TCP(l2, c, netip.AddrPortFrom(vip, 443), "A", 1, 1, nil), want: kfDrlb},
		{name: "UDP to the TCP flow", frame: framegen.UDP(l2, c, web, nil), want: kfDrlb},
		{name: "TCP to the UDP flow", frame: framegen.TCP(l2, c, dns, "A", 1, 1, nil), want: kfDrlb},
		{name: "protocol 47", frame: with(ack(""), func(f []byte) { f[14+ipv4Proto] = 47 }), want: kfDrlb},
		{name: "ICMP", frame: framegen.ICMPEcho(l2, c.Addr(), vip, 1), want: kfDrlb},
		{name: "server not listed", frame: framegen.TCP(l2, unlisted, web, "A", 1, 1, nil), want: kfDrlb},

		{name: "IPv6 TCP ACK", frame: ack6(""), want: kfTX, server: 1},
		{name: "IPv6 TCP ACK with data", frame: ack6("GET / HTTP/1.1\r\n\r\n"), want: kfTX, server: 1},
		{name: "IPv6 UDP", frame: udp6(), want: kfTX, server: 2},
		{name: "IPv6 Ethernet padding after the packet", frame: append(ack6(""), make([]byte, 6)...), want: kfTX, server: 1},
		{name: "IPv6 flow label and traffic class set", frame: with(ack6(""), func(f []byte) { f[14] |= 0x0f; f[15], f[16], f[17] = 0xff, 0xff, 0xff }), want: kfTX, server: 1},
		{name: "IPv6 packet at the mtu", frame: ack6("12345"), mtu: 40 + 20 + 5, want: kfTX, server: 1},
		{name: "IPv6 off", frame: ack6(""), off: true, want: kfDrlb},
		{name: "IPv6 packet over the mtu", frame: ack6("123456"), mtu: 40 + 20 + 5, want: kfDrlb},
		{name: "IPv6 SYN", frame: framegen.TCP(l2, c6, web6, "S", 1, 0, nil), want: kfDrlb},
		{name: "IPv6 FIN", frame: framegen.TCP(l2, c6, web6, "FA", 1, 1, nil), want: kfDrlb},
		{name: "IPv6 RST", frame: framegen.TCP(l2, c6, web6, "R", 1, 0, nil), want: kfDrlb},
		{name: "IPv6 version 4 in the header", frame: with(ack6(""), func(f []byte) { f[14] = 0x40 }), want: kfDrlb},
		{name: "IPv6 extension header", frame: with(ack6(""), func(f []byte) { f[14+ipv6Next] = 60 }), want: kfDrlb},
		{name: "IPv6 packet beyond the frame", frame: with(ack6("abcd"), func(f []byte) { setPayload6(f, len(f)-14-40+1) }), want: kfDrlb},
		{name: "IPv6 TCP header beyond the packet", frame: with(ack6(""), func(f []byte) { setPayload6(f, 19) }), want: kfDrlb},
		{name: "IPv6 TCP header beyond the frame", frame: setPayload6(ack6("")[:tcp6At+12], 12), want: kfDrlb},
		{name: "IPv6 UDP header beyond the packet", frame: with(udp6(), func(f []byte) { setPayload6(f, 7) }), want: kfDrlb},
		{name: "IPv6 UDP header beyond the frame", frame: setPayload6(udp6()[:tcp6At+6], 6), want: kfDrlb},
		{name: "IPv6 TCP data offset 4", frame: with(ack6(""), func(f []byte) { f[tcp6At+12] = 4 << 4 }), want: kfDrlb},
		{name: "IPv6 another destination MAC", frame: framegen.TCP(byMAC(mac(l.ours, 5, 0x77), clientMAC), c6, web6, "A", 1, 1, nil), want: kfDrlb},
		{name: "IPv6 from our MAC", frame: framegen.TCP(byMAC(l.ours, l.ours), c6, web6, "A", 1, 1, nil), want: kfDrlb},
		{name: "IPv6 another client port", frame: framegen.TCP(l2, netip.AddrPortFrom(c6.Addr(), 40001), web6, "A", 1, 1, nil), want: kfDrlb},
		{name: "IPv6 another client, the same low bits", frame: framegen.TCP(l2, netip.MustParseAddrPort("[2001:3::10]:40000"), web6, "A", 1, 1, nil), want: kfDrlb},
		{name: "IPv6 UDP to the TCP flow", frame: framegen.UDP(l2, c6, web6, nil), want: kfDrlb},
		{name: "IPv6 the client as the IPv4 flow's, mapped", frame: framegen.TCP(l2, netip.AddrPortFrom(netip.AddrFrom16(c.Addr().As16()), c.Port()), web6, "A", 1, 1, nil), want: kfDrlb},
		{name: "not a VIP", frame: framegen.TCP(l2, c, notVIP, "A", 1, 1, nil), want: l.notVIP, server: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.t = t
			if tc.off || tc.mtu != 0 {
				l.servers(!tc.off, tc.mtu, srv)
				defer l.servers(true, 0, srv)
			}
			before := l.counts()
			in := append([]byte(nil), tc.frame...)
			ret, out := l.run(tc.frame)
			if ret != tc.want {
				t.Fatalf("action %d, want %d", ret, tc.want)
			}
			after := l.counts()
			if tc.want != kfTX {
				if !bytes.Equal(out, in) {
					t.Errorf("changed:\n% x\nwant\n% x", out, in)
				}
				for id, n := range after {
					if n != before[id] {
						t.Errorf("server %d counted %+v, was %+v", id, n, before[id])
					}
				}
				return
			}
			var s KernelServer
			for _, x := range srv {
				if x.ID == tc.server {
					s = x
				}
			}
			if !bytes.Equal(out[0:6], s.MAC[:]) || !bytes.Equal(out[6:12], l.ours) || !bytes.Equal(out[12:], in[12:]) {
				t.Errorf("forwarded as\n% x\nwant destination % x, source %v, the rest\n% x", out, s.MAC, l.ours, in[12:])
			}
			b, a := before[tc.server], after[tc.server]
			if a.Packets != b.Packets+1 || a.Bytes != b.Bytes+ipTotal(in) {
				t.Errorf("count %+v, was %+v: want one more frame of %d bytes", a, b, ipTotal(in))
			}
		})
	}
	l.t = t

	// Removed, a flow's frames go to drlb; the others stay.
	l.update(nil, []KernelFlowKey{{Client: c, VIP: web, Proto: protoTCP}, {Client: other, VIP: web, Proto: protoTCP}})
	if ret, _ := l.run(ack("")); ret != kfDrlb {
		t.Errorf("a deleted flow: action %d, want %d", ret, kfDrlb)
	}
	if ret, _ := l.run(udp()); ret != kfTX {
		t.Errorf("another flow after a delete: action %d, want %d", ret, kfTX)
	}
	l.update(nil, []KernelFlowKey{{Client: c6, VIP: web6, Proto: protoTCP}})
	if ret, _ := l.run(ack6("")); ret != kfDrlb {
		t.Errorf("a deleted IPv6 flow: action %d, want %d", ret, kfDrlb)
	}
	if ret, _ := l.run(udp6()); ret != kfTX {
		t.Errorf("another IPv6 flow after a delete: action %d, want %d", ret, kfTX)
	}
	// A server removed takes its flows to drlb; its count stays.
	l.servers(true, 0, srv[:1])
	if ret, _ := l.run(udp()); ret != kfDrlb {
		t.Errorf("a removed server's flow: action %d, want %d", ret, kfDrlb)
	}
	if got := l.counts()[2]; got.Packets == 0 {
		t.Errorf("a removed server's count: %+v", got)
	}
}

// mapLen counts a flows map's entries.
func mapLen(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	k, v := make([]byte, m.KeySize()), make([]byte, m.ValueSize())
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestXDPKernelFlowPunt: a flow's frames are forwarded until its punt
// time; the frame that reaches it goes to drlb and moves it a refresh
// ahead, so the next is forwarded again. A refresh under a millisecond is
// one.
func TestXDPKernelFlowPunt(t *testing.T) {
	l := newKflowLab(t, 16)
	l.servers(true, 0, []KernelServer{{ID: 7, MAC: [6]byte{2, 0x99, 0, 0, 0, 7}}})
	c, web := netip.MustParseAddrPort("198.18.1.10:40000"), netip.AddrPortFrom(splitVIPs[0], 80)
	const refresh = time.Hour
	l.update([]KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: 7, Refresh: refresh}}, nil)
	f := framegen.TCP(framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: l.ours}, c, web, "A", 1, 1, nil)
	if ret, _ := l.run(f); ret != kfTX {
		t.Fatalf("first frame: action %d, want XDP_TX", ret)
	}
	v, ok := l.value(c, web, protoTCP)
	if !ok || v.Server != 7 || v.Refresh != uint64(refresh) {
		t.Fatalf("value %+v (%v)", v, ok)
	}
	// Due now.
	v.PuntAt = 0
	k, _ := kflowKeyOf(c, web, protoTCP)
	if err := l.flows.flows.Put(&k, &v); err != nil {
		t.Fatal(err)
	}
	before, _ := monotonicNow()
	if ret, _ := l.run(f); ret != kfDrlb {
		t.Fatalf("frame at the punt time: action %d, want drlb's", ret)
	}
	after, _ := monotonicNow()
	v, _ = l.value(c, web, protoTCP)
	if v.PuntAt < uint64(before+refresh) || v.PuntAt > uint64(after+refresh) {
		t.Errorf("next punt at %d, want %d..%d", v.PuntAt, before+refresh, after+refresh)
	}
	if ret, _ := l.run(f); ret != kfTX {
		t.Fatalf("frame after the punt: action %d, want XDP_TX", ret)
	}
	if got := l.counts()[7].Packets; got != 2 {
		t.Errorf("count %d, want 2", got)
	}
	l.update([]KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: 7}}, nil)
	if v, _ := l.value(c, web, protoTCP); v.Refresh != uint64(time.Millisecond) {
		t.Errorf("a refresh of 0 is %v, want 1ms", time.Duration(v.Refresh))
	}
}

// TestXDPKernelFlowsFull: in a full map the flows that fit still go in,
// in a batch or one by one, those already in are replaced, and the ones
// left out are counted; removals in a batch survive keys that are gone.
func TestXDPKernelFlowsFull(t *testing.T) {
	l := newKflowLab(t, 4)
	l.servers(true, 0, []KernelServer{{ID: 1, MAC: [6]byte{2, 0x99, 0, 0, 0, 1}}, {ID: 2, MAC: [6]byte{2, 0x99, 0, 0, 0, 2}}})
	web := netip.AddrPortFrom(splitVIPs[0], 80)
	client := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("198.18.1.10"), uint16(40000+i))
	}
	flow := func(i int, server uint32) KernelFlow {
		return KernelFlow{Client: client(i), VIP: web, Proto: protoTCP, Server: server, Refresh: time.Hour}
	}
	has := func(i int) (uint32, bool) {
		v, ok := l.value(client(i), web, protoTCP)
		return v.Server, ok
	}
	if full := l.update([]KernelFlow{flow(0, 1), flow(1, 1), flow(2, 1)}, nil); full != 0 {
		t.Fatalf("3 of 4: %d did not fit", full)
	}
	// Flow 3 takes the last room, 4 and 5 find none, 0 and 2 change
	// server in place.
	full := l.update([]KernelFlow{flow(0, 2), flow(3, 1), flow(4, 1), flow(2, 2), flow(5, 1)}, nil)
	if full != 2 {
		t.Errorf("%d flows did not fit, want 2", full)
	}
	for i, want := range []uint32{2, 1, 2, 1} {
		if s, ok := has(i); !ok || s != want {
			t.Errorf("flow %d: server %d (in %v), want %d", i, s, ok, want)
		}
	}
	for _, i := range []int{4, 5} {
		if _, ok := has(i); ok {
			t.Errorf("flow %d is in a full map", i)
		}
	}
	// Removals with keys that are not there, then the room they made.
	del := []KernelFlowKey{{Client: client(9), VIP: web, Proto: protoTCP}, {Client: client(1), VIP: web, Proto: protoTCP},
		{Client: client(4), VIP: web, Proto: protoTCP}, {Client: client(3), VIP: web, Proto: protoTCP}}
	if full := l.update([]KernelFlow{flow(4, 1), flow(5, 2)}, del); full != 0 {
		t.Errorf("after removals, %d did not fit", full)
	}
	for i, want := range map[int]bool{0: true, 1: false, 2: true, 3: false, 4: true, 5: true} {
		if _, ok := has(i); ok != want {
			t.Errorf("flow %d in the map: %v, want %v", i, ok, want)
		}
	}
}

// TestXDPPortKernelFlows goes through a live AF_XDP port on a veth: the
// ACKs of a flow installed with UpdateKernelFlows come straight back out
// of the director's side (XDP_TX) to the server's MAC and are counted in
// KernelFlowCounts; flows the map has no room for reach
// Stats.KernelFlowsFull; bad arguments are refused, and a closed port
// says ErrClosed.
func TestXDPPortKernelFlows(t *testing.T) {
	l := newPairLab(t)
	pa := openIn(t, l.nsA, "a0", Config{})
	// Generic mode: native XDP_TX on a veth whose peer has no XDP
	// program is dropped.
	filter, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	var p Port
	if err := testutil.Do(l.nsD, func() (err error) {
		p, err = OpenXDP("d0", Config{Filter: filter, XDPGeneric: true, KernelFlows: true}, splitVIPs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	pd := p.(*xdpPort)
	var fp FlowPort = pd
	server := KernelServer{ID: 5, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 5}}
	for _, mtu := range []int{-1, 65536} {
		if err := fp.SetKernelFlowServers(true, mtu, []KernelServer{server}); err == nil {
			t.Errorf("mtu %d accepted", mtu)
		}
	}
	const n = 3
	out := liveKernelFlow(t, pa, fp, server, n)
	c, web := liveFlowClient, liveFlowVIP
	counts, err := fp.KernelFlowCounts()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := counts[server.ID], (KernelCount{Packets: n, Bytes: n * ipTotal(out[0].Data)}); got != want {
		t.Errorf("counts %v, want %+v for server %d", counts, want, server.ID)
	}
	// A map of one flow stands in for a full one: the port counts what
	// does not fit (the program still reads the real map).
	real := pd.objs.flows.flows
	small, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: kflowValueSize, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	pd.objs.flows.flows = small
	add := []KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: 5}, {Client: c, VIP: web, Proto: protoUDP, Server: 5}, {Client: c, VIP: netip.AddrPortFrom(splitVIPs[0], 443), Proto: protoTCP, Server: 5}}
	err = fp.UpdateKernelFlows(add, nil)
	pd.objs.flows.flows = real
	small.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st, err := pd.Stats(); err != nil || st.KernelFlowsFull != 2 {
		t.Errorf("KernelFlowsFull %d (%v), want 2", st.KernelFlowsFull, err)
	}
	pd.Close()
	if err := fp.SetKernelFlowServers(false, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("SetKernelFlowServers after Close: %v", err)
	}
	if err := fp.UpdateKernelFlows(nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateKernelFlows after Close: %v", err)
	}
	if _, err := fp.KernelFlowCounts(); !errors.Is(err, ErrClosed) {
		t.Errorf("KernelFlowCounts after Close: %v", err)
	}
}

// TestXDPKernelFlowServersRefused: bad arguments are refused, and a
// server list the map cannot hold turns the forwarding off (the flows go
// to drlb) instead of leaving it on over half-written servers.
func TestXDPKernelFlowServersRefused(t *testing.T) {
	l := newKflowLab(t, 16)
	srv := []KernelServer{{ID: 1, MAC: [6]byte{2, 0x99, 0, 0, 0, 1}}}
	l.servers(true, 0, srv)
	c, web := netip.MustParseAddrPort("198.18.1.10:40000"), netip.AddrPortFrom(splitVIPs[0], 80)
	l.update([]KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: 1, Refresh: time.Hour}}, nil)
	f := framegen.TCP(framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: l.ours}, c, web, "A", 1, 1, nil)
	many := make([]KernelServer, maxKernelServers+1)
	for i := range many {
		many[i] = KernelServer{ID: uint32(i + 1), MAC: [6]byte{2, 0x99, 0, 0, byte(i >> 8), byte(i)}}
	}
	for _, tc := range []struct {
		name    string
		mac     net.HardwareAddr
		mtu     int
		servers []KernelServer
		stillOn bool
	}{
		{"a 5-byte MAC", l.ours[:5], 0, srv, true},
		{"mtu -1", l.ours, -1, srv, true},
		{"mtu 65536", l.ours, 65536, srv, true},
		{"more servers than the map holds", l.ours, 0, many, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.t = t
			if err := l.flows.setServers(true, tc.mac, tc.mtu, tc.servers); err == nil {
				t.Fatal("accepted")
			}
			if ret, _ := l.run(f); (ret == kfTX) != tc.stillOn {
				t.Errorf("action %d after the refusal; still on: %v", ret, tc.stillOn)
			}
		})
	}
}

// TestXDPKernelFlowReusedElement: an element whose value names another
// flow (as a preallocated hash map's element a removal freed and an
// add reused while the program held it) leaves the frame to drlb, for
// IPv4 and IPv6 flows; the values' layouts are the ones the program
// reads. TestSocketKernelFlowReusedElement is the same for the
// AF_PACKET side.
func TestXDPKernelFlowReusedElement(t *testing.T) {
	testReusedElement(t, newKflowLab(t, 16))
}

func testReusedElement(t *testing.T, l *kflowLab) {
	if n := unsafe.Sizeof(kflowValue{}); n != kflowValueSize {
		t.Fatalf("kflowValue is %d bytes, the map's values %d", n, kflowValueSize)
	}
	if n, n6 := unsafe.Sizeof(kflowKey6{}), unsafe.Sizeof(kflowValue6{}); n != kflowKey6Size || n6 != kflowValue6Size {
		t.Fatalf("kflowKey6 and kflowValue6 are %d and %d bytes, the map's %d and %d", n, n6, kflowKey6Size, kflowValue6Size)
	}
	l.servers(true, 0, []KernelServer{{ID: 1, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 1}}})
	l2 := framegen.L2{Src: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}, Dst: l.ours}
	c, c6 := netip.MustParseAddrPort("198.18.1.10:40000"), netip.MustParseAddrPort("[2001:2::10]:40000")
	web, web6 := netip.AddrPortFrom(splitVIPs[0], 80), netip.AddrPortFrom(splitVIPs[1], 80)
	l.update([]KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: 1, Refresh: time.Hour}, {Client: c6, VIP: web6, Proto: protoTCP, Server: 1, Refresh: time.Hour}}, nil)
	ack, ack6 := framegen.TCP(l2, c, web, "A", 1, 1, []byte("x")), framegen.TCP(l2, c6, web6, "A", 1, 1, []byte("x"))
	for _, f := range [][]byte{ack, ack6} {
		if ret, _ := l.run(f); ret != kfTX {
			t.Fatalf("an installed flow's ACK: action %d, want XDP_TX", ret)
		}
	}
	leftToDrlb := func(what any, f []byte) {
		t.Helper()
		if ret, out := l.run(f); ret != kfDrlb || !bytes.Equal(out, f) {
			t.Errorf("an element holding %+v: action %d (frame changed: %v), want drlb's", what, ret, !bytes.Equal(out, f))
		}
	}
	k, _ := kflowKeyOf(c, web, protoTCP)
	v, _ := l.value(c, web, protoTCP)
	for _, change := range []func(*kflowKey){
		func(k *kflowKey) { k.Sport[1]++ },
		func(k *kflowKey) { k.Saddr[3]++ },
		func(k *kflowKey) { k.Proto = protoUDP },
	} {
		w := v
		change(&w.Key)
		if err := l.flows.flows.Put(&k, &w); err != nil {
			t.Fatal(err)
		}
		leftToDrlb(w.Key, ack)
	}
	k6, _ := kflowKey6Of(c6, web6, protoTCP)
	var v6 kflowValue6
	if err := l.flows.flows6.Lookup(&k6, &v6); err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(*kflowKey6){
		func(k *kflowKey6) { k.Sport[1]++ },
		func(k *kflowKey6) { k.Dport[0]++ },
		func(k *kflowKey6) { k.Saddr[0]++ },
		func(k *kflowKey6) { k.Saddr[15]++ },
		func(k *kflowKey6) { k.Daddr[8]++ },
		func(k *kflowKey6) { k.Daddr[15]++ },
		func(k *kflowKey6) { k.Proto = protoUDP },
	} {
		w := v6
		change(&w.Key)
		if err := l.flows.flows6.Put(&k6, &w); err != nil {
			t.Fatal(err)
		}
		leftToDrlb(w.Key, ack6)
	}
}

// liveFlowClient and liveFlowVIP are liveKernelFlow's TCP flow.
var liveFlowClient, liveFlowVIP = netip.MustParseAddrPort("198.18.1.10:40000"), netip.AddrPortFrom(splitVIPs[0], 80)

// liveKernelFlow turns fp's forwarding on for server and the TCP flow
// from liveFlowClient to liveFlowVIP, sends n of its ACKs from pa (the other end of the
// port's veth), and checks that they come back out to pa with the
// server's MAC and the port's as source, and nothing else changed. It
// returns the frames sent.
func liveKernelFlow(t *testing.T, pa Port, fp FlowPort, server KernelServer, n int) []Frame {
	t.Helper()
	if err := fp.SetKernelFlowServers(true, 1500, []KernelServer{server}); err != nil {
		t.Fatal(err)
	}
	c, web := liveFlowClient, liveFlowVIP
	if err := fp.UpdateKernelFlows([]KernelFlow{{Client: c, VIP: web, Proto: protoTCP, Server: server.ID, Refresh: time.Hour}}, nil); err != nil {
		t.Fatal(err)
	}
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	var out []Frame
	for i := range n {
		out = append(out, Frame{Data: framegen.TCP(l2, c, web, "A", uint32(i), 1, []byte("kflow"))})
	}
	write(t, pa, out...)
	back := readN(t, pa, func(f Frame) bool {
		return len(f.Data) > 14 && bytes.Equal(f.Data[0:6], server.MAC[:]) && bytes.Equal(f.Data[6:12], macD0) && bytes.Contains(f.Data, []byte("kflow"))
	}, n)
	for i, f := range back {
		if want := out[i].Data[12:]; !bytes.Equal(f.Data[12:12+len(want)], want) {
			t.Errorf("frame %d came back changed beyond its MACs", i)
		}
	}
	return out
}

// fuzzKflowMTU is the kernel-flow fuzz targets' MTU (SetKernelFlowServers's
// mtu), fuzzKflowMax the longest frame they try: packets of up to 1600
// bytes reach both sides of the MTU rule. A test run makes no
// super-frame (GSO: its skb has no gso_size), so the rule's exception
// for them is never reached.
const (
	fuzzKflowMTU = 1500
	fuzzKflowMax = 14 + 1600
)

// fuzzKflowRefresh is the fuzz flows' refresh: a flow's first punt is
// due a refresh after it goes in, so none comes during a run.
const fuzzKflowRefresh = 100 * 365 * 24 * time.Hour

// fuzzKflowClient and fuzzKflowClient6 are the fuzz flows' clients.
var fuzzKflowClient, fuzzKflowClient6 = netip.MustParseAddrPort("198.18.1.10:40000"), netip.MustParseAddrPort("[2001:2::10]:40000")

// fuzzKflows turns l's forwarding on with fuzzKflowMTU for two servers
// and puts the fuzz targets' flows: TCP to port 80 and UDP to port 53 of
// each family's VIP, and a TCP flow whose server is not listed. It
// returns the flows and the servers, for wantKernelFlow.
func fuzzKflows(l *kflowLab) ([]KernelFlow, []KernelServer) {
	l.t.Helper()
	srv := []KernelServer{{ID: 1, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 1}}, {ID: 2, MAC: [6]byte{0x02, 0x99, 0, 0, 0, 2}}}
	c, c6 := fuzzKflowClient, fuzzKflowClient6
	vip, vip6 := splitVIPs[0], splitVIPs[1]
	flows := []KernelFlow{
		{Client: c, VIP: netip.AddrPortFrom(vip, 80), Proto: protoTCP, Server: 1},
		{Client: c, VIP: netip.AddrPortFrom(vip, 53), Proto: protoUDP, Server: 2},
		{Client: netip.AddrPortFrom(c.Addr(), 40002), VIP: netip.AddrPortFrom(vip, 80), Proto: protoTCP, Server: 99},
		{Client: c6, VIP: netip.AddrPortFrom(vip6, 80), Proto: protoTCP, Server: 1},
		{Client: c6, VIP: netip.AddrPortFrom(vip6, 53), Proto: protoUDP, Server: 2},
	}
	for i := range flows {
		flows[i].Refresh = fuzzKflowRefresh
	}
	l.servers(true, fuzzKflowMTU, srv)
	if full := l.update(flows, nil); full != 0 {
		l.t.Fatalf("%d flows did not fit", full)
	}
	return flows, srv
}

// addKflowSeeds gives a kernel-flow fuzz target frames of fuzzKflows'
// flows to director MAC ours, and frames near each of the block's rules'
// edges.
func addKflowSeeds(f *testing.F, ours net.HardwareAddr) {
	l2 := framegen.L2{Src: net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}, Dst: ours}
	c, c6 := fuzzKflowClient, fuzzKflowClient6
	web, dns := netip.AddrPortFrom(splitVIPs[0], 80), netip.AddrPortFrom(splitVIPs[0], 53)
	web6, dns6 := netip.AddrPortFrom(splitVIPs[1], 80), netip.AddrPortFrom(splitVIPs[1], 53)
	with := func(fr []byte, edit func([]byte)) []byte { edit(fr); return fr }
	data := func(n int) []byte { return bytes.Repeat([]byte{'d'}, n) }
	const tcpAt, tcp6At = 14 + 20, 14 + 40
	for _, fr := range [][]byte{
		framegen.TCP(l2, c, web, "A", 1, 1, nil),
		framegen.TCP(l2, c, web, "PA", 1, 1, []byte("GET /")),
		framegen.UDP(l2, c, dns, []byte("query")),
		framegen.TCP(l2, c6, web6, "A", 1, 1, nil),
		framegen.UDP(l2, c6, dns6, []byte("query")),
		framegen.TCP(l2, netip.AddrPortFrom(c.Addr(), 40002), web, "A", 1, 1, nil), // server not listed
		framegen.TCP(l2, c, web, "A", 1, 1, data(fuzzKflowMTU-40)),                 // at the MTU
		framegen.TCP(l2, c, web, "A", 1, 1, data(fuzzKflowMTU-40+1)),               // over it
		framegen.TCP(l2, c6, web6, "A", 1, 1, data(fuzzKflowMTU-60)),
		framegen.UDP(l2, c6, dns6, data(fuzzKflowMTU-48+1)),
		framegen.TCP(l2, c, web, "SA", 1, 1, nil),
		framegen.TCP(l2, c6, web6, "FA", 1, 1, nil),
		framegen.TCP(l2, c, web, "R", 1, 0, nil),
		with(framegen.TCP(l2, c, web, "A", 1, 1, nil), func(b []byte) { b[tcpAt+12] = 4 << 4 }),
		with(framegen.TCP(l2, c6, web6, "A", 1, 1, nil), func(b []byte) { b[tcp6At+12] = 4<<4 | 0xf }),
		with(framegen.TCP(l2, c, web, "A", 1, 1, []byte("abcd")), func(b []byte) { b[14] = 0x46 }),
		with(framegen.TCP(l2, c, web, "A", 1, 1, nil), func(b []byte) { b[14+6] = 0x20 }),        // MF
		with(framegen.TCP(l2, c, web, "A", 1, 1, nil), func(b []byte) { b[14+7] = 1 }),           // an offset
		with(framegen.TCP(l2, c, web, "A", 1, 1, nil), func(b []byte) { b[14+6] = 0x40 }),        // DF
		with(framegen.TCP(l2, c6, web6, "A", 1, 1, nil), func(b []byte) { b[14+6] = 60 }),        // an extension header
		with(framegen.TCP(l2, c6, web6, "A", 1, 1, nil), func(b []byte) { b[14] = 0x4f }),        // version 4
		with(framegen.UDP(l2, c, dns, []byte("q")), func(b []byte) { setTotal(b, len(b)-14+1) }), // beyond the frame
		append(framegen.UDP(l2, c, dns, []byte("q")), 0, 0, 0, 0),                                // padding
		with(framegen.UDP(l2, c6, dns6, []byte("q")), func(b []byte) { setPayload6(b, len(b)-14-40+1) }),
		with(framegen.TCP(l2, c, web, "A", 1, 1, nil), func(b []byte) { setTotal(b, 20+19) }),
		with(framegen.UDP(l2, c, dns, nil), func(b []byte) { setTotal(b, 20+7) }),
		with(framegen.TCP(l2, c6, web6, "A", 1, 1, nil), func(b []byte) { setPayload6(b, 19) }),
		with(framegen.UDP(l2, c6, dns6, nil), func(b []byte) { setPayload6(b, 7) }),
		framegen.UDP(l2, c, dns, nil)[:kflowUDPEnd],
		framegen.UDP(l2, c, dns, nil)[:kflowUDPEnd-1],
		framegen.UDP(l2, c6, dns6, nil)[:kflow6UDPEnd-1],
		framegen.TCP(framegen.L2{Src: ours, Dst: ours}, c, web, "A", 1, 1, nil),
		framegen.TCP(framegen.L2{Src: l2.Src, Dst: net.HardwareAddr{0x82, 0, 0, 0, 0, 0x03}}, c6, web6, "A", 1, 1, nil),
		framegen.TCP(l2, netip.AddrPortFrom(c.Addr(), 40001), web, "A", 1, 1, nil),
		framegen.UDP(l2, c, web, nil),
		framegen.TCP(l2, netip.AddrPortFrom(netip.AddrFrom16(c.Addr().As16()), c.Port()), web6, "A", 1, 1, nil),
		framegen.ICMPEcho(l2, c.Addr(), splitVIPs[0], 1),
		framegen.ARPRequest(l2, c.Addr(), splitVIPs[0]),
	} {
		f.Add(fr)
	}
}

// checkKernelFlow fails t unless a kernel side forwarded frame (fwd,
// as out) exactly as wantKernelFlow says, and left any other frame
// unchanged.
func checkKernelFlow(t *testing.T, frame []byte, ours net.HardwareAddr, flows []KernelFlow, srv []KernelServer, fwd bool, out []byte) {
	t.Helper()
	mac, want := wantKernelFlow(frame, ours, fuzzKflowMTU, flows, srv)
	if fwd != want {
		t.Fatalf("forwarded %v, want %v: % x", fwd, want, frame)
	}
	if fwd && (!bytes.Equal(out[0:6], mac[:]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], frame[12:])) {
		t.Fatalf("forwarded as % x, want destination % x, source %v, the rest unchanged: % x", out, mac, ours, frame)
	}
	if !fwd && !bytes.Equal(out, frame) {
		t.Fatalf("left to drlb as % x, want unchanged: % x", out, frame)
	}
}

// wantKernelFlow is kflowBlock written plainly, for forwarding on with
// mtu (no super-frame, and no flow's punt time reached): it gives the
// server's MAC of a frame the kernel forwards. Such a frame is IPv4
// (0x45: no options; no fragment) or IPv6 (version 6, next header TCP
// or UDP), at least a UDP frame of its family long; its packet is all in
// the frame and at most mtu long; it is TCP with a whole 20-byte header
// (data offset 5 or more) in the packet and no SYN, FIN or RST, or UDP
// with a whole header; it is to ours and not from it; its (source, VIP,
// ports, protocol) is a flow's; and that flow's server is listed.
func wantKernelFlow(f []byte, ours net.HardwareAddr, mtu int, flows []KernelFlow, servers []KernelServer) ([6]byte, bool) {
	const eth = 14
	be16 := func(b []byte) int { return int(b[0])<<8 | int(b[1]) }
	if len(f) < kflowUDPEnd {
		return [6]byte{}, false
	}
	var (
		ip             int // the IP header's length
		total          int // the packet's
		proto          byte
		src, dst       netip.Addr
		tcpEnd, udpEnd int
	)
	switch be16(f[12:]) {
	case 0x0800:
		if f[eth] != 0x45 || be16(f[eth+6:])&0x3fff != 0 {
			return [6]byte{}, false
		}
		ip, total, proto = 20, be16(f[eth+2:]), f[eth+9]
		src, dst = netip.AddrFrom4([4]byte(f[eth+12:])), netip.AddrFrom4([4]byte(f[eth+16:]))
		tcpEnd, udpEnd = kflowTCPEnd, kflowUDPEnd
	case 0x86dd:
		if len(f) < kflow6UDPEnd || f[eth]>>4 != 6 {
			return [6]byte{}, false
		}
		ip, total, proto = 40, 40+be16(f[eth+4:]), f[eth+6]
		src, dst = netip.AddrFrom16([16]byte(f[eth+8:])), netip.AddrFrom16([16]byte(f[eth+24:]))
		tcpEnd, udpEnd = kflow6TCPEnd, kflow6UDPEnd
	default:
		return [6]byte{}, false
	}
	if eth+total > len(f) || mtu != 0 && total > mtu {
		return [6]byte{}, false
	}
	l4 := eth + ip
	switch proto {
	case protoTCP:
		if total < ip+20 || len(f) < tcpEnd || f[l4+12] < 5<<4 || f[l4+13]&0x07 != 0 {
			return [6]byte{}, false
		}
	case protoUDP:
		if total < ip+8 || len(f) < udpEnd {
			return [6]byte{}, false
		}
	default:
		return [6]byte{}, false
	}
	if !bytes.Equal(f[0:6], ours) || bytes.Equal(f[6:12], ours) {
		return [6]byte{}, false
	}
	client, vip := netip.AddrPortFrom(src, uint16(be16(f[l4:]))), netip.AddrPortFrom(dst, uint16(be16(f[l4+2:])))
	for _, fl := range flows {
		if fl.Client != client || fl.VIP != vip || fl.Proto != proto {
			continue
		}
		for _, s := range servers {
			if s.ID == fl.Server {
				return s.MAC, true
			}
		}
		return [6]byte{}, false
	}
	return [6]byte{}, false
}

// FuzzXDPKernelFlows runs any frame through the XDP program with
// fuzzKflows' flows on: it forwards (XDP_TX) exactly the frames
// wantKernelFlow says, each to its flow's server with only the MACs
// changed, and leaves every other frame unchanged.
func FuzzXDPKernelFlows(f *testing.F) {
	l := newKflowLab(f, 64)
	flows, srv := fuzzKflows(l)
	addKflowSeeds(f, l.ours)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > fuzzKflowMax {
			return // the test run builds no frame shorter than Ethernet's header
		}
		l.t = t
		in := append([]byte(nil), frame...)
		ret, out := l.run(frame)
		checkKernelFlow(t, in, l.ours, flows, srv, ret == kfTX, out)
	})
}

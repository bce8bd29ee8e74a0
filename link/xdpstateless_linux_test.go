package link

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/scheduler"
)

// synBucket is SYNTable's bucket of an IPv4 client, by its definition
// (scheduler.BucketIPv4).
func synBucket(t SYNTable, src netip.Addr, sport uint16) int {
	return scheduler.BucketIPv4(t.Seed, t.HashPort, len(t.MACs), src.As4(), sport)
}

// TestXDPStatelessSYNs runs the XDP program in the kernel on bare SYNs
// from random IPv4 clients to two services with tables (one hashing the
// port too, some buckets left to drlb): while on, a SYN to our MAC whose
// bucket names a server leaves with XDP_TX, destination MAC the bucket's
// and source MAC ours, and is counted; everything else (off, a zero
// bucket, another MAC, another port, an ACK, IPv6) is not forwarded.
func TestXDPStatelessSYNs(t *testing.T) {
	testutil.NeedRoot(t)
	o, err := loadXDP(1, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	vip := splitVIPs[0]
	if err := o.setVIPs(splitVIPs); err != nil {
		t.Fatal(err)
	}
	ours := net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	rng := rand.New(rand.NewPCG(9, 10))
	mkTable := func(port uint16, n int, hashPort bool) SYNTable {
		tb := SYNTable{VIP: vip, Port: port, Seed: rng.Uint64(), HashPort: hashPort, MACs: make([][6]byte, n)}
		for i := range tb.MACs {
			if i%7 != 3 { // every seventh bucket left to drlb
				tb.MACs[i] = [6]byte{0x02, 0x99, byte(i >> 8), byte(i), 0xaa, byte(rng.Uint32())}
			}
		}
		return tb
	}
	tables := []SYNTable{mkTable(80, 256, false), mkTable(443, 65537, true)}
	const xdpPass, xdpTX = 2, 3
	run := func(f []byte) (uint32, []byte) {
		t.Helper()
		ret, out, err := o.prog.Test(f)
		if err != nil {
			t.Fatal(err)
		}
		return ret, out
	}
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: ours}
	client := func() netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + rng.IntN(128)), byte(rng.Uint32())}), uint16(rng.Uint32()))
	}
	// Off: nothing is forwarded.
	if err := o.syn.set(false, ours, tables); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(framegen.TCP(l2, client(), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)); ret == xdpTX {
		t.Fatal("forwarded while off")
	}
	if err := o.syn.set(true, ours, tables); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for i := range 4000 {
		tb := tables[i%2]
		c := client()
		f := framegen.TCP(l2, c, netip.AddrPortFrom(vip, tb.Port), "S", 1, 0, nil)
		ret, out := run(f)
		want := tb.MACs[synBucket(tb, c.Addr(), c.Port())]
		if want == ([6]byte{}) {
			if ret == xdpTX {
				t.Fatalf("%v: forwarded a SYN whose bucket is drlb's", c)
			}
			continue
		}
		if ret != xdpTX {
			t.Fatalf("%v to port %d: action %d, want XDP_TX", c, tb.Port, ret)
		}
		if !bytes.Equal(out[0:6], want[:]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], f[12:]) {
			t.Fatalf("%v: forwarded as % x, want destination % x, source %v, the rest unchanged", c, out[:14], want, ours)
		}
		sent++
	}
	if n, err := o.syn.sent(); err != nil || n != uint64(sent) {
		t.Fatalf("count %d (%v), want %d", n, err, sent)
	}
	c := client()
	for tables[0].MACs[synBucket(tables[0], c.Addr(), c.Port())] == ([6]byte{}) {
		c = client() // one the program would forward, but for what is wrong below
	}
	others := map[string][]byte{
		"another MAC":  framegen.TCP(framegen.L2{Src: l2.Src, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
		"another port": framegen.TCP(l2, c, netip.AddrPortFrom(vip, 8080), "S", 1, 0, nil),
		"an ACK":       framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil),
		"a SYN-ACK":    framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SA", 1, 1, nil),
		"IPv6":         framegen.TCP(l2, netip.MustParseAddrPort("[2001:2:0:1::10]:5"), netip.AddrPortFrom(splitVIPs[1], 80), "S", 1, 0, nil),
		"not a VIP":    framegen.TCP(l2, c, netip.MustParseAddrPort("198.18.0.77:80"), "S", 1, 0, nil),
		"from our MAC": framegen.TCP(framegen.L2{Src: ours, Dst: ours}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
	}
	badIHL := framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)
	badIHL[14] = 0x44
	badIHL[14+16+tcpFlags] = 0x02 // a bare SYN, read 16 bytes in
	others["IHL 4"] = badIHL
	// What the forwarder drops as malformed, or takes for no bare SYN,
	// is not forwarded either.
	syn := func() []byte { return framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil) }
	with := func(f []byte, edit func([]byte)) []byte { edit(f); return f }
	others["packet beyond the frame"] = with(syn(), func(f []byte) { setTotal(f, len(f)-14+1) })
	others["TCP header beyond the packet"] = with(syn(), func(f []byte) { setTotal(f, 20+19) })
	others["TCP data offset 4"] = with(syn(), func(f []byte) { f[14+20+12] = 4 << 4 })
	others["SYN-FIN"] = framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SF", 1, 0, nil)
	others["SYN-RST"] = framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SR", 1, 0, nil)
	for name, f := range others {
		if ret, _ := run(f); ret == xdpTX {
			t.Errorf("%s: forwarded", name)
		}
	}
	// IP options (IHL 6): the TCP header behind them, forwarded.
	f := syn()
	opts := append(append(append([]byte(nil), f[:14+20]...), 1, 1, 1, 0), f[14+20:]...)
	opts[14] = 0x46
	setTotal(opts, len(opts)-14)
	if ret, out := run(opts); ret != xdpTX || !bytes.Equal(out[0:6], tables[0].MACs[synBucket(tables[0], c.Addr(), c.Port())][:]) {
		t.Errorf("a SYN with IP options: action %d, destination % x", ret, out[0:6])
	}
	// Tables change: a removed service's SYNs go to drlb again.
	if err := o.syn.set(true, ours, tables[1:]); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		if ret, _ := run(framegen.TCP(l2, client(), netip.AddrPortFrom(vip, 80), "S", 1, 0, nil)); ret == xdpTX {
			t.Fatal("a removed table still forwards")
		}
	}
}

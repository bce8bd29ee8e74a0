package link

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/scheduler"
)

// synBucket is SYNTable's bucket of a client, by its definition
// (scheduler.BucketIPv4; scheduler.BucketIPv6 for an address of 16
// bytes, an IPv4-mapped one included, as an IPv6 packet carries it).
func synBucket(t SYNTable, src netip.Addr, sport uint16) int {
	if src.Is4() {
		return scheduler.BucketIPv4(t.Seed, t.HashPort, len(t.MACs), src.As4(), sport)
	}
	return scheduler.BucketIPv6(t.Seed, t.HashPort, len(t.MACs), src.As16(), sport)
}

// synLab is a kernel side that forwards stateless SYNs, for
// testStatelessSYNs: the XDP program, or an AF_PACKET worker's socket
// filter with the tc program.
type synLab struct {
	ours net.HardwareAddr
	set  func(on bool, tables []SYNTable) error
	// run runs frame f through it: whether the kernel forwarded it
	// itself, and as what.
	run  func(f []byte) (forwarded bool, out []byte)
	sent func() (uint64, error)
	// options: a SYN with IPv4 options is forwarded (XDP), or left to
	// drlb (the socket filter).
	options bool
}

// testStatelessSYNs sends bare SYNs from random IPv4 and IPv6 clients
// (some IPv6 ones IPv4-mapped) to four services with tables (two per
// family, some hashing the port too, one of an IPv4-mapped VIP, which is
// its IPv4 VIP's; some buckets left to drlb) through l: while on, a SYN
// to our MAC whose bucket names a server is forwarded with the bucket's
// MAC as destination and ours as source, the rest unchanged, and counted;
// everything else (off, a zero bucket, another MAC, another port, an
// ACK, what the forwarder drops as malformed, an IPv6 extension header, a
// removed table) is not.
func testStatelessSYNs(t *testing.T, l synLab, seed uint64) {
	vip, vip6 := splitVIPs[0], splitVIPs[1]
	rng := rand.New(rand.NewPCG(seed, 10))
	mkTable := func(vip netip.Addr, port uint16, n int, hashPort bool) SYNTable {
		tb := SYNTable{VIP: vip, Port: port, Seed: rng.Uint64(), HashPort: hashPort, MACs: make([][6]byte, n)}
		for i := range tb.MACs {
			if i%7 != 3 { // every seventh bucket left to drlb
				tb.MACs[i] = [6]byte{0x02, 0x99, byte(i >> 8), byte(i), 0xaa, byte(rng.Uint32())}
			}
		}
		return tb
	}
	tables := []SYNTable{
		mkTable(vip, 80, 256, false),
		mkTable(netip.AddrFrom16(vip.As16()), 443, 65537, true), // IPv4-mapped: vip's
		mkTable(vip6, 80, 251, true),
		mkTable(vip6, 8443, 1021, false),
	}
	ours := l.ours
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: ours}
	client4 := func() netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + rng.IntN(128)), byte(rng.Uint32())}), uint16(rng.Uint32()))
	}
	client6 := func() netip.AddrPort {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:], 0x2001_0002_0001_0000|rng.Uint64()&0xffff)
		binary.BigEndian.PutUint64(a[8:], rng.Uint64())
		if rng.IntN(8) == 0 {
			a = netip.AddrFrom4([4]byte{198, 18, byte(rng.Uint32()), byte(rng.Uint32())}).As16()
			a[10], a[11] = 0xff, 0xff
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(rng.Uint32()))
	}
	client := func(tb SYNTable) netip.AddrPort {
		if tb.VIP.Unmap().Is4() {
			return client4()
		}
		return client6()
	}
	to := func(tb SYNTable) netip.AddrPort { return netip.AddrPortFrom(tb.VIP.Unmap(), tb.Port) }
	// Off: nothing is forwarded.
	if err := l.set(false, tables); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if fwd, _ := l.run(framegen.TCP(l2, client(tb), to(tb), "S", 1, 0, nil)); fwd {
			t.Fatal("forwarded while off")
		}
	}
	if err := l.set(true, tables); err != nil {
		t.Fatal(err)
	}
	sent := 0
	var sent6 [2]int
	for i := range 8000 {
		tb := tables[i%len(tables)]
		c := client(tb)
		f := framegen.TCP(l2, c, to(tb), "S", 1, 0, nil)
		fwd, out := l.run(f)
		want := tb.MACs[synBucket(tb, c.Addr(), c.Port())]
		if want == ([6]byte{}) {
			if fwd {
				t.Fatalf("%v: forwarded a SYN whose bucket is drlb's", c)
			}
			continue
		}
		if !fwd {
			t.Fatalf("%v to %v: not forwarded", c, to(tb))
		}
		if !bytes.Equal(out[0:6], want[:]) || !bytes.Equal(out[6:12], ours) || !bytes.Equal(out[12:], f[12:]) {
			t.Fatalf("%v: forwarded as % x, want destination % x, source %v, the rest unchanged", c, out[:14], want, ours)
		}
		sent++
		if c.Addr().Is6() {
			sent6[b2i(c.Addr().Is4In6())]++
		}
	}
	if n, err := l.sent(); err != nil || n != uint64(sent) {
		t.Fatalf("count %d (%v), want %d", n, err, sent)
	}
	if sent6[0] < 1000 || sent6[1] < 100 {
		t.Fatalf("%d IPv6 SYNs forwarded, %d of them from IPv4-mapped clients: too few", sent6[0]+sent6[1], sent6[1])
	}
	forwarded := func(tb SYNTable, client func() netip.AddrPort) netip.AddrPort {
		c := client()
		for tb.MACs[synBucket(tb, c.Addr(), c.Port())] == ([6]byte{}) {
			c = client() // one the kernel would forward, but for what is wrong below
		}
		return c
	}
	c, c6 := forwarded(tables[0], client4), forwarded(tables[2], client6)
	syn := func() []byte { return framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil) }
	syn6 := func() []byte { return framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil) }
	with := func(f []byte, edit func([]byte)) []byte { edit(f); return f }
	const tcp6 = 14 + 40
	others := map[string][]byte{
		"another MAC":  framegen.TCP(framegen.L2{Src: l2.Src, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
		"another port": framegen.TCP(l2, c, netip.AddrPortFrom(vip, 8080), "S", 1, 0, nil),
		"an ACK":       framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "A", 1, 1, nil),
		"a SYN-ACK":    framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SA", 1, 1, nil),
		"not a VIP":    framegen.TCP(l2, c, netip.MustParseAddrPort("198.18.0.77:80"), "S", 1, 0, nil),
		"from our MAC": framegen.TCP(framegen.L2{Src: ours, Dst: ours}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil),
		"UDP":          framegen.UDP(l2, c, netip.AddrPortFrom(vip, 80), nil),
		// What the forwarder drops as malformed, or takes for no bare
		// SYN, is not forwarded either.
		"IHL 4": with(syn(), func(f []byte) {
			f[14] = 0x44
			f[14+16+tcpFlags] = 0x02 // a bare SYN, read 16 bytes in
		}),
		"packet beyond the frame":      with(syn(), func(f []byte) { setTotal(f, len(f)-14+1) }),
		"TCP header beyond the packet": with(syn(), func(f []byte) { setTotal(f, 20+19) }),
		"TCP data offset 4":            with(syn(), func(f []byte) { f[14+20+12] = 4 << 4 }),
		"SYN-FIN":                      framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SF", 1, 0, nil),
		"SYN-RST":                      framegen.TCP(l2, c, netip.AddrPortFrom(vip, 80), "SR", 1, 0, nil),
		"shorter than its headers":     syn()[:14+20+13],
		// The same for IPv6, and its own.
		"IPv6 to another MAC":               framegen.TCP(framegen.L2{Src: l2.Src, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 9}}, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil),
		"IPv6 from our MAC":                 framegen.TCP(framegen.L2{Src: ours, Dst: ours}, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil),
		"IPv6 to a port without a table":    framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 443), "S", 1, 0, nil),
		"IPv6 to another address":           framegen.TCP(l2, c6, netip.MustParseAddrPort("[2001:2::77]:80"), "S", 1, 0, nil),
		"IPv6 to the IPv4-mapped VIP":       framegen.TCP(l2, c6, netip.AddrPortFrom(netip.AddrFrom16(vip.As16()), 443), "S", 1, 0, nil),
		"IPv6 ACK":                          framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "A", 1, 1, nil),
		"IPv6 SYN-FIN":                      framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "SF", 1, 0, nil),
		"IPv6 SYN-RST":                      framegen.TCP(l2, c6, netip.AddrPortFrom(vip6, 80), "SR", 1, 0, nil),
		"IPv6 UDP":                          framegen.UDP(l2, c6, netip.AddrPortFrom(vip6, 80), nil),
		"IPv6 version 4":                    with(syn6(), func(f []byte) { f[14] = 0x40 | f[14]&0xf }),
		"IPv6 packet beyond the frame":      with(syn6(), func(f []byte) { setPayload6(f, len(f)-tcp6+1) }),
		"IPv6 TCP header beyond the packet": with(syn6(), func(f []byte) { setPayload6(f, 19) }),
		"IPv6 TCP data offset 4":            with(syn6(), func(f []byte) { f[tcp6+12] = 4 << 4 }),
		"IPv6 extension header":             with(syn6(), func(f []byte) { f[14+ipv6Next] = 0 }), // hop-by-hop
		"IPv6 shorter than its headers":     syn6()[:tcp6+13],
	}
	for name, f := range others {
		if fwd, _ := l.run(f); fwd {
			t.Errorf("%s: forwarded", name)
		}
	}
	// Padding after the IPv6 packet is fine.
	pad := append(syn6(), 0, 0, 0, 0)
	if fwd, out := l.run(pad); !fwd || !bytes.Equal(out[0:6], tables[2].MACs[synBucket(tables[2], c6.Addr(), c6.Port())][:]) {
		t.Errorf("an IPv6 SYN with padding after it: forwarded %v", fwd)
	}
	// IP options (IHL 6): the TCP header behind them.
	f := syn()
	opts := append(append(append([]byte(nil), f[:14+20]...), 1, 1, 1, 0), f[14+20:]...)
	opts[14] = 0x46
	setTotal(opts, len(opts)-14)
	fwd, out := l.run(opts)
	switch {
	case fwd != l.options:
		t.Errorf("a SYN with IP options: forwarded %v, want %v", fwd, l.options)
	case fwd && !bytes.Equal(out[0:6], tables[0].MACs[synBucket(tables[0], c.Addr(), c.Port())][:]):
		t.Errorf("a SYN with IP options: destination % x", out[0:6])
	}
	// Tables change: a removed service's SYNs go to drlb again, the
	// others' are still forwarded.
	if err := l.set(true, tables[1:3]); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		for _, tb := range []SYNTable{tables[0], tables[3]} {
			if fwd, _ := l.run(framegen.TCP(l2, client(tb), to(tb), "S", 1, 0, nil)); fwd {
				t.Fatalf("a removed table (%v) still forwards", to(tb))
			}
		}
	}
	if fwd, _ := l.run(syn6()); !fwd {
		t.Fatal("a kept IPv6 table no longer forwards")
	}
}

// TestXDPStatelessSYNs runs testStatelessSYNs through the XDP program in
// the kernel: a forwarded SYN leaves with XDP_TX.
func TestXDPStatelessSYNs(t *testing.T) {
	testutil.NeedRoot(t)
	o, err := loadXDP(1, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	if err := o.setVIPs(splitVIPs); err != nil {
		t.Fatal(err)
	}
	ours := net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	const xdpTX = 3
	testStatelessSYNs(t, synLab{
		ours: ours,
		set:  func(on bool, tables []SYNTable) error { _, err := o.syn.set(on, ours, tables); return err },
		run: func(f []byte) (bool, []byte) {
			t.Helper()
			ret, out, err := o.prog.Test(f)
			if err != nil {
				t.Fatal(err)
			}
			return ret == xdpTX, out
		},
		sent:    o.syn.sent,
		options: true,
	}, 9)
}

// TestSYNTableBuckets: the maps are sized in tables of mh's default size,
// and a worker's maps hold two of them, the XDP program's eight; a table
// that does not fit is left to drlb and counted, and the rest still go
// in.
func TestSYNTableBuckets(t *testing.T) {
	if synTableBuckets != scheduler.DefaultTableSize {
		t.Fatalf("synTableBuckets %d, scheduler.DefaultTableSize %d", synTableBuckets, scheduler.DefaultTableSize)
	}
	testutil.NeedRoot(t)
	table := func(port uint16, n int) SYNTable {
		tb := SYNTable{VIP: splitVIPs[0], Port: port, Seed: uint64(port), MACs: make([][6]byte, n)}
		for i := range tb.MACs {
			tb.MACs[i] = [6]byte{0x02, 0x99, 0, 0, 0, 1}
		}
		return tb
	}
	ours := net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	for _, c := range []struct {
		buckets, tables int
		small           bool // and a 256-bucket table after them
		wantLeft        int
	}{
		{max(maxSYNBuckets/4, minWorkerSYNBuckets), 2, false, 0},
		{max(maxSYNBuckets/64, minWorkerSYNBuckets), 3, false, 1},
		{maxSYNBuckets, 8, false, 0},
		{maxSYNBuckets, 9, false, 1},
		{2*synTableBuckets + 256, 3, true, 1}, // the third left out, the small one in
	} {
		var m synMaps
		if err := m.make(c.buckets); err != nil {
			t.Fatal(err)
		}
		var tables []SYNTable
		for i := range c.tables {
			tables = append(tables, table(uint16(80+i), synTableBuckets))
		}
		if c.small {
			tables = append(tables, table(9000, 256))
		}
		left, err := m.set(true, ours, tables)
		in := 0
		var k synSvcKey
		for it := m.svc.Iterate(); it.Next(&k, new(synSvcValue)); {
			in++
		}
		m.close()
		if err != nil || left != c.wantLeft || in != len(tables)-c.wantLeft {
			t.Errorf("%d buckets, %d default tables (and a small one: %v): %d left out (%v), %d in the map; want %d left out", c.buckets, c.tables, c.small, left, err, in, c.wantLeft)
		}
	}
	// Both families share the buckets, IPv4 tables first: three IPv6
	// tables listed before three IPv4 ones in maps with room for four
	// leave one IPv6 table out, never an IPv4 one.
	var m synMaps
	if err := m.make(4 * synTableBuckets); err != nil {
		t.Fatal(err)
	}
	defer m.close()
	var tables []SYNTable
	for i := range 3 {
		tb := table(uint16(80+i), synTableBuckets)
		tb.VIP = splitVIPs[1]
		tables = append(tables, tb)
	}
	for i := range 3 {
		tables = append(tables, table(uint16(80+i), synTableBuckets))
	}
	left, err := m.set(true, ours, tables)
	in4, in6 := 0, 0
	for it := m.svc.Iterate(); it.Next(new(synSvcKey), new(synSvcValue)); {
		in4++
	}
	for it := m.svc6.Iterate(); it.Next(new(synSvc6Key), new(synSvcValue)); {
		in6++
	}
	if err != nil || left != 2 || in4 != 3 || in6 != 1 {
		t.Errorf("3 IPv6 then 3 IPv4 tables in room for 4: %d left out (%v), %d IPv4 and %d IPv6 in the maps; want 2 left out, 3 and 1", left, err, in4, in6)
	}
}

// FuzzXDPStatelessSYNs is FuzzSocketStatelessSYNs through the XDP
// program (which also takes SYNs with IPv4 options): it forwards (XDP_TX)
// exactly the frames wantStatelessSYN says, each to its bucket's server.
func FuzzXDPStatelessSYNs(f *testing.F) {
	testutil.NeedRoot(f)
	o, err := loadXDP(1, 64)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(o.close)
	if err := o.setVIPs(splitVIPs); err != nil {
		f.Fatal(err)
	}
	ours := net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	tbs := fuzzSYNTables()
	if _, err := o.syn.set(true, ours, tbs); err != nil {
		f.Fatal(err)
	}
	addSYNSeeds(f, ours)
	const xdpTX = 3
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 1500 {
			return // no Ethernet frame; over the lab's MTU
		}
		ret, out, err := o.prog.Test(frame)
		if err != nil {
			t.Fatalf("XDP test run (%d bytes): %v", len(frame), err)
		}
		checkStatelessSYN(t, frame, ours, tbs, true, ret == xdpTX, out)
	})
}

package forwarder

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
)

// spoofed is a flood source: a random address in 198.19.0.0/16 and port.
func spoofed(rng *rand.Rand) netip.AddrPort {
	v := rng.Uint32()
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(v >> 8), byte(v)}), uint16(1024+v>>16%60000))
}

// TestSynFlood: a table filled by spoofed SYNs still takes a legitimate
// client's SYN (a SYN_RECV entry is evicted for it), its connection then
// establishes; established connections are never evicted and keep
// flowing; every eviction is counted and the per-server counters stay
// exact.
func TestSynFlood(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 64
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true // the stateful defence alone (stateless_test.go has the rest)
	const established = 16
	for i := range established {
		process(t, f, syn(client(i, 1000)), t0)
		res, _ := process(t, f, ack(client(i, 1000)), t0)
		expect(t, res, Forward, ReasonExisting)
	}
	if o := f.Overload(); o.Pressure || o.SynEvicted != 0 {
		t.Fatalf("before the flood: %+v", o)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	for i := range 5000 {
		res, _ := process(t, f, syn(spoofed(rng)), now)
		expect(t, res, Forward, ReasonNew)
		if i%250 == 0 {
			// Established flows keep flowing; a new client gets in and
			// establishes.
			for j := range established {
				res, _ := process(t, f, ack(client(j, 1000)), now)
				expect(t, res, Forward, ReasonExisting)
			}
			c := client(100+i/250, 2000)
			res, _ := process(t, f, syn(c), now)
			expect(t, res, Forward, ReasonNew)
			res, _ = process(t, f, ack(c), now)
			expect(t, res, Forward, ReasonExisting)
		}
		now += int64(time.Millisecond)
	}
	o := f.Overload()
	if !o.Pressure || o.PressureEpisodes != 1 || o.SynEvicted == 0 {
		t.Fatalf("after the flood: %+v", o)
	}
	if f.TableLen() != cfg.MaxConns {
		t.Fatalf("table holds %d, want full (%d)", f.TableLen(), cfg.MaxConns)
	}
	// Every SYN got in, and each beyond the table's size evicted one
	// (at 1000 SYNs/s in 64 entries none lives the 3 s to expire).
	n := uint64(5000 + 20 + established)
	if f.Count(ReasonNew) != n || o.SynEvicted != n-uint64(cfg.MaxConns) {
		t.Fatalf("new %d, evicted %d; want %d, %d", f.Count(ReasonNew), o.SynEvicted, n, n-uint64(cfg.MaxConns))
	}
	active, inactive := 0, 0
	for _, r := range f.Stats()[0].RealServers {
		active += r.Active
		inactive += r.Inactive
	}
	if est := countEstablished(f); est != established+20 || active+inactive != f.TableLen() {
		t.Fatalf("%d established %d active %d inactive, table %d; want %d established", est, active, inactive, f.TableLen(), established+20)
	}
}

// TestEstablishedNeverEvicted: when everything but ESTABLISHED entries
// has gone, a new SYN is refused, not let in at an established
// connection's expense.
func TestEstablishedNeverEvicted(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 32
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true // the stateful defence alone (stateless_test.go has the rest)
	for i := range 31 {
		process(t, f, syn(client(i, 1000)), t0)
		process(t, f, ack(client(i, 1000)), t0)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	// One slot left: each flood SYN takes it from the last one.
	for range 200 {
		res, _ := process(t, f, syn(spoofed(rng)), t0)
		expect(t, res, Forward, ReasonNew)
	}
	if ev := f.Overload().SynEvicted; ev != 199 {
		t.Fatalf("%d evicted, want 199", ev)
	}
	// The last slot established too: now nothing can be evicted.
	last := client(31, 1000)
	process(t, f, syn(last), t0)
	process(t, f, ack(last), t0)
	for range 100 {
		res, _ := process(t, f, syn(spoofed(rng)), t0)
		expect(t, res, Drop, ReasonTableFull)
	}
	for i := range 32 {
		res, _ := process(t, f, ack(client(i, 1000)), t0)
		expect(t, res, Forward, ReasonExisting)
	}
	if ev := f.Overload().SynEvicted; ev != 200 || f.Count(ReasonTableFull) != 100 {
		t.Fatalf("%d evicted, %d table-full; want 200, 100", ev, f.Count(ReasonTableFull))
	}
}

// TestPressureTimeouts: above half full, new and refreshed SYN_RECV
// entries get SynRecvPressureTimeout; below PressureOffPercent the
// configured timeout again. ESTABLISHED entries keep theirs.
func TestPressureTimeouts(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 100
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true // the stateful defence alone (stateless_test.go has the rest)
	expires := func(c netip.AddrPort) time.Duration {
		var d time.Duration = -1
		f.RangeConnEntries(t0, func(e ConnEntry) bool {
			if e.Client == c {
				d = e.Expires
			}
			return true
		})
		return d
	}
	for i := range 50 {
		process(t, f, syn(client(i, 1000)), t0)
	}
	if d := expires(client(49, 1000)); d != 60*time.Second || f.Overload().Pressure {
		t.Fatalf("SYN_RECV at 49%%: %v, pressure %v; want 60s, off", d, f.Overload().Pressure)
	}
	process(t, f, syn(client(50, 1000)), t0) // 50 entries: pressure on
	if d := expires(client(50, 1000)); d != SynRecvPressureTimeout || !f.Overload().Pressure {
		t.Fatalf("SYN_RECV at 50%%: %v, pressure %v; want %v, on", d, f.Overload().Pressure, SynRecvPressureTimeout)
	}
	process(t, f, syn(client(0, 1000)), t0) // a retransmitted SYN
	if d := expires(client(0, 1000)); d != SynRecvPressureTimeout {
		t.Fatalf("refreshed SYN_RECV under pressure: %v", d)
	}
	process(t, f, ack(client(1, 1000)), t0)
	if d := expires(client(1, 1000)); d != 900*time.Second {
		t.Fatalf("ESTABLISHED under pressure: %v", d)
	}
	// Drop to 40 entries: still on (hysteresis); 39: off.
	for i := 2; i < 12; i++ {
		process(t, f, framegen.TCP(toDir, client(i, 1000), netip.AddrPortFrom(vip, 80), "R", 2, 0, nil), t0)
	}
	f.Tick(t0+11*second, 1<<20) // CLOSE lasts 10 s; SYN_RECV 60 s but two have 3 s
	if n := f.TableLen(); n != 39 {
		t.Fatalf("table holds %d, want 39", n)
	}
	process(t, f, syn(client(60, 1000)), t0+11*second)
	if f.Overload().Pressure {
		t.Fatal("pressure still on below PressureOffPercent")
	}
	if d := expires(client(60, 1000)); d != 71*time.Second {
		t.Fatalf("SYN_RECV after pressure: %v", d)
	}
}

// floodSYN rewrites a SYN frame's source address (198.19.0.0/16) and port
// in place from v (the checksums are not checked).
func floodSYN(frame []byte, v uint32) {
	frame[14+14], frame[14+15] = byte(v>>8), byte(v)
	frame[14+20], frame[14+21] = byte(1024+v>>16%60000>>8), byte(1024+v>>16%60000)
}

// floodForwarder returns a forwarder whose table (max entries) is full:
// established connections of clients 0..established-1, the rest spoofed
// SYNs.
func floodForwarder(t testing.TB, max, established int) (*Forwarder, []byte, *rand.Rand) {
	cfg := testConfig("wlc", 3)
	cfg.MaxConns = max
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true // the stateful defence alone (stateless_test.go has the rest)
	for i := range established {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(2 + i>>8), byte(i)}), 1000)
		f.Process(syn(c), &Meta{Time: t0})
		if res := f.Process(ack(c), &Meta{Time: t0}); res.Reason != ReasonExisting {
			t.Fatalf("established %d: %v", i, res.Reason)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	frame := syn(spoofed(rng))
	buf := make([]byte, len(frame))
	for f.TableLen() < max {
		copy(buf, frame)
		floodSYN(buf, rng.Uint32())
		f.Process(buf, &Meta{Time: t0})
	}
	return f, frame, rng
}

// TestSynFloodNoAllocations: a flood SYN evicting from a full table and an
// established flow's packet between them allocate nothing.
func TestSynFloodNoAllocations(t *testing.T) {
	f, frame, rng := floodForwarder(t, 4096, 256)
	buf := make([]byte, len(frame))
	m := &Meta{Time: t0}
	if n := testing.AllocsPerRun(2000, func() {
		copy(buf, frame)
		floodSYN(buf, rng.Uint32())
		f.Process(buf, m)
	}); n != 0 {
		t.Errorf("flood SYN: %v allocs per frame", n)
	}
	if f.Overload().SynEvicted < 2000 {
		t.Errorf("%d evicted, want every flood SYN to evict", f.Overload().SynEvicted)
	}
}

// BenchmarkSynFlood: the table full (65536 entries, 4096 of them
// established), spoofed SYNs interleaved one for one with established
// flows' packets; ns per frame. stateful: each SYN evicts a SYN_RECV
// entry; stateless: each SYN is placed by the hash, no entry
// (stateless.go). An established packet not forwarded as existing fails
// the benchmark.
func BenchmarkSynFlood(b *testing.B) {
	for _, stateful := range []bool{true, false} {
		b.Run(map[bool]string{true: "stateful", false: "stateless"}[stateful], func(b *testing.B) {
			benchSynFlood(b, stateful)
		})
	}
}

func benchSynFlood(b *testing.B, stateful bool) {
	const max, established = 65536, 4096
	f, frame, rng := floodForwarder(b, max, established)
	f.statefulSYN = stateful
	buf := make([]byte, len(frame))
	acks := make([][]byte, established)
	for i := range acks {
		acks[i] = ack(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(2 + i>>8), byte(i)}), 1000))
	}
	abuf := make([]byte, len(acks[0]))
	m := &Meta{Time: t0}
	ev := f.Overload().SynEvicted
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i&1 == 0 {
			copy(buf, frame)
			floodSYN(buf, rng.Uint32())
			f.Process(buf, m)
			continue
		}
		copy(abuf, acks[i>>1%established])
		if res := f.Process(abuf, m); res.Reason != ReasonExisting {
			b.Fatalf("established flow: %v", res.Reason)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(f.Overload().SynEvicted-ev)/float64(b.N), "evictions/frame")
	if f.Count(ReasonTableFull) != 0 {
		b.Fatalf("%d SYNs refused", f.Count(ReasonTableFull))
	}
}

// TestPressureEndsWhileIdle: once a flood stops and no frame reaches
// Process, the idle sweep (Tick) that empties the table also ends the
// pressure: Overload (drlb ctl, drlb_conntable_pressure) must not report
// it, nor StatelessSYNsOn keep the kernel's SYN lane on, for an empty
// table until the next connection happens to come.
func TestPressureEndsWhileIdle(t *testing.T) {
	for _, stateful := range []bool{true, false} {
		t.Run(map[bool]string{true: "stateful", false: "stateless"}[stateful], func(t *testing.T) {
			cfg := testConfig("rr", 2)
			cfg.MaxConns = 64
			f := newForwarder(t, cfg, Options{})
			f.statefulSYN = stateful
			rng := rand.New(rand.NewPCG(7, 8))
			for range 200 {
				process(t, f, syn(spoofed(rng)), t0)
			}
			if !f.Overload().Pressure {
				t.Fatal("no pressure during the flood")
			}
			// Idle: only the sweeper runs, past every timeout and the
			// stateless window.
			now := t0 + 61*second
			f.Tick(now, 2*f.TableSlots())
			if n := f.TableLen(); n != 0 {
				t.Fatalf("table holds %d after the idle sweep", n)
			}
			if f.Overload().Pressure || f.StatelessSYNsOn() {
				t.Fatalf("pressure still on (%+v) with an empty table and no flood", f.Overload())
			}
			if e := f.Overload().PressureEpisodes; e != 1 {
				t.Fatalf("%d pressure episodes, want 1", e)
			}
		})
	}
}

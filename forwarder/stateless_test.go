package forwarder

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/internal/framegen"
)

// TestStatelessSYN: under a spoofed SYN flood, once the table is under
// pressure SYNs go through without entry (syn-stateless), so the flood
// costs no table space and evicts nothing; a legitimate client's
// handshake is served (its ACK finds the server its SYN went to by the
// same hash and is inserted as SYN_RECV: pressure-adopted, then
// existing); established connections keep flowing; every frame is
// counted by reason and the per-server counters stay exact.
func TestStatelessSYN(t *testing.T) {
	for _, tc := range []struct {
		sched   string
		weights []int
	}{
		{"rr", []int{1, 1}},
		{"wlc", []int{1, 3}},
		{"wrr", []int{2, 1, 1}},
		{"mh", []int{1, 1}}, // consistent: its own hash places the SYNs
	} {
		t.Run(tc.sched, func(t *testing.T) {
			cfg := testConfig(tc.sched, len(tc.weights))
			for i, w := range tc.weights {
				cfg.Services[0].RealServers[i].Weight = w
			}
			cfg.MaxConns = 64
			f := newForwarder(t, cfg, Options{})
			const established = 16
			for i := range established {
				process(t, f, syn(client(i, 1000)), t0)
				res, _ := process(t, f, ack(client(i, 1000)), t0)
				expect(t, res, Forward, ReasonExisting)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			now := t0
			// Half full: pressure. The flood's first SYNs are stateful.
			for range cfg.MaxConns/2 - established {
				res, _ := process(t, f, syn(spoofed(rng)), now)
				expect(t, res, Forward, ReasonNew)
			}
			served := 0
			perReal := make([]int, len(tc.weights))
			for i := range 5000 {
				res, _ := process(t, f, syn(spoofed(rng)), now)
				expect(t, res, Forward, ReasonSynStateless)
				perReal[res.Real]++
				if i%250 == 0 {
					for j := range established {
						res, _ := process(t, f, ack(client(j, 1000)), now)
						expect(t, res, Forward, ReasonExisting)
					}
					c := client(100+i/250, 2000)
					s, _ := process(t, f, syn(c), now)
					expect(t, s, Forward, ReasonSynStateless)
					// The ACK a few ms later, after more flood.
					for range 5 {
						process(t, f, syn(spoofed(rng)), now)
					}
					a, _ := process(t, f, ack(c), now+int64(5*time.Millisecond))
					expect(t, a, Forward, ReasonPressureAdopted)
					if a.Real != s.Real {
						t.Fatalf("client %v: SYN to real %d, ACK to %d", c, s.Real, a.Real)
					}
					a, _ = process(t, f, ack(c), now+int64(6*time.Millisecond))
					expect(t, a, Forward, ReasonExisting)
					if a.Real != s.Real {
						t.Fatalf("client %v: SYN to real %d, next ACK to %d", c, s.Real, a.Real)
					}
					served++
				}
				now += int64(time.Millisecond)
			}
			o := f.Overload()
			if !o.Pressure || o.PressureEpisodes != 1 || o.SynEvicted != 0 {
				t.Fatalf("after the flood: %+v", o)
			}
			if want := cfg.MaxConns/2 + served; f.TableLen() != want {
				t.Fatalf("table holds %d, want %d (the flood's stateful SYNs, established, adopted)", f.TableLen(), want)
			}
			if f.Count(ReasonSynStateless) != uint64(5000+5*served+served) || f.Count(ReasonPressureAdopted) != uint64(served) ||
				f.Count(ReasonNew) != uint64(cfg.MaxConns/2) || f.Count(ReasonTableFull) != 0 || f.Count(ReasonNoConn) != 0 {
				t.Fatalf("by reason: syn-stateless %d, pressure-adopted %d, new %d, table-full %d, no-conn %d",
					f.Count(ReasonSynStateless), f.Count(ReasonPressureAdopted), f.Count(ReasonNew), f.Count(ReasonTableFull), f.Count(ReasonNoConn))
			}
			active, inactive := 0, 0
			for _, r := range f.Stats()[0].RealServers {
				active += r.Active
				inactive += r.Inactive
			}
			if est := countEstablished(f); est != established+served || active+inactive != f.TableLen() {
				t.Fatalf("%d established %d active %d inactive, table %d; want %d established", est, active, inactive, f.TableLen(), established+served)
			}
			// The hash follows the weights (5000 flows: within 15%).
			total := 0
			for _, w := range tc.weights {
				total += w
			}
			for i, w := range tc.weights {
				want := 5000 * w / total
				if d := perReal[i] - want; d*100 > want*15 || -d*100 > want*15 {
					t.Errorf("real %d (weight %d): %d stateless SYNs, want about %d", i, w, perReal[i], want)
				}
			}
		})
	}
}

// TestStatelessTableFull: a table full of established connections does
// not stop new ones while under pressure (their ACKs are forwarded by the
// hash without entry: stateless-full) and none of them is evicted. Once
// StatelessWindow has passed since the last stateless SYN, a mid-flow
// packet without entry is refused again (no-conn) as without pressure.
func TestStatelessTableFull(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 32
	f := newForwarder(t, cfg, Options{})
	for i := range 32 {
		// Past half full, SYNs are stateless and the ACK makes a
		// SYN_RECV entry: the next packet makes it ESTABLISHED.
		process(t, f, syn(client(i, 1000)), t0)
		process(t, f, ack(client(i, 1000)), t0)
		process(t, f, ack(client(i, 1000)), t0)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		res, _ := process(t, f, syn(spoofed(rng)), t0)
		expect(t, res, Forward, ReasonSynStateless)
	}
	c := client(100, 2000)
	s, _ := process(t, f, syn(c), t0)
	expect(t, s, Forward, ReasonSynStateless)
	for range 3 {
		a, _ := process(t, f, ack(c), t0+second)
		expect(t, a, Forward, ReasonStatelessFull)
		if a.Real != s.Real {
			t.Fatalf("SYN to real %d, ACK to %d", s.Real, a.Real)
		}
	}
	for i := range 32 {
		res, _ := process(t, f, ack(client(i, 1000)), t0+second)
		expect(t, res, Forward, ReasonExisting)
	}
	if o := f.Overload(); o.SynEvicted != 0 || f.TableLen() != 32 {
		t.Fatalf("%+v, table %d", o, f.TableLen())
	}
	// The window closes StatelessWindow after the last stateless SYN.
	late := t0 + int64(StatelessWindow)
	res, _ := process(t, f, ack(c), late-1)
	expect(t, res, Forward, ReasonStatelessFull)
	res, _ = process(t, f, ack(c), late)
	expect(t, res, Drop, ReasonNoConn)
}

// TestStatelessPressure: pressure holds while stateless SYNs keep coming
// though the table drains (they count as the SYN_RECV entries they would
// have made), and ends once they stop and the table is below
// PressureOffPercent; then SYNs are stateful again.
func TestStatelessPressure(t *testing.T) {
	cfg := testConfig("wlc", 2)
	cfg.MaxConns = 100
	cfg.Timeouts.TCPSynRecv = 2 * time.Second // the flood's stateful entries go soon
	f := newForwarder(t, cfg, Options{})
	rng := rand.New(rand.NewPCG(5, 6))
	now := t0
	for range 50 {
		process(t, f, syn(spoofed(rng)), now)
	}
	// 100 SYNs/s for 10 s: 300 to 400 would-be entries in 3 to 4 s.
	for range 1000 {
		res, _ := process(t, f, syn(spoofed(rng)), now)
		expect(t, res, Forward, ReasonSynStateless)
		now += 10 * int64(time.Millisecond)
	}
	if n := f.TableLen(); n != 0 {
		t.Fatalf("table holds %d after 10 s of stateless SYNs, want 0", n)
	}
	if o := f.Overload(); !o.Pressure || o.PressureEpisodes != 1 {
		t.Fatalf("during the flood: %+v", o)
	}
	// The flood stops; a client (one every 500 ms) sees stateless SYNs
	// until the flood's would-be entries are under 40% of the table.
	stateful := -1
	for i := range 20 {
		now += 500 * int64(time.Millisecond)
		res, _ := process(t, f, syn(client(i, 3000)), now)
		if res.Reason == ReasonNew && stateful < 0 {
			stateful = i
		}
	}
	// A second's SYNs count for the 3 whole seconds after it: 100 each
	// until 3 s after the last (the client's own stateless SYNs count
	// too, but far below 40).
	if stateful < 4 || stateful > 7 || f.Overload().Pressure {
		t.Fatalf("first stateful SYN after %d half seconds, pressure %v; want 4 to 7, off", stateful, f.Overload().Pressure)
	}
}

// TestStatelessSync: a stateless SYN records no sync event (it has no
// entry); nor does the adopted ACK, whose entry is SYN_RECV under
// pressure (syncWithheld: a spoofed ACK's in the window is sent to no
// peer); the client's next packet records it as ESTABLISHED.
func TestStatelessSync(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 16
	f := newForwarder(t, cfg, Options{})
	f.EnableSync(64)
	rng := rand.New(rand.NewPCG(7, 8))
	for range 8 {
		process(t, f, syn(spoofed(rng)), t0)
	}
	f.ResetSyncEvents()
	c := client(1, 2000)
	res, _ := process(t, f, syn(c), t0)
	expect(t, res, Forward, ReasonSynStateless)
	if n := len(f.SyncEvents()); n != 0 {
		t.Fatalf("stateless SYN recorded %d sync events", n)
	}
	res, _ = process(t, f, ack(c), t0)
	expect(t, res, Forward, ReasonPressureAdopted)
	if ev := f.SyncEvents(); len(ev) != 0 {
		t.Fatalf("sync events of the adopted ACK %+v", ev)
	}
	// The client's next packet makes it ESTABLISHED, for the peers too.
	next, _ := process(t, f, ack(c), t0)
	expect(t, next, Forward, ReasonExisting)
	ev := f.SyncEvents()
	if len(ev) != 1 || ev[0].Op != connsync.OpUpsert || ev[0].State != stateEstablished ||
		ev[0].Key.CPort != c.Port() || ev[0].Real != cfg.Services[0].RealServers[res.Real].Address {
		t.Fatalf("sync events after the next packet %+v", ev)
	}
}

// TestStatelessSpoofedACKs: spoofed ACKs sent within the adoption window
// make SYN_RECV entries, which expire after the short pressure timeout and
// are evicted first: they cannot fill the table with ESTABLISHED entries
// that would refuse real clients for the full timeout.
func TestStatelessSpoofedACKs(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 64
	f := newForwarder(t, cfg, Options{})
	rng := rand.New(rand.NewPCG(9, 10))
	for range 140 {
		process(t, f, syn(spoofed(rng)), t0)
	}
	// The SYNs before pressure began made ordinary SYN_RECV entries
	// (tcp_synrecv: 60 s); the rest made none.
	before := f.TableLen()
	for range 200 {
		process(t, f, ack(spoofed(rng)), t0)
	}
	if active := countEstablished(f); active != 0 {
		t.Fatalf("%d ESTABLISHED entries from spoofed ACKs, want 0", active)
	}
	// A real client within the window: its SYN is stateless, its ACK
	// takes the place of a spoofed one, its next packet is ESTABLISHED.
	c := client(1, 3000)
	expect(t, f.Process(syn(c), &Meta{Time: t0 + second}), Forward, ReasonSynStateless)
	expect(t, f.Process(ack(c), &Meta{Time: t0 + second}), Forward, ReasonPressureAdopted)
	expect(t, f.Process(ack(c), &Meta{Time: t0 + 2*second}), Forward, ReasonExisting)
	// The spoofed ACKs' entries are gone after the pressure timeout: what
	// is left is at most the SYN entries from before pressure, and the
	// real client's.
	// Two passes: entries shifted back across where a pass began are
	// left for the next one.
	f.Tick(t0+10*second, f.TableSlots())
	f.Tick(t0+10*second, f.TableSlots())
	if n := f.TableLen(); n > before+1 {
		t.Fatalf("table holds %d entries after the pressure timeout, want at most %d (the SYNs' before pressure, and the real client's)", n, before+1)
	}
	f.Tick(t0+61*second, f.TableSlots())
	f.Tick(t0+61*second, f.TableSlots())
	if n := f.TableLen(); n != 1 {
		t.Fatalf("table holds %d entries after tcp_synrecv, want the real client's 1", n)
	}
}

// TestStatelessSpoofedFlood: whatever spoofed packets without entry come
// within the adoption window, they leave no entry that eviction refuses:
// ACKs and data make SYN_RECV entries (short-lived, evicted first), a FIN
// or a reset makes none, as IPVS makes no connection of a reset. So a real
// client's handshake, once the flood has filled the table, still gets an
// entry (pressure-adopted, evicting a flood's) that outlives the window.
// Spoofed FINs used to make FIN_WAIT entries (tcp_fin_wait, 120 s) and
// resets CLOSE ones, neither evictable: the real client's ACK got
// stateless-full, and no-conn once the window closed.
func TestStatelessSpoofedFlood(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   string
		entries bool // the flood makes entries (SYN_RECV, evictable)
	}{
		{"ACK", "A", true},
		{"FIN", "FA", false},
		{"data", "PA", true},
		{"SYN-ACK", "SA", true},
		{"reset", "R", false},
		{"reset-ACK", "RA", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("rr", 2)
			cfg.MaxConns = 64
			f := newForwarder(t, cfg, Options{})
			rng := rand.New(rand.NewPCG(9, 10))
			for range 140 { // pressure, the window open
				process(t, f, syn(spoofed(rng)), t0)
			}
			before := f.TableLen()
			for range 200 {
				res, _ := process(t, f, framegen.TCP(toDir, spoofed(rng), netip.AddrPortFrom(vip, 80), tc.flags, 2, 1, nil), t0)
				expect(t, res, Forward, ReasonPressureAdopted)
			}
			f.RangeConnEntries(t0, func(c ConnEntry) bool {
				if c.State != "SYN_RECV" {
					t.Fatalf("a %s entry after the flood: %+v", c.State, c)
				}
				return true
			})
			switch n := f.TableLen(); {
			case tc.entries && (n != cfg.MaxConns || f.Overload().SynEvicted == 0):
				t.Fatalf("the flood left %d entries, evicted %d; want a full table, evicting", n, f.Overload().SynEvicted)
			case !tc.entries && n != before:
				t.Fatalf("%ss without entry took the table from %d entries to %d", tc.name, before, n)
			}
			c := client(1, 3000)
			expect(t, f.Process(syn(c), &Meta{Time: t0 + second}), Forward, ReasonSynStateless)
			expect(t, f.Process(ack(c), &Meta{Time: t0 + second}), Forward, ReasonPressureAdopted)
			expect(t, f.Process(ack(c), &Meta{Time: t0 + 2*second}), Forward, ReasonExisting)
			late := t0 + second + int64(StatelessWindow) // the window closed
			expect(t, f.Process(ack(c), &Meta{Time: late}), Forward, ReasonExisting)
		})
	}
}

// TestStatelessPersistent: a service with persistence keeps the stateful
// defence under pressure (its SYNs make entries and templates).
func TestStatelessPersistent(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 64
	cfg.Services[0].Persistence = 300 * time.Second
	f := newForwarder(t, cfg, Options{})
	for i := range 40 {
		res, _ := process(t, f, syn(client(i, 1000)), t0)
		expect(t, res, Forward, ReasonNew)
	}
	if !f.Overload().Pressure {
		t.Fatal("no pressure at 80 entries of 64")
	}
	res, _ := process(t, f, ack(client(100, 1000)), t0)
	expect(t, res, Drop, ReasonNoConn)
}

// TestStatelessNoAllocations: a stateless flood SYN and an adopted ACK
// allocate nothing.
func TestStatelessNoAllocations(t *testing.T) {
	cfg := testConfig("wlc", 3)
	cfg.MaxConns = 1 << 16
	f := newForwarder(t, cfg, Options{})
	rng := rand.New(rand.NewPCG(9, 10))
	frame := syn(spoofed(rng))
	for f.TableLen() < cfg.MaxConns/2 {
		buf := append([]byte(nil), frame...)
		floodSYN(buf, rng.Uint32())
		f.Process(buf, &Meta{Time: t0})
	}
	buf := make([]byte, len(frame))
	m := &Meta{Time: t0}
	if n := testing.AllocsPerRun(2000, func() {
		copy(buf, frame)
		floodSYN(buf, rng.Uint32())
		f.Process(buf, m)
	}); n != 0 {
		t.Errorf("stateless SYN: %v allocs per frame", n)
	}
	a := ack(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, 0}), 1000))
	abuf := make([]byte, len(a))
	if n := testing.AllocsPerRun(2000, func() {
		copy(abuf, a)
		floodSYN(abuf, rng.Uint32())
		f.Process(abuf, m)
	}); n != 0 {
		t.Errorf("adopted ACK: %v allocs per frame", n)
	}
	if f.Count(ReasonSynStateless) < 2000 || f.Count(ReasonPressureAdopted) < 2000 {
		t.Errorf("syn-stateless %d, pressure-adopted %d; want 2000 or more each", f.Count(ReasonSynStateless), f.Count(ReasonPressureAdopted))
	}
}

// TestStatelessServers: under pressure the hash follows health and
// weights as the scheduler does: a quiesced or failed server gets no
// stateless SYN (and its flows' ACKs follow their SYNs elsewhere); with
// no real server left, SYNs take the stateful path to the sorry server.
func TestStatelessServers(t *testing.T) {
	cfg := sorryConfig("wlc", false)
	cfg.MaxConns = 256
	f := newForwarder(t, cfg, Options{})
	rng := rand.New(rand.NewPCG(11, 12))
	for range 128 {
		process(t, f, syn(spoofed(rng)), t0)
	}
	for n, tc := range []struct {
		name   string
		change func() error
		want   Reason
		real   int // -1: either real server
	}{
		{"both up", func() error { return nil }, ReasonSynStateless, -1},
		{"0 quiesced", func() error { return f.SetWeight(0, 0, 0) }, ReasonSynStateless, 1},
		{"0 back, 1 down", func() error {
			if err := f.SetWeight(0, 0, 1); err != nil {
				return err
			}
			return f.SetAvailable(0, 1, false)
		}, ReasonSynStateless, 0},
		{"both down", func() error { return f.SetAvailable(0, 0, false) }, ReasonSorry, 2},
	} {
		if err := tc.change(); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), uint16(3000+100*n+i))
			res, _ := process(t, f, syn(c), t0)
			expect(t, res, Forward, tc.want)
			if tc.real >= 0 && res.Real != tc.real {
				t.Fatalf("%s: SYN to real %d, want %d", tc.name, res.Real, tc.real)
			}
			if tc.want == ReasonSorry {
				continue
			}
			a, _ := process(t, f, ack(c), t0)
			if a.Reason != ReasonPressureAdopted && a.Reason != ReasonStatelessFull || a.Real != res.Real {
				t.Fatalf("%s: ACK %v to real %d, SYN to %d", tc.name, a.Reason, a.Real, res.Real)
			}
			process(t, f, framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "R", 3, 0, nil), t0)
		}
	}
}

// TestStatelessClosingClient: a real client closing a connection that has
// no entry (after a restart or a failover without sync), within the
// adoption window: its FIN is forwarded without entry, and its last ACK
// makes a SYN_RECV entry, short-lived under pressure. Adopted as SYN_RECV,
// the FIN's entry became ESTABLISHED at that ACK, for the full tcp
// timeout, and the closing client counted as one that completed a
// handshake (the trusted lane).
func TestStatelessClosingClient(t *testing.T) {
	for _, sched := range []string{"rr", "mh"} {
		t.Run(sched, func(t *testing.T) {
			cfg := testConfig(sched, 2)
			cfg.MaxConns = 64
			f := newForwarder(t, cfg, Options{})
			rng := rand.New(rand.NewPCG(9, 10))
			for range 140 { // pressure, the window open
				process(t, f, syn(spoofed(rng)), t0)
			}
			f.TakeHandshakes(nil)
			c := client(1, 3000)
			res, _ := process(t, f, fin(c), t0)
			expect(t, res, Forward, ReasonPressureAdopted)
			last := framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "A", 4, 2, nil)
			res, _ = process(t, f, last, t0+second)
			expect(t, res, Forward, ReasonPressureAdopted)
			f.RangeConnEntries(t0+second, func(e ConnEntry) bool {
				if e.Client == c && (e.State != "SYN_RECV" || e.Expires > SynRecvPressureTimeout) {
					t.Errorf("the closing client's entry: %s for %v; want SYN_RECV for at most %v", e.State, e.Expires, SynRecvPressureTimeout)
				}
				return true
			})
			if hs := f.TakeHandshakes(nil); len(hs) > 0 {
				t.Errorf("a closing client reported as a completed handshake: %v", hs)
			}
		})
	}
}

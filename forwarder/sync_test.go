package forwarder

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/conntable"
)

// toEntry is what the director sends for an event.
func toEntry(ev *SyncEvent) connsync.Entry {
	return connsync.Entry{Op: ev.Op, Proto: ev.Key.Proto, Kind: ev.Key.Kind, State: ev.State,
		CIP: netip.AddrFrom16(ev.Key.CIP).Unmap(), VIP: netip.AddrFrom16(ev.Key.VIP).Unmap(), CPort: ev.Key.CPort, VPort: ev.Key.VPort,
		SvcPort: ev.SvcPort, Real: ev.Real, Timeout: ev.Timeout}
}

// take returns the recorded events and empties the buffer.
func take(f *Forwarder) []SyncEvent {
	evs := append([]SyncEvent(nil), f.SyncEvents()...)
	f.ResetSyncEvents()
	return evs
}

// A connection scheduled by rr on one director is carried by another
// that learned it by sync: the same real server, mid-flow (rr cannot
// adopt a flow it has not seen), and the counters count it.
func TestSyncCarriesFlows(t *testing.T) {
	a := newForwarder(t, testConfig("rr", 3), Options{})
	b := newForwarder(t, testConfig("rr", 3), Options{})
	a.EnableSync(64)
	b.EnableSync(64)
	var servers []int
	for i := 0; i < 3; i++ {
		res, _ := process(t, a, syn(client(i, 40000)), t0)
		servers = append(servers, res.Real)
	}
	evs := take(a)
	if len(evs) != 3 || evs[0].Op != connsync.OpUpsert || evs[0].State != stateSynRecv || evs[0].Timeout != config60(a) {
		t.Fatalf("events after 3 SYNs: %+v", evs)
	}
	for i := range evs {
		e := toEntry(&evs[i])
		if r := b.ApplySync(&e, t0); r != SyncApplied {
			t.Fatalf("apply: %v", SyncResultNames[r])
		}
	}
	if got := b.TakeHandshakes(nil); len(got) != 0 {
		t.Fatalf("b trusts %v after SYN_RECV entries", got)
	}
	// The ACKs go to b: each flow to its server.
	for i := 0; i < 3; i++ {
		res, _ := process(t, b, ack(client(i, 40000)), t0+second)
		expect(t, res, Forward, ReasonExisting)
		if res.Real != servers[i] {
			t.Fatalf("flow %d: b sent it to %d, a to %d", i, res.Real, servers[i])
		}
	}
	// b's state changes go back (SYN_RECV -> ESTABLISHED), nothing else.
	back := take(b)
	if len(back) != 3 || back[0].State != stateEstablished {
		t.Fatalf("b's events: %+v", back)
	}
	// Another ACK changes nothing: no event.
	process(t, b, ack(client(0, 40000)), t0+2*second)
	if evs := take(b); len(evs) != 0 {
		t.Fatalf("no change, events %+v", evs)
	}
	for i, r := range b.Stats()[0].RealServers {
		if r.Active != 1 || r.Inactive != 0 {
			t.Errorf("b's server %d: %d active %d inactive, want 1 and 0", i, r.Active, r.Inactive)
		}
	}
	// Applying the same again changes no counter; an end deletes.
	for i := range back {
		e := toEntry(&back[i])
		a.ApplySync(&e, t0+second)
		a.ApplySync(&e, t0+second)
	}
	for i, r := range a.Stats()[0].RealServers {
		if r.Active != 1 || r.Inactive != 0 {
			t.Errorf("a's server %d: %d active %d inactive, want 1 and 0", i, r.Active, r.Inactive)
		}
	}
	// b saw the handshakes complete; a, which saw only the SYNs, trusts
	// the clients from b's established entries, once each.
	if got := a.TakeHandshakes(nil); len(got) != 3 || got[0] != client(0, 0).Addr() {
		t.Fatalf("a trusts %v after b's established entries, want the 3 clients", got)
	}
	e := toEntry(&back[0])
	e.Op = connsync.OpEnd
	if r := a.ApplySync(&e, t0+second); r != SyncEnded {
		t.Fatal(SyncResultNames[r])
	}
	if n := a.table.Len(); n != 2 {
		t.Fatalf("%d entries after an end, want 2", n)
	}
	// Unknown service or server: skipped.
	e.Op, e.SvcPort = connsync.OpUpsert, 8080
	if r := a.ApplySync(&e, t0); r != SyncUnknownService {
		t.Fatal(SyncResultNames[r])
	}
	e.SvcPort, e.Real = 80, netip.MustParseAddr("198.18.0.99")
	if r := a.ApplySync(&e, t0); r != SyncUnknownServer {
		t.Fatal(SyncResultNames[r])
	}
}

func config60(f *Forwarder) time.Duration { return f.cur.Load().timeouts[stateSynRecv] }

// An established flow that keeps its state is sent again once half its
// timeout passed since it was last sent, so the peer's copy never
// expires while the flow lives.
func TestSyncRefresh(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableSync(64)
	c := client(0, 40000)
	process(t, f, syn(c), t0)
	process(t, f, ack(c), t0)
	take(f)
	est := f.cur.Load().timeouts[stateEstablished]
	process(t, f, ack(c), t0+int64(est/4))
	if evs := take(f); len(evs) != 0 {
		t.Fatalf("refresh too early: %+v", evs)
	}
	process(t, f, ack(c), t0+int64(est/2)+int64(2*syncUnit))
	if evs := take(f); len(evs) != 1 || evs[0].State != stateEstablished {
		t.Fatalf("no refresh after half the timeout: %+v", evs)
	}
}

// TestSyncEvictionsCounted: a backup's table fills from its peer's
// records as a master's does from frames, and what ApplySync evicts to
// make room counts in Overload as Process's evictions do (it stayed 0 on
// a backup).
func TestSyncEvictionsCounted(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 8
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true // SYNs make entries under pressure too
	for i := range 8 {
		process(t, f, syn(client(i, 1000)), t0) // 8 SYN_RECV entries: full
	}
	rs := cfg.Services[0].RealServers[0].Address
	for i := range 4 {
		e := connsync.Entry{Op: connsync.OpUpsert, Proto: protoTCP, CIP: netip.MustParseAddr("198.18.2.1"), VIP: vip,
			CPort: uint16(5000 + i), VPort: 80, SvcPort: 80, Real: rs, State: stateEstablished, Timeout: 900 * time.Second}
		if r := f.ApplySync(&e, t0); r != SyncApplied {
			t.Fatalf("ApplySync: %v", SyncResultNames[r])
		}
	}
	if got, tab := f.Overload().SynEvicted, f.table.Evicted(); got != 4 || tab != 4 {
		t.Fatalf("Overload().SynEvicted %d, table evicted %d; want 4 and 4", got, tab)
	}
}

// A full event buffer drops and counts; the data path goes on.
func TestSyncBufferFull(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableSync(2)
	for i := 0; i < 5; i++ {
		res, _ := process(t, f, syn(client(i, 40000)), t0)
		expect(t, res, Forward, ReasonNew)
	}
	if len(f.SyncEvents()) != 2 || f.SyncDropped() != 3 {
		t.Fatalf("%d events, %d dropped", len(f.SyncEvents()), f.SyncDropped())
	}
}

// With sync on, the data path still allocates nothing, new flows and
// old, and neither does applying a peer's entry.
func TestSyncNoAllocations(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableSync(1 << 12)
	c := client(0, 1000)
	frame := syn(c)
	buf := make([]byte, len(frame))
	m := &Meta{Time: t0}
	f.Process(append([]byte(nil), frame...), m)
	e := toEntry(&f.SyncEvents()[0])
	port := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		port++
		buf[14+20], buf[14+21] = byte(port>>8), byte(port)
		f.Process(buf, m)
		if len(f.SyncEvents()) > 1000 {
			f.ResetSyncEvents()
		}
	}); n != 0 {
		t.Errorf("new flow with sync: %v allocs per frame", n)
	}
	g := newForwarder(t, testConfig("rr", 3), Options{})
	if n := testing.AllocsPerRun(1000, func() {
		e.CPort++
		g.ApplySync(&e, t0)
	}); n != 0 {
		t.Errorf("ApplySync: %v allocs", n)
	}
	var seen int
	// The new flows above filled the table past its pressure mark, and a
	// bulk copy under pressure leaves out their SYN_RECV entries.
	f.pressure.Store(false)
	if n := testing.AllocsPerRun(10, func() {
		f.RangeSync(0, f.TableSlots(), t0, func(*SyncEvent) { seen++ })
	}); n > 1 {
		t.Errorf("RangeSync: %v allocs per walk of the table, want at most 1 (not per entry)", n)
	}
	if seen == 0 {
		t.Error("RangeSync saw nothing")
	}
}

// TestSyncDueLongTimeout: with a timeout longer than the stamp's range
// (128 units of 16 s), an entry whose frames come once a minute is sent
// again within 1024 s of the last time and stays due until it is: the
// stamp's wrap does not hide it.
func TestSyncDueLongTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{2 * time.Hour, 24 * time.Hour, 4064 * time.Second} {
		stamp := syncStamp(t0)
		first := time.Duration(-1)
		for d := time.Duration(0); d < 2032*time.Second; d += time.Minute {
			due := syncDue(stamp, t0+int64(d), timeout)
			if due && first < 0 {
				first = d
			}
			if first >= 0 && !due {
				t.Fatalf("timeout %v: due %v after the last send, then not at %v", timeout, first, d)
			}
		}
		if first < 0 || first > 1024*time.Second+syncUnit+time.Minute { // a unit's rounding, a minute's step
			t.Fatalf("timeout %v: first due %v after the last send, want within 1024 s", timeout, first)
		}
	}
}

// relay applies a's recorded events to b at now and returns how many.
func relay(t *testing.T, a, b *Forwarder, now int64) int {
	t.Helper()
	evs := take(a)
	for i := range evs {
		e := toEntry(&evs[i])
		if r := b.ApplySync(&e, now); r != SyncApplied {
			t.Fatalf("apply: %v", SyncResultNames[r])
		}
	}
	return len(evs)
}

// connKey is the table key of client(i, 40000)'s connection to vip:80.
func connKey(i int) conntable.Key {
	c := client(i, 40000)
	return conntable.Key{CIP: c.Addr().As16(), VIP: vip.As16(), CPort: c.Port(), VPort: 80, Proto: protoTCP, Kind: conntable.KindConn}
}

// templateKeyOf is the table key of client(i, _)'s persistence template.
func templateKeyOf(i int) conntable.Key {
	return conntable.Key{CIP: client(i, 0).Addr().As16(), VIP: vip.As16(), VPort: 80, Proto: protoTCP, Kind: conntable.KindTemplate}
}

// TestSyncPeerKeepsEntryUntilRefresh: the master sends an unchanged flow
// again only with a frame at least half a timeout after the last send, so
// the peer keeps its copy that much longer than the timeout. Frames at 0
// and 430 s (not due: 430 < 450) and a failover at 1000 s: the master's
// entry lives (last frame 570 s ago, timeout 900 s), and so must the
// backup's; kept for the timeout alone, it died at 900 s and rr dropped
// the flow (no-conn).
func TestSyncPeerKeepsEntryUntilRefresh(t *testing.T) {
	a := newForwarder(t, testConfig("rr", 3), Options{})
	b := newForwarder(t, testConfig("rr", 3), Options{})
	a.EnableSync(64)
	c := client(1, 40000)
	process(t, a, syn(client(0, 1)), t0) // rr: c's flow goes to server 1, not 0
	process(t, a, syn(c), t0)
	process(t, a, ack(c), t0)
	relay(t, a, b, t0)
	k := connKey(1)
	if got, want := b.table.Expires(b.table.Lookup(&k, t0)), t0+int64(syncHold(900*time.Second)); got < want {
		t.Errorf("the peer keeps the copy until %v s, want %v s", (got-t0)/second, (want-t0)/second)
	}
	process(t, a, ack(c), t0+430*second)
	if n := relay(t, a, b, t0+430*second); n != 0 {
		t.Fatalf("%d records at 430 s, want none (not due before 450 s)", n)
	}
	now := t0 + 1000*second
	if a.table.Lookup(&k, now) == nil {
		t.Fatal("the master lost the flow")
	}
	res, _ := process(t, b, ack(c), now) // failover: the flow reaches b
	if res.Verdict != Forward || res.Reason != ReasonExisting || res.Real != 1 {
		t.Errorf("the backup after failover: %v/%v to %d, want forward/existing to 1", res.Verdict, res.Reason, res.Real)
	}
}

// TestSyncLongTimeoutRefreshDespiteWrap: with tcp 7200 s and a frame
// every 2200 s, the 7-bit stamp (16 s units, wrapping every 2048 s) says
// 9 units since the last send at every frame: the flow was never sent
// again and the peer's copy expired while the master's lived. The last
// frame's age (expiry - timeout) makes it due.
func TestSyncLongTimeoutRefreshDespiteWrap(t *testing.T) {
	a, b, c := syncedConnection(t, t0, func(cfg *config.Config) { cfg.Timeouts.TCPEstablished = 7200 * time.Second })
	k := connKey(0)
	for i := int64(1); i <= 4; i++ {
		now := t0 + i*2200*second
		e := a.table.Lookup(&k, now)
		if e == nil {
			t.Fatalf("the master lost the flow at %d s", i*2200)
		}
		if syncDue(e.Flags, now, 7200*time.Second) {
			t.Fatalf("at %d s the stamp says due: the case is not the stamp's wrap", i*2200)
		}
		process(t, a, ack(c), now)
		if n := relay(t, a, b, now); n != 1 {
			t.Errorf("at %d s (2200 s after the last send) %d records, want 1", i*2200, n)
		}
	}
	now := t0 + 4*2200*second + 7200*second - second
	if a.table.Lookup(&k, now) == nil {
		t.Fatal("the master lost the flow")
	}
	if b.table.Lookup(&k, now) == nil {
		t.Error("the flow lives on the master, the backup's copy expired")
	}
}

// TestSyncTemplateHeldByConnection: the master keeps a persistence
// template alive as long as its connection (holdTemplate) but sent it
// only when a new connection picked it: the backup's copy expired after
// the persistence timeout, and after a failover the client's next
// connection was scheduled afresh. The backup holds its copy by its copy
// of the connection (from 300 s on it was gone), and the master sends it
// with the connection's records when due.
func TestSyncTemplateHeldByConnection(t *testing.T) {
	a, b, c := syncedConnection(t, t0, func(cfg *config.Config) { cfg.Services[0].Persistence = 300 * time.Second })
	tk := templateKeyOf(0)
	for _, s := range []int64{200, 400, 600, 800} {
		now := t0 + s*second
		if b.table.Lookup(&tk, now) == nil {
			t.Fatalf("at %d s the backup has no template, the master's lives", s)
		}
		process(t, a, ack(c), now)
		evs := take(a)
		templates := 0
		for i := range evs {
			e := toEntry(&evs[i])
			if e.Kind == conntable.KindTemplate {
				templates++
				if e.Timeout < 900*time.Second {
					t.Errorf("at %d s the template is sent with %v, want its time left (at least the connection's 900 s)", s, e.Timeout)
				}
			}
			if r := b.ApplySync(&e, now); r != SyncApplied {
				t.Fatalf("apply: %v", SyncResultNames[r])
			}
		}
		if want := map[bool]int{true: 1}[s == 600]; templates != want {
			t.Errorf("at %d s %d template records, want %d (with the connection's, due at 600 s)", s, templates, want)
		}
	}
	now := t0 + 850*second
	if a.table.Lookup(&tk, now) == nil {
		t.Fatal("the master has no template")
	}
	if b.table.Lookup(&tk, now) == nil {
		t.Fatal("the master's template lives (held by the connection), the backup's expired")
	}
	// Failover: the client's next connection goes where the template says.
	res, _ := process(t, b, syn(client(0, 40001)), now)
	if res.Reason != ReasonPersistent || res.Real != 0 {
		t.Errorf("the client's next connection on the backup: %v to %d, want persistent to 0", res.Reason, res.Real)
	}
}

// TestSyncPeerCopyCoversMaster: frames at random gaps within the timeout
// keep a flow and its template alive on the master; just before every
// frame, the backup fed with the master's records has both too (timeouts
// around and beyond the stamp's 2048 s range, persistence shorter and
// longer than the connection's timeout).
func TestSyncPeerCopyCoversMaster(t *testing.T) {
	for _, tc := range []struct{ timeout, persist time.Duration }{
		{60 * time.Second, 0},
		{900 * time.Second, 300 * time.Second},
		{2000 * time.Second, 3600 * time.Second},
		{3000 * time.Second, 0},
		{7200 * time.Second, 600 * time.Second},
		{86400 * time.Second, 7200 * time.Second},
	} {
		now := t0
		a, b, c := syncedConnection(t, now, func(cfg *config.Config) {
			cfg.Timeouts.TCPEstablished = tc.timeout
			cfg.Services[0].Persistence = tc.persist
		})
		rng := rand.New(rand.NewPCG(uint64(tc.timeout), 1))
		k, tk := connKey(0), templateKeyOf(0)
		sent := 0
		for i := range 400 {
			gap := 1 + rng.Int64N(int64(tc.timeout/time.Second)-1)
			if i%3 == 0 {
				gap = int64(tc.timeout/time.Second) - 1 - rng.Int64N(20) // near the end
			}
			now += gap * second
			check := now - second/2
			if a.table.Lookup(&k, check) == nil {
				t.Fatalf("timeout %v: the master lost the flow", tc.timeout)
			}
			if b.table.Lookup(&k, check) == nil {
				t.Fatalf("timeout %v, frame %d: the master's flow lives (last frame %d s ago), the backup's copy expired (%d records so far)",
					tc.timeout, i, gap, sent)
			}
			if tc.persist > 0 && a.table.Lookup(&tk, check) != nil && b.table.Lookup(&tk, check) == nil {
				t.Fatalf("timeout %v, frame %d: the master's template lives, the backup's expired", tc.timeout, i)
			}
			process(t, a, ack(c), now)
			sent += relay(t, a, b, now)
		}
	}
}

// TestResendDueByLastFrame: an entry whose last frame is syncIdleDue ago
// is due whatever its stamp says (the stamp wrapped), and an entry whose
// stamp is not due with recent frames is not.
func TestResendDueByLastFrame(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	f.EnableSync(64)
	const timeout = 7200 * time.Second
	k := connKey(0)
	e, err := f.table.Insert(&k, t0)
	if err != nil {
		t.Fatal(err)
	}
	f.table.SetTimeout(e, t0, timeout)
	stampSync(e, t0)
	for _, tc := range []struct {
		after time.Duration
		due   bool
	}{
		{10 * time.Minute, false},
		{syncIdleDue - time.Second, false},
		{syncIdleDue, true},
		{2048 * time.Second, true},                  // the stamp reads 0 units
		{2048*time.Second + 9*16*time.Second, true}, // 9 units
	} {
		if got := f.resendDue(e, t0+int64(tc.after), timeout); got != tc.due {
			t.Errorf("%v after the last frame and send: due %v, want %v", tc.after, got, tc.due)
		}
	}
}

// syncedConnection builds a master a and a backup b from testConfig("rr",
// 3) as tweak changes it, opens client(0, 40000)'s connection through a
// at now and relays a's records to b.
func syncedConnection(t *testing.T, now int64, tweak func(*config.Config)) (a, b *Forwarder, c netip.AddrPort) {
	t.Helper()
	mk := func() *Forwarder {
		cfg := testConfig("rr", 3)
		tweak(cfg)
		return newForwarder(t, cfg, Options{})
	}
	a, b = mk(), mk()
	a.EnableSync(64)
	c = client(0, 40000)
	process(t, a, syn(c), now)
	process(t, a, ack(c), now)
	relay(t, a, b, now)
	return a, b, c
}

// TestSyncEndOfRemoved: the end of a connection whose real server (or
// whole service) a reload removed on both directors deletes the peer's
// copy; it used to be refused as unknown_server (unknown_service),
// counted and logged as the configurations differing, and the copy lived
// on for its whole timeout. And an end is matched against the entry the
// peer holds: one it has since given to another server is not the
// connection that ended, and stays.
func TestSyncEndOfRemoved(t *testing.T) {
	for _, whole := range []bool{false, true} {
		t.Run(map[bool]string{false: "server", true: "service"}[whole], func(t *testing.T) {
			cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)), svc(config.TCP, 443, "rr", rsAt(3, 1)))
			a, b := newForwarder(t, cfg, Options{}), newForwarder(t, cfg, Options{})
			a.EnableSync(64)
			c := client(0, 40000)
			addr := to(cfg, send(t, a, cfg, syn(c), t0))
			send(t, a, cfg, ack(c), t0+second)
			relay(t, a, b, t0+second)
			without := cfgOf(svc(config.TCP, 443, "rr", rsAt(3, 1)))
			if !whole {
				var keep []config.RealServer
				for _, r := range cfg.Services[0].RealServers {
					if r.Address != addr {
						keep = append(keep, r)
					}
				}
				without = cfgOf(svc(config.TCP, 80, "rr", keep...), svc(config.TCP, 443, "rr", rsAt(3, 1)))
			}
			applyNow(t, a, without, t0+2*second)
			applyNow(t, b, without, t0+2*second)
			// A bulk copy meanwhile (a peer starting) leaves the removed
			// server's connection out: a peer that has the server no
			// more would count and log it as a mismatch.
			a.RangeSync(0, 1<<20, t0+2*second, func(ev *SyncEvent) {
				t.Errorf("a bulk copy sends %+v, of a server removed", *ev)
			})
			if res := a.Process(ack(c), &Meta{Time: t0 + 3*second}); res.Reason != ReasonServerGone {
				t.Fatalf("the master: %v/%v, want server-gone", res.Verdict, res.Reason)
			}
			evs := take(a)
			if len(evs) != 1 || evs[0].Op != connsync.OpEnd {
				t.Fatalf("the master's events: %+v, want one end", evs)
			}
			e := toEntry(&evs[0])
			if r := b.ApplySync(&e, t0+3*second); r != SyncEnded {
				t.Fatalf("the end at the backup: %v, want ended (no mismatch)", SyncResultNames[r])
			}
			if n := b.TableLen(); n != 0 {
				t.Fatalf("the backup holds %d entries after the end, want 0", n)
			}
			checkCounts(t, b)
		})
	}
	t.Run("elsewhere", func(t *testing.T) {
		a, b, c := syncedConnection(t, t0, func(*config.Config) {})
		var e connsync.Entry
		a.RangeSync(0, 1<<20, t0, func(ev *SyncEvent) {
			if ev.Key.Kind == conntable.KindConn {
				e = toEntry(ev)
			}
		})
		// The backup gives the key to another server meanwhile (a newer
		// connection on the same ports, sent by a peer that took over).
		moved := e
		if moved.Real = netip.MustParseAddr("198.18.0.11"); e.Real == moved.Real {
			moved.Real = netip.MustParseAddr("198.18.0.12")
		}
		if r := b.ApplySync(&moved, t0+second); r != SyncApplied {
			t.Fatal(SyncResultNames[r])
		}
		e.Op = connsync.OpEnd
		if r := b.ApplySync(&e, t0+2*second); r != SyncEnded {
			t.Fatalf("an end for the old server: %v, want ended", SyncResultNames[r])
		}
		if n := b.TableLen(); n != 1 {
			t.Fatalf("the backup holds %d entries after an end for the server it no longer names, want 1", n)
		}
		b.RangeConnEntries(t0+2*second, func(ce ConnEntry) bool {
			if ce.Client == c && ce.Real != moved.Real {
				t.Errorf("the backup's entry is on %v, want %v", ce.Real, moved.Real)
			}
			return true
		})
		checkCounts(t, b)
	})
}

// TestSyncFloodNotSent: under table pressure a SYN that makes a SYN_RECV
// entry (a stateful SYN, a persistent service's with its template, or a
// handshake's ACK adopted after a stateless SYN) sends no record, nor
// does its retransmission: each spoofed SYN of a flood was sent to every
// peer, as much again as the flood itself (IPVS syncs no SYN_RECV
// connection either). The handshake's completing ACK sends the
// connection, ESTABLISHED, and its template with it.
func TestSyncFloodNotSent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		persist bool
		adopted bool // the SYN stateless, the entry made by its ACK
	}{{"stateful", false, false}, {"persistent", true, false}, {"adopted", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig("rr", 3)
			cfg.MaxConns = 100
			if tc.persist {
				cfg.Services[0].Persistence = 300 * time.Second
			}
			f := newForwarder(t, cfg, Options{})
			f.statefulSYN = !tc.adopted
			f.EnableSync(256)
			for i := 0; !f.Overload().Pressure; i++ {
				process(t, f, syn(client(i, 1000)), t0)
			}
			take(f)
			c := client(60, 1000)
			process(t, f, syn(c), t0+second)
			if evs := take(f); len(evs) != 0 {
				t.Fatalf("a SYN under pressure sent %+v", evs)
			}
			if tc.adopted {
				res, _ := process(t, f, ack(c), t0+second)
				expect(t, res, Forward, ReasonPressureAdopted)
			} else {
				process(t, f, syn(c), t0+2*second) // retransmitted
			}
			if evs := take(f); len(evs) != 0 {
				t.Fatalf("a SYN_RECV entry under pressure sent %+v", evs)
			}
			res, _ := process(t, f, ack(c), t0+2*second)
			expect(t, res, Forward, ReasonExisting)
			evs := take(f)
			want := 1
			if tc.persist {
				want = 2
			}
			if len(evs) != want || evs[0].Op != connsync.OpUpsert || evs[0].State != stateEstablished ||
				tc.persist && (evs[1].Key.Kind != conntable.KindTemplate || evs[1].State != stateTemplate) {
				t.Fatalf("the completing ACK sent %+v, want the connection ESTABLISHED (and its template)", evs)
			}
			// The peer learns the connection from those alone.
			g := newForwarder(t, cfg, Options{})
			for i := range evs {
				if e := toEntry(&evs[i]); g.ApplySync(&e, t0+2*second) != SyncApplied {
					t.Fatalf("apply %+v", evs[i])
				}
			}
			if res, _ := process(t, g, ack(c), t0+3*second); res.Reason != ReasonExisting {
				t.Fatalf("the peer: %v/%v", res.Verdict, res.Reason)
			}
		})
	}
}

// TestSyncFloodDueTemplateSent: a live template due for a resend (here
// by its idle time: its stamp wrapped) that a SYN under pressure finds is
// withheld with the SYN, and sent with the completing ACK, as without
// pressure the SYN sends it. pick renewed its timeout, after which it no
// longer read as due, and it was never sent: the peer's copy ran out
// ~1000 s before the master's.
func TestSyncFloodDueTemplateSent(t *testing.T) {
	for _, pressure := range []bool{false, true} {
		t.Run(map[bool]string{false: "no-pressure", true: "pressure"}[pressure], func(t *testing.T) {
			cfg := testConfig("rr", 3)
			cfg.MaxConns = 100
			cfg.Services[0].Persistence = 3600 * time.Second
			f := newForwarder(t, cfg, Options{})
			f.statefulSYN = true
			f.EnableSync(256)
			c := client(200, 1000)
			process(t, f, syn(c), t0)
			process(t, f, ack(c), t0)
			take(f)
			tA := t0 + 2100*second // 131 units: the stamp wrapped; idle 2100 s
			if pressure {
				for i := 0; !f.Overload().Pressure; i++ {
					process(t, f, syn(client(i, 1000)), tA)
				}
			}
			take(f)
			c2 := client(200, 2000)
			res, _ := process(t, f, syn(c2), tA)
			expect(t, res, Forward, ReasonPersistent)
			evs := take(f)
			res, _ = process(t, f, ack(c2), tA+second)
			expect(t, res, Forward, ReasonExisting)
			evs = append(evs, take(f)...)
			tmpl := 0
			for _, ev := range evs {
				if ev.Key.Kind == conntable.KindTemplate {
					tmpl++
				}
			}
			if tmpl != 1 {
				t.Fatalf("template records sent for the new connection: %d (events %+v), want 1", tmpl, evs)
			}
		})
	}
}

// TestSyncBulkUnderPressure: a bulk copy for a peer that starts during a
// SYN flood leaves out the SYN_RECV entries (most of them the flood's),
// as the events do, and keeps the established ones.
func TestSyncBulkUnderPressure(t *testing.T) {
	cfg := testConfig("rr", 3)
	cfg.MaxConns = 100
	f := newForwarder(t, cfg, Options{})
	f.statefulSYN = true
	f.EnableSync(256)
	c := client(200, 1000)
	process(t, f, syn(c), t0)
	process(t, f, ack(c), t0)
	bulk := func() (established, synRecv int) {
		f.RangeSync(0, f.TableSlots(), t0, func(ev *SyncEvent) {
			switch ev.State {
			case stateEstablished:
				established++
			case stateSynRecv:
				synRecv++
			}
		})
		return established, synRecv
	}
	process(t, f, syn(client(0, 1000)), t0)
	if est, sr := bulk(); est != 1 || sr != 1 {
		t.Fatalf("bulk copy without pressure: %d established, %d SYN_RECV; want 1 and 1", est, sr)
	}
	for i := 1; !f.Overload().Pressure; i++ {
		process(t, f, syn(client(i, 1000)), t0)
	}
	if est, sr := bulk(); est != 1 || sr != 0 {
		t.Fatalf("bulk copy under pressure: %d established, %d SYN_RECV; want 1 and 0", est, sr)
	}
}

package forwarder

import (
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/connsync"
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

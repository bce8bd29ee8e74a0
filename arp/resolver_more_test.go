package arp

import (
	"sync"
	"testing"
	"time"
)

// linuxUnicastNA is what a Linux real server sends back to a unicast
// solicitation (our refresh): solicited, override clear and no target
// link-layer option (ndisc_recv_ns passes inc_opt only for a multicast
// solicitation, and override only with it).
func linuxUnicastNA(t testing.TB, from MAC) []byte {
	return gpNDP(t, ndpSpec{dst: dirMAC, src: from, sip: rs1IP6, dip: dirIP6,
		typ: TypeNeighborAdvertisement, flags: FlagSolicited, target: rs1IP6})
}

// TestResolverRefreshAnsweredByLinux: the unicast refresh of an IPv6 real
// server is answered the way Linux answers it, and that answer confirms
// the entry (RFC 4861 7.2.5), so it neither goes stale nor needs the
// multicast solicitations a stale entry sends.
func TestResolverRefreshAnsweredByLinux(t *testing.T) {
	f := newFixture(t, nil)
	f.resolve(rs1IP6, rs1MAC, t0)
	refresh := t0.Add(40 * time.Second)
	fr := f.tick(refresh)
	if len(fr) != 1 || MAC(fr[0][0:6]) != rs1MAC {
		t.Fatalf("want one unicast refresh, got %d frames", len(fr))
	}
	if !f.r.HandleAt(linuxUnicastNA(t, rs1MAC), refresh) {
		t.Fatal("Linux's answer to the unicast refresh refused")
	}
	f.wantEvents()
	f.wantLookup(rs1IP6, rs1MAC, true)
	if fr := f.tick(refresh.Add(40*time.Second - 1)); len(fr) != 0 {
		t.Fatalf("the answer did not restart the lifetime: %d more requests", len(fr))
	}
	if s := f.state(rs1IP6); s != StateReachable {
		t.Fatalf("state %v after an answered refresh", s)
	}
	// Such an answer only confirms: from another MAC it is nothing.
	f.tick(refresh.Add(40 * time.Second))
	if f.r.HandleAt(linuxUnicastNA(t, evilMAC), refresh.Add(40*time.Second)) {
		t.Fatal("an advertisement without target option from another MAC confirmed the entry")
	}
	f.wantLookup(rs1IP6, rs1MAC, true)
}

// TestResolverFailedClaimAsks: a real server marked failed that comes back
// and announces itself (gratuitous ARP at boot) is asked at once, as any
// claim makes the Resolver ask, not only at the next FailedRetry.
func TestResolverFailedClaimAsks(t *testing.T) {
	f := newFixture(t, nil)
	f.r.Want(rs1IP)
	f.drive(t0, t0.Add(3*time.Second))
	f.wantEvents(Event{Kind: EventFailed, Addr: rs1IP})
	back := t0.Add(5 * time.Second)
	garp := gpARP(t, nil, broadcast, OpRequest, rs1MAC, rs1IP, MAC{}, rs1IP)
	if f.r.HandleAt(garp, back) {
		t.Fatal("gratuitous ARP accepted as an answer")
	}
	fr := f.tick(back)
	if len(fr) != 1 || MAC(fr[0][0:6]) != broadcast {
		t.Fatalf("%d requests after the failed server announced itself, want a broadcast one", len(fr))
	}
	if !f.r.HandleAt(arpAnswer(t, rs1MAC, rs1IP, dirIP, nil), back) {
		t.Fatal("answer refused")
	}
	f.wantEvents(Event{Kind: EventResolved, Addr: rs1IP, MAC: rs1MAC})
	// Claims for a failed entry are rate-limited like any other.
	f.r.Forget(rs1IP)
	f.r.Want(rs1IP)
	f.drive(back, back.Add(3*time.Second))
	f.takeEvents()
	at := back.Add(3*time.Second + 100*time.Millisecond)
	for range 10 {
		f.r.HandleAt(garp, at)
		if fr := f.tick(at); len(fr) > 1 {
			t.Fatalf("%d requests for one claim", len(fr))
		}
	}
	if st := f.r.Stats(); st.Requests > 3+1+3+1 {
		t.Fatalf("a flood of claims sent %d requests", st.Requests)
	}
}

// TestResolverEventsInOrder: events reach OnEvent in the order the entry
// went through them, even when an answer is taken on another goroutine
// (a worker) while Tick is between failing the entry and reporting it.
// Out of order, the director would apply "failed" last and leave a server
// that answers out of scheduling for good (a reachable entry raises no
// more events).
func TestResolverEventsInOrder(t *testing.T) {
	var (
		mu     sync.Mutex
		events []Event
		r      *Resolver
		late   []byte
		done   = make(chan struct{})
	)
	clk := newFakeClock()
	r, err := NewResolver(ResolverConfig{MAC: dirMAC, IPv4: dirIP, Sender: &recorder{}, Clock: clk,
		OnEvent: func(e Event) {
			if e.Kind == EventFailed {
				// A worker takes the late answer to the last request now.
				go func() { r.HandleAt(late, clk.Now()); close(done) }()
				select {
				case <-done:
				case <-time.After(200 * time.Millisecond):
				}
			}
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	late = arpAnswer(t, rs1MAC, rs1IP, dirIP, nil)
	r.Want(rs1IP)
	for i := range DefaultMaxProbes + 1 {
		at := t0.Add(time.Duration(i) * time.Second)
		clk.Set(at)
		r.Tick(at)
	}
	<-done
	if _, ok := r.Lookup(rs1IP); !ok {
		t.Fatal("the late answer was not taken")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0].Kind != EventFailed || events[1].Kind != EventResolved {
		t.Fatalf("events %+v: want failed, then resolved (the entry's last state)", events)
	}
}

// TestResolverClaimFloodWakesOnce: a flood of claims (spoofed gratuitous
// ARP) wakes Run once per check it schedules, not once per frame: each
// wake-up walks the whole table under the lock the workers' Handle takes.
func TestResolverClaimFloodWakesOnce(t *testing.T) {
	for _, state := range []State{StateReachable, StateFailed} {
		t.Run(state.String(), func(t *testing.T) {
			f := newFixture(t, nil)
			if state == StateReachable {
				f.resolve(rs1IP, rs1MAC, t0)
			} else {
				f.r.Want(rs1IP)
				f.drive(t0, t0.Add(3*time.Second))
			}
			at := t0.Add(5 * time.Second)
			claim := gpARP(t, nil, broadcast, OpRequest, evilMAC, rs1IP, MAC{}, rs1IP)
			<-f.r.wake // Want's
			wakes := 0
			for range 100 {
				f.r.HandleAt(claim, at)
				select {
				case <-f.r.wake:
					wakes++
				default:
				}
			}
			if wakes != 1 {
				t.Fatalf("%d wake-ups for 100 claims before the check went out, want 1", wakes)
			}
		})
	}
}

// TestResolverClockSetBack: the wall clock steps back an hour (NTP at
// boot) after an entry was confirmed. The entry is refreshed at once and,
// with its server gone, fails within a Lifetime of the step, not an hour
// later when the clock caught up with the times HandleAt stamped.
func TestResolverClockSetBack(t *testing.T) {
	f := newFixture(t, nil)
	f.resolve(rs1IP, rs1MAC, t0)
	back := t0.Add(-time.Hour)
	if fr := f.tick(back); len(fr) != 1 {
		t.Fatalf("after the clock stepped back an hour: %d requests, want the refresh at once", len(fr))
	}
	for at := back; at.Before(back.Add(DefaultLifetime + (DefaultMaxProbes+2)*DefaultRetryInterval)); at = at.Add(100 * time.Millisecond) {
		f.tick(at)
	}
	if s := f.state(rs1IP); s != StateFailed {
		t.Errorf("state %v a Lifetime after the step, with no answer: want failed", s)
	}
}

package forwarder

import (
	"testing"

	"github.com/drlb/drlb/conntable"
)

// TestSchedulersCountHandshakesActive: Linux since 2016 ("ipvs: count
// pre-established TCP states as active", tcp_state_active) counts a
// connection in SYN_RECV as active, so the load-based schedulers see a
// handshake under way. Counted inactive, sed and nq ignored it (and lc/wlc
// weighed it 1/256): every SYN of a burst that arrives within one
// round-trip went to the same server, where IPVS spreads it.
func TestSchedulersCountHandshakesActive(t *testing.T) {
	for _, tc := range []struct {
		sched string
		want  []int // servers of SYNs from clients 0, 1, 2, ... (no ACK yet)
	}{
		{"nq", []int{0, 1, 2, 0, 1, 2}},
		{"sed", []int{0, 1, 2, 0, 1, 2}},
		{"lc", []int{0, 1, 2, 0, 1, 2}},
		{"wlc", []int{0, 1, 2, 0, 1, 2}},
	} {
		t.Run(tc.sched, func(t *testing.T) {
			f := newForwarder(t, testConfig(tc.sched, 3), Options{})
			for i, want := range tc.want {
				res, _ := process(t, f, syn(client(i, 40000)), t0)
				expect(t, res, Forward, ReasonNew)
				if res.Real != want {
					t.Fatalf("SYN %d went to %d, want %d", i, res.Real, want)
				}
			}
			for i, r := range f.Stats()[0].RealServers {
				if r.Active != 2 || r.Inactive != 0 {
					t.Errorf("server %d: %d active %d inactive, want 2/0 (SYN_RECV is active)", i, r.Active, r.Inactive)
				}
			}
		})
	}
}

// TestSchedulersWeighHandshakes: with one ESTABLISHED connection on server
// 0 and a handshake (SYN_RECV) on server 1, lc and wlc see overhead 256 on
// each (IPVS: activeconns*256 + inactconns, SYN_RECV active) and the tie
// goes to the first; with the handshake inactive (overhead 1) server 1 got
// it.
func TestSchedulersWeighHandshakes(t *testing.T) {
	for _, sched := range []string{"lc", "wlc"} {
		t.Run(sched, func(t *testing.T) {
			f := newForwarder(t, testConfig(sched, 2), Options{})
			for _, step := range []struct {
				frame []byte
				want  int
			}{
				{syn(client(0, 40000)), 0},
				{ack(client(0, 40000)), 0}, // server 0: ESTABLISHED
				{syn(client(1, 40000)), 1}, // server 1: SYN_RECV
				{syn(client(2, 40000)), 0}, // 256 each: the first
			} {
				res, _ := process(t, f, step.frame, t0)
				if res.Verdict != Forward || res.Real != step.want {
					t.Fatalf("%v/%v to %d, want forward to %d", res.Verdict, res.Reason, res.Real, step.want)
				}
			}
		})
	}
}

// countEstablished counts the ESTABLISHED connection entries in f's tables:
// the real servers' Active counts SYN_RECV too.
func countEstablished(f *Forwarder) int {
	n := 0
	for _, w := range f.Workers() {
		w.table.Range(func(e *conntable.Entry) bool {
			if e.State == stateEstablished {
				n++
			}
			return true
		})
	}
	return n
}

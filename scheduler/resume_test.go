package scheduler

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// named parses a snapshot written as letters: "A B:2 C-" is servers A
// (198.18.0.11) weight 1, B (.12) weight 2, C (.13) weight 1 unavailable.
func named(t testing.TB, spec string) []Server {
	t.Helper()
	var snap []Server
	for _, f := range strings.Fields(spec) {
		s := Server{Addr: netip.AddrFrom4([4]byte{198, 18, 0, 11 + f[0] - 'A'}), Weight: 1, Available: true}
		if strings.HasSuffix(f, "-") {
			s.Available, f = false, f[:len(f)-1]
		}
		if _, w, ok := strings.Cut(f, ":"); ok {
			n, err := strconv.Atoi(w)
			if err != nil {
				t.Fatalf("snapshot %q: %v", spec, err)
			}
			s.Weight = n
		}
		snap = append(snap, s)
	}
	return snap
}

// pickNames picks n times and names the servers by address (A for
// 198.18.0.11), "-" for ErrNoServer.
func pickNames(t *testing.T, s Scheduler, snap []Server, n int) string {
	t.Helper()
	var b strings.Builder
	for k := range n {
		i, err := s.Pick(nil, nil)
		switch {
		case errors.Is(err, ErrNoServer):
			b.WriteByte('-')
		case err != nil:
			t.Fatalf("pick %d: %v", k, err)
		default:
			b.WriteByte('A' + snap[i].Addr.As4()[3] - 11)
		}
	}
	return b.String()
}

type resumeStep struct {
	snap string // the snapshot this scheduler is built from
	want string // its picks before the next rebuild
}

// runResume builds name over each step's snapshot in turn, each build
// continuing from the one before (NewAfter), and checks the picks.
func runResume(t *testing.T, name string, steps []resumeStep) {
	t.Helper()
	var s Scheduler
	var trail strings.Builder
	for k, st := range steps {
		snap := named(t, st.snap)
		var err error
		if s, err = NewAfter(name, snap, Options{}, s); err != nil {
			t.Fatal(err)
		}
		got := pickNames(t, s, snap, len(st.want))
		if got != st.want {
			t.Errorf("step %d [%s] after %s: picks %s, want %s", k, st.snap, trail.String(), got, st.want)
			return
		}
		trail.WriteString("[" + st.snap + "] " + got + " ")
	}
}

// TestRRResume: IPVS rr keeps its place across edits (svc->sched_data
// points at the last picked destination): the next pick is the usable
// server after the last one picked, in snapshot order; if that one is
// gone, the scan goes on after the server before it (ip_vs_rr_del_dest),
// from the head when none before it stays.
func TestRRResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []resumeStep
	}{
		{"continue after the last pick", []resumeStep{{"A B C", "A"}, {"A B C:2", "BCAB"}}},
		{"a server fails and comes back", []resumeStep{{"A B C", "A"}, {"A B C-", "B"}, {"A B C", "CAB"}}},
		{"last pick removed", []resumeStep{{"A B C", "AB"}, {"A C", "CA"}}},
		{"last pick down", []resumeStep{{"A B C", "AB"}, {"A B- C", "CA"}}},
		{"last pick and the one before removed", []resumeStep{{"A B C D", "ABC"}, {"A D", "DA"}}},
		{"first removed after its pick: from the head", []resumeStep{{"A B C", "A"}, {"B C", "BC"}}},
		{"added after the last pick", []resumeStep{{"A B C", "AB"}, {"A B D C", "DCAB"}}},
		{"added after the last server", []resumeStep{{"A B C", "ABC"}, {"A B C D", "DABC"}}},
		{"last pick down and back before another pick", []resumeStep{{"A B C", "ABC"}, {"A B C-", ""}, {"A B C", "ABC"}}},
		{"all down, then back", []resumeStep{{"A B C", "A"}, {"A- B- C-", "--"}, {"A B C", "BCA"}}},
		{"all removed, then back: from the head", []resumeStep{{"A B C", "A"}, {"", "-"}, {"A B C", "ABC"}}},
		{"reordered", []resumeStep{{"A B C", "A"}, {"C A B", "BCA"}}},
		// Two servers with one address: no identity, matched by position
		// since the snapshot's length is unchanged.
		{"duplicate addresses, same length", []resumeStep{{"A B A", "AB"}, {"A B:2 A", "AAB"}}},
		{"duplicate addresses, new length: afresh", []resumeStep{{"A B A", "AB"}, {"A B A C", "ABAC"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runResume(t, "rr", tc.steps) })
	}
}

// TestWRRResume: on any destination change IPVS wrr
// (ip_vs_wrr_dest_changed) starts the scan at the head of the list again
// but keeps its current weight cw, moved into the new weights: cw = mw
// (the new maximum less gcd-1) if cw is above it or 0, else rounded to the
// new gcd (cw/gcd*gcd + 1) when the gcd is above 1.
func TestWRRResume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []resumeStep
	}{
		// AABA: the last A at cw 2; cw stays 2 (gcd 1), from the head.
		{"cw kept, scan from the head", []resumeStep{{"A:4 B:3 C:2", "AABA"}, {"A:4 B:3 C:1", "ABABCAABABABC"}}},
		// AABABCA: the last A at cw 1; gcd 2: 1/2*2+1 = 1, the last level.
		{"cw rounded to the new gcd", []resumeStep{{"A:4 B:3 C:2", "AABABCA"}, {"A:4 B:2 C:2", "ABCAABC"}}},
		// A at cw 4, above the new mw 3: cw = 3.
		{"cw above the new maximum", []resumeStep{{"A:4 B:3 C:2", "A"}, {"A:2 B:3 C:2", "BABCABC"}}},
		// AA: the last A at cw 3, after it B would come; the scan starts
		// again from the head, as the kernel's does.
		{"weights unchanged: scan from the head", []resumeStep{{"A:4 B:3 C:2", "AA"}, {"A:4 B:3 C:2 D-", "ABABCABC"}}},
		{"no pick between two changes", []resumeStep{{"A:4 B:3 C:2", "AABA"}, {"A:4 B:3 C:1", ""}, {"A:4 B:3 C:2", "ABCABCA"}}},
		// All weights 0: cw = mw = 0; back, cw 0 gives mw again.
		{"all down, then back", []resumeStep{{"A:4 B:3 C:2", "AABA"}, {"A:4- B:3- C:2-", "-"}, {"A:4 B:3 C:2", "AABABCABC"}}},
		{"a server removed", []resumeStep{{"A:4 B:3 C:2", "AABABCA"}, {"A:4 C:2", "ACAAC"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { runResume(t, "wrr", tc.steps) })
	}
}

// ipvsWRRState is ip_vs_wrr.c's mark over a list of weights (0 for a
// destination that is down): init_svc, dest_changed and schedule
// transcribed.
type ipvsWRRState struct {
	w                 []int
	cl, cw, mw, di    int // cl: list position, -1 the head
	gcdOf, maxOf, err int
}

func (m *ipvsWRRState) set(w []int) {
	m.w, m.cl = w, -1
	g, mx := 0, 0
	for _, x := range w {
		if x > 0 {
			g = int(gcd(int64(g), int64(x)))
		}
		mx = max(mx, x)
	}
	if g == 0 {
		g = 1
	}
	m.di, m.mw = g, mx-(g-1)
}

func newIPVSWRR(w []int) *ipvsWRRState {
	m := &ipvsWRRState{}
	m.set(w)
	m.cw = m.mw
	return m
}

func (m *ipvsWRRState) changed(w []int) {
	m.set(w)
	if m.cw > m.mw || m.cw == 0 {
		m.cw = m.mw
	} else if m.di > 1 {
		m.cw = (m.cw/m.di)*m.di + 1
	}
}

func (m *ipvsWRRState) schedule() int {
	if m.mw == 0 {
		return -1
	}
	for {
		m.cl++
		if m.cl == len(m.w) {
			m.cl = -1
			if m.cw -= m.di; m.cw <= 0 {
				m.cw = m.mw
			}
			continue
		}
		if m.w[m.cl] >= m.cw {
			return m.cl
		}
	}
}

// TestWRRResumeMatchesIPVS: chains of random changes (weights, servers
// down, table and walk) pick what the kernel's wrr picks.
func TestWRRResumeMatchesIPVS(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tables, walks int
	for run := range 200 {
		n := 1 + rng.IntN(6)
		weights := func() []int {
			w := make([]int, n)
			for i := range w {
				switch r := rng.IntN(10); {
				case r == 0:
					w[i] = 0
				case run%10 == 0 && r < 4:
					w[i] = 20000 + rng.IntN(30) // a long period: the walk
				default:
					w[i] = (1 + rng.IntN(6)) * []int{1, 2, 3}[rng.IntN(3)]
				}
			}
			return w
		}
		w := weights()
		model := newIPVSWRR(w)
		var s Scheduler
		for change := range 6 {
			snap := lab(w...)
			for i := range snap {
				if w[i] == 0 {
					snap[i].Weight, snap[i].Available = 1, false
				}
			}
			var err error
			if s, err = NewAfter("wrr", snap, Options{}, s); err != nil {
				t.Fatal(err)
			}
			if s.(*wrr).seq != nil {
				tables++
			} else if len(s.(*wrr).idx) > 0 {
				walks++
			}
			for k := range rng.IntN(40) {
				want := model.schedule()
				got, err := s.Pick(nil, nil)
				if want < 0 && errors.Is(err, ErrNoServer) {
					continue
				}
				if got != want {
					t.Fatalf("run %d change %d weights %v pick %d: %d (%v), want %d", run, change, w, k, got, err, want)
				}
			}
			w = weights()
			model.changed(w)
		}
	}
	if tables < 100 || walks < 10 {
		t.Fatalf("%d tables, %d walks: both paths want testing", tables, walks)
	}
}

// TestResumeOtherSchedulers: a different algorithm before, or none,
// starts afresh; the others ignore prev.
func TestResumeOtherSchedulers(t *testing.T) {
	snap := lab(4, 3, 2)
	w := mustNew(t, "wrr", snap, Options{})
	picks(t, w, 2)
	s, err := NewAfter("rr", snap, Options{}, w)
	if err != nil {
		t.Fatal(err)
	}
	if got := sequence(t, s, 3, nil); got != "ABC" {
		t.Errorf("rr after wrr: %s, want ABC", got)
	}
	for _, name := range Names() {
		if _, err := NewAfter(name, snap, Options{}, s); err != nil {
			t.Errorf("%s after rr: %v", name, err)
		}
	}
	if _, err := NewAfter("nope", snap, Options{}, s); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown name: %v", err)
	}
}

// TestResumedPick: a scheduler built after another picks without
// allocating, and pickers of the old one may run while it is built.
func TestResumedPick(t *testing.T) {
	for _, name := range []string{"rr", "wrr"} {
		for _, weights := range [][]int{{4, 3, 2}, {20011, 20021, 1}} {
			var h Handle
			h.Store(mustNew(t, name, lab(weights...), Options{}))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := h.Load().Pick(nil, nil); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			for k := range 200 {
				snap := lab(weights...)
				snap[k%len(snap)].Weight += k % 3
				s, err := NewAfter(name, snap, Options{}, h.Load())
				if err != nil {
					t.Fatal(err)
				}
				h.Store(s)
			}
			close(stop)
			wg.Wait()
			s := h.Load()
			if a := testing.AllocsPerRun(100, func() { s.Pick(nil, nil) }); a != 0 {
				t.Errorf("%s %v: resumed Pick allocates %.1f times", name, weights, a)
			}
		}
	}
}

// TestWRRResumeAfterFullWalkPeriod: a resumed wrr on the walk path (no
// table) whose picks come back round to the position it resumed at must
// still know that it picked. Its position was kept modulo the period, so
// after exactly one period of picks it equalled start again and cw()
// reported the resumed level, one above the level of the last pick: the
// next rebuild continued one level off IPVS's.
func TestWRRResumeAfterFullWalkPeriod(t *testing.T) {
	w := []int{1, 65535} // period 65536: the walk
	model := newIPVSWRR(w)
	s := mustNew(t, "wrr", lab(w...), Options{})
	step := func(name string, k int) {
		for n := range k {
			got, err := s.Pick(nil, nil)
			if want := model.schedule(); err != nil || got != want {
				t.Fatalf("%s, pick %d: %d (%v), want %d", name, n, got, err, want)
			}
		}
	}
	step("first", 3) // cw 65533: level 2
	var err error
	if s, err = NewAfter("wrr", lab(w...), Options{}, s); err != nil {
		t.Fatal(err)
	}
	model.changed(w)
	if s.(*wrr).seq != nil {
		t.Fatal("want the walk path")
	}
	step("resumed", 1+65535) // one whole period: back at the position it resumed at
	w = []int{65533, 65535}
	if s, err = NewAfter("wrr", lab(w...), Options{}, s); err != nil {
		t.Fatal(err)
	}
	model.changed(w)
	step("after the period", 10)
}

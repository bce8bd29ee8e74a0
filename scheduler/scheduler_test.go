package scheduler

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNames(t *testing.T) {
	want := []string{"lc", "mh", "nq", "rr", "sed", "sh", "wlc", "wrr"}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		s := mustNew(t, n, lab(1), Options{})
		if s.Name() != n {
			t.Errorf("New(%q).Name() = %q", n, s.Name())
		}
	}
}

func TestUnknown(t *testing.T) {
	_, err := New("fifo", lab(1), Options{})
	if !errors.Is(err, ErrUnknown) {
		t.Fatalf("New(fifo) error = %v, want ErrUnknown", err)
	}
	for _, want := range append(Names(), `"fifo"`) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestNoServer(t *testing.T) {
	down := lab(1, 2, 3)
	for i := range down {
		down[i].Available = false
	}
	mixed := lab(0, 5, 0)
	mixed[1].Available = false
	snapshots := map[string][]Server{
		"nil":         nil,
		"empty":       {},
		"weight 0":    lab(0, 0, 0),
		"negative":    lab(-1, -5),
		"unavailable": down,
		"mixed":       mixed,
	}
	for _, name := range Names() {
		for sname, snap := range snapshots {
			for _, opts := range []Options{{}, {Fallback: true, HashPort: true}} {
				s := mustNew(t, name, snap, opts)
				load := make(counts, len(snap))
				for k := range 10 {
					f := Flow{Src: client(k), SrcPort: uint16(k)}
					i, err := s.Pick(&f, &load)
					if !errors.Is(err, ErrNoServer) || i != -1 {
						t.Errorf("%s over %s %+v: Pick = %d, %v; want -1, ErrNoServer", name, sname, opts, i, err)
					}
				}
			}
		}
	}
}

// TestOnlyUsable checks on random snapshots that no algorithm ever hands a
// new connection to a quiesced or unavailable server, and that every one
// finds a server whenever one is usable (sh and mh with Fallback).
func TestOnlyUsable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		n := rng.IntN(12)
		snap := lab(make([]int, n)...)
		anyUsable := false
		for i := range snap {
			snap[i].Weight = rng.IntN(4) // 0 a quarter of the time
			snap[i].Available = rng.IntN(4) != 0
			anyUsable = anyUsable || snap[i].usable()
		}
		load := make(counts, n)
		for i := range load {
			load[i] = [2]uint32{rng.Uint32N(5), rng.Uint32N(500)}
		}
		for _, name := range Names() {
			s := mustNew(t, name, snap, Options{Fallback: true, TableSize: 13})
			for k := range 50 {
				f := Flow{Src: client(rng.IntN(1 << 17)), SrcPort: uint16(k)}
				i, err := s.Pick(&f, &load)
				switch {
				case err == nil && !snap[i].usable():
					t.Fatalf("round %d %s: picked unusable server %d of %+v", round, name, i, snap)
				case err != nil && anyUsable:
					t.Fatalf("round %d %s: %v although %+v has a usable server", round, name, err, snap)
				case err != nil && !errors.Is(err, ErrNoServer):
					t.Fatalf("round %d %s: error %v is not ErrNoServer", round, name, err)
				}
			}
		}
	}
}

func TestNilLoadAndFlow(t *testing.T) {
	for _, name := range Names() {
		s := mustNew(t, name, lab(1, 2), Options{})
		if i, err := s.Pick(nil, nil); err != nil || i < 0 || i > 1 {
			t.Errorf("%s: Pick(nil, nil) = %d, %v", name, i, err)
		}
	}
}

func TestNewCopiesSnapshot(t *testing.T) {
	snap := lab(1, 1)
	s := mustNew(t, "rr", snap, Options{})
	snap[0].Weight, snap[1].Weight = 0, 0
	if _, err := s.Pick(nil, nil); err != nil {
		t.Fatalf("changing the caller's slice changed the scheduler: %v", err)
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	snap := lab(4, 3, 2, 0, 1)
	snap[4].Available = false
	load := counts{{3, 10}, {1, 0}, {0, 7}, {0, 0}, {0, 0}}
	var l Load = &load
	for _, name := range Names() {
		for _, opts := range []Options{{}, {HashPort: true, Fallback: true}} {
			s := mustNew(t, name, snap, opts)
			// The caller owns the Flow (in the forwarder, part of its
			// per-packet state); Pick must not make it escape further.
			var f Flow
			k := 0
			allocs := testing.AllocsPerRun(1000, func() {
				k++
				f.Src, f.SrcPort = client(k), uint16(k)
				s.Pick(&f, l)
			})
			if allocs != 0 {
				t.Errorf("%s %+v: Pick allocates %.1f times", name, opts, allocs)
			}
		}
	}
	// The error path too.
	s := mustNew(t, "rr", nil, Options{})
	if a := testing.AllocsPerRun(100, func() { s.Pick(nil, nil) }); a != 0 {
		t.Errorf("rr ErrNoServer path allocates %.1f times", a)
	}
}

// TestConcurrentPick runs pickers in parallel (run with -race): every
// position of the rr and wrr cycles is handed out exactly once, so the
// totals are exact.
func TestConcurrentPick(t *testing.T) {
	const workers, each = 4, 900
	for _, tc := range []struct {
		name    string
		weights []int
		want    []int
	}{
		{"rr", []int{1, 1, 1}, []int{1200, 1200, 1200}},
		{"wrr", []int{4, 3, 2}, []int{1600, 1200, 800}},
		// Coprime weights too large for the table: the CAS walk.
		// The order is checked by TestWRRWalkMatchesIPVS; here only that
		// no pick is lost or doubled.
		{"wrr", []int{20011, 20021, 1}, nil},
	} {
		s := mustNew(t, tc.name, lab(tc.weights...), Options{})
		got := make([]int, len(tc.weights))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				local := make([]int, len(tc.weights))
				for range each {
					i, err := s.Pick(nil, nil)
					if err != nil {
						t.Error(err)
						return
					}
					local[i]++
				}
				mu.Lock()
				for i, c := range local {
					got[i] += c
				}
				mu.Unlock()
			})
		}
		wg.Wait()
		if tc.want == nil {
			if got[0]+got[1]+got[2] != workers*each {
				t.Errorf("%s %v: %v picks, want %d", tc.name, tc.weights, got, workers*each)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: counts %v, want %v", tc.name, tc.weights, got, tc.want)
		}
	}
}

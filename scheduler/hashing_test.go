package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// The properties sh and mh share: weight-proportional spread, the same
// answer for the same flow whatever the order of the servers, and fallback.

const distinctClients = 100000

func TestHashDistribution(t *testing.T) {
	for _, name := range []string{"sh", "mh"} {
		for _, tc := range []struct {
			weights []int
			port    bool
		}{
			{[]int{1, 1, 1, 1}, false},
			{[]int{1, 2, 3, 4}, false},
			{[]int{5, 1, 0, 3}, false},
			{[]int{1, 2, 3, 4}, true},
			{hundred(), false},
		} {
			label := fmt.Sprint(tc.weights)
			if len(tc.weights) > 10 {
				label = fmt.Sprintf("%d servers", len(tc.weights))
			}
			t.Run(fmt.Sprintf("%s/%s/port=%v", name, label, tc.port), func(t *testing.T) {
				s := mustNew(t, name, lab(tc.weights...), Options{HashPort: tc.port})
				got := make([]int, len(tc.weights))
				for k := range distinctClients {
					f := Flow{Src: client(k)}
					if tc.port {
						// One client, many ports: the port alone spreads.
						f = Flow{Src: client(7), SrcPort: uint16(k)}
					}
					i, err := s.Pick(&f, nil)
					if err != nil {
						t.Fatal(err)
					}
					got[i]++
				}
				total := 0
				for _, w := range tc.weights {
					total += w
				}
				worst := 0.0
				for i, w := range tc.weights {
					want := float64(w) / float64(total)
					share := float64(got[i]) / distinctClients
					worst = max(worst, abs(share-want))
					if abs(share-want) > 0.02 {
						t.Errorf("server %d weight %d: share %.4f, want %.4f +- 0.02", i, w, share, want)
					}
				}
				t.Logf("largest deviation from weight share: %.4f", worst)
			})
		}
	}
}

func hundred() []int {
	w := make([]int, 100)
	for i := range w {
		w[i] = 1 + i%10
	}
	return w
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestHashConsistency: the same flow gets the same server on every pick and
// from a scheduler rebuilt with the servers listed in another order, as a
// second director or a restarted one would build it.
func TestHashConsistency(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, name := range []string{"sh", "mh"} {
		for _, opts := range []Options{{}, {HashPort: true}, {Fallback: true}} {
			snap := lab(3, 1, 4, 1, 5, 9, 2, 6)
			snap[3].Available = false
			a := mustNew(t, name, snap, opts)
			shuffled := append([]Server(nil), snap...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			b := mustNew(t, name, shuffled, opts)
			for k := range 20000 {
				f := Flow{Src: client(k), SrcPort: uint16(rng.Uint32())}
				ia, erra := a.Pick(&f, nil)
				ia2, erra2 := a.Pick(&f, nil)
				ib, errb := b.Pick(&f, nil)
				if ia != ia2 || erra != erra2 {
					t.Fatalf("%s %+v: flow %v picked %d then %d", name, opts, f.Src, ia, ia2)
				}
				if (erra == nil) != (errb == nil) || (erra == nil && snap[ia].Addr != shuffled[ib].Addr) {
					t.Fatalf("%s %+v: flow %v: %d/%v in listed order, %d/%v shuffled", name, opts, f.Src, ia, erra, ib, errb)
				}
			}
		}
	}
}

// TestHashGolden pins a few picks. A change here moves live flows when
// directors of different versions run side by side: make it on purpose.
func TestHashGolden(t *testing.T) {
	snap := lab(1, 2, 3, 4, 5)
	flows := []Flow{
		{Src: netip.MustParseAddr("198.18.1.10"), SrcPort: 40000},
		{Src: netip.MustParseAddr("198.19.200.7"), SrcPort: 1234},
		{Src: netip.MustParseAddr("2001:db8::1"), SrcPort: 443},
	}
	for k := range 9 {
		flows = append(flows, Flow{Src: client(k * 7919), SrcPort: uint16(k * 1000)})
	}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"sh", Options{}, goldenPicks["sh"]},
		{"sh", Options{HashPort: true}, goldenPicks["sh-port"]},
		{"mh", Options{}, goldenPicks["mh"]},
		{"mh", Options{HashPort: true}, goldenPicks["mh-port"]},
	} {
		s := mustNew(t, tc.name, snap, tc.opts)
		picks := make([]int, len(flows))
		for k := range flows {
			picks[k], _ = s.Pick(&flows[k], nil)
		}
		if got := letters(picks); got != tc.want {
			t.Errorf("%s %+v: picks %s, want %s", tc.name, tc.opts, got, tc.want)
		}
	}
}

var goldenPicks = map[string]string{
	"sh":      "CECDCBEEDDDE",
	"sh-port": "AEEDCCCEECDC",
	"mh":      "BDEDAEBECCEC",
	"mh-port": "BACCDADDEEAC",
}

// TestHashFallback marks one server down: without Fallback its flows get
// ErrNoServer, with it they go elsewhere; every other flow stays put.
func TestHashFallback(t *testing.T) {
	for _, name := range []string{"sh", "mh"} {
		up := lab(1, 1, 1, 1, 1)
		down := lab(1, 1, 1, 1, 1)
		down[2].Available = false
		ref := mustNew(t, name, up, Options{})
		strict := mustNew(t, name, down, Options{})
		fb := mustNew(t, name, down, Options{Fallback: true})
		spread := map[int]int{}
		for k := range 20000 {
			f := Flow{Src: client(k)}
			want, _ := ref.Pick(&f, nil)
			gotStrict, errStrict := strict.Pick(&f, nil)
			gotFB, errFB := fb.Pick(&f, nil)
			if errFB != nil || gotFB == 2 {
				t.Fatalf("%s fallback: flow %v got %d, %v", name, f.Src, gotFB, errFB)
			}
			if want != 2 {
				if gotStrict != want || gotFB != want {
					t.Fatalf("%s: flow %v of a healthy server moved: %d -> %d / %d", name, f.Src, want, gotStrict, gotFB)
				}
				continue
			}
			if !errors.Is(errStrict, ErrNoServer) {
				t.Fatalf("%s without fallback: flow of the down server got %d, %v", name, gotStrict, errStrict)
			}
			spread[gotFB]++
		}
		t.Logf("%s: the down server's flows went to %v", name, spread)
		if len(spread) < 2 {
			t.Errorf("%s: the down server's flows all went to one server: %v", name, spread)
		}
	}
}

// TestMHDisruption removes one of 10 servers: its flows must all move, and
// few of the survivors' flows may (Maglev's minimal disruption).
func TestMHDisruption(t *testing.T) {
	all := lab(1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
	const removed = 4
	rest := append(append([]Server(nil), all[:removed]...), all[removed+1:]...)
	before := mustNew(t, "mh", all, Options{})
	after := mustNew(t, "mh", rest, Options{})
	var survivors, moved int
	for k := range distinctClients {
		f := Flow{Src: client(k)}
		i, err := before.Pick(&f, nil)
		j, err2 := after.Pick(&f, nil)
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		if i == removed {
			if rest[j].Addr == all[removed].Addr {
				t.Fatalf("flow %v stayed on the removed server", f.Src)
			}
			continue
		}
		survivors++
		if all[i].Addr != rest[j].Addr {
			moved++
		}
	}
	share := float64(moved) / float64(survivors)
	t.Logf("mh 10 -> 9 servers: %d of %d survivors' flows moved (%.2f%%, target <= 5%%)", moved, survivors, 100*share)
	if share > 0.10 {
		t.Errorf("%.2f%% of the surviving servers' flows moved, want <= 10%%", 100*share)
	}
}

func TestMHOptions(t *testing.T) {
	for _, tc := range []struct {
		size int
		n    int
		ok   bool
	}{
		{0, 3, true},
		{DefaultTableSize, 3, true},
		{13, 3, true},
		{2, 2, true},
		{4, 1, false},
		{65536, 1, false},
		{1, 1, false},
		{-7, 1, false},
		{3, 5, false}, // fewer slots than servers
		{1<<20 + 7, 1, false},
	} {
		// Weight 0 needs no slot: give every server weight 1.
		snap := lab(make([]int, tc.n)...)
		for i := range snap {
			snap[i].Weight = 1
		}
		_, err := New("mh", snap, Options{TableSize: tc.size})
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrBadOption)) {
			t.Errorf("TableSize %d with %d servers: error %v, want ok=%v or ErrBadOption", tc.size, tc.n, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprint(tc.size)) {
			t.Errorf("error %q does not name the size %d", err, tc.size)
		}
	}
}

// TestMHSmallTable checks that a small prime table is fully populated in
// proportion to weight.
func TestMHSmallTable(t *testing.T) {
	s := mustNew(t, "mh", lab(1, 2, 3, 0), Options{TableSize: 61})
	got := make([]int, 4)
	for _, i := range s.(*mh).table {
		if i < 0 {
			t.Fatal("empty slot")
		}
		got[i]++
	}
	// 61 slots for weights 1:2:3 -> about 10, 20, 30 (and 0 for weight 0).
	for i, want := range []int{10, 20, 30, 0} {
		if d := got[i] - want; d < -2 || d > 2 {
			t.Errorf("server %d holds %d slots, want about %d", i, got[i], want)
		}
	}
}

// TestHashFallbackSlotless: a weight far below the others' rounds to no
// bucket (sh: 1 of 1001 in 256 buckets) or slot (mh: a small table). When
// every server holding one is down, Fallback must still find the usable
// server without one instead of refusing every new connection.
func TestHashFallbackSlotless(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"sh", Options{Fallback: true}},
		{"sh", Options{Fallback: true, HashPort: true}},
		{"mh", Options{Fallback: true, TableSize: 13}},
		{"mh", Options{Fallback: true, TableSize: 65521}},
	} {
		snap := lab(65535, 1, 65535)
		snap[0].Available, snap[2].Available = false, false
		s := mustNew(t, tc.name, snap, tc.opts)
		for k := range 100 {
			f := Flow{Proto: 6, Src: client(k), SrcPort: uint16(k)}
			if i, err := s.Pick(&f, nil); err != nil || i != 1 {
				t.Fatalf("%s %+v: Pick = %d, %v; want 1, the only usable server", tc.name, tc.opts, i, err)
			}
		}
		f := Flow{Src: client(3)}
		if a := testing.AllocsPerRun(100, func() { s.Pick(&f, nil) }); a != 0 {
			t.Errorf("%s %+v: the fallback allocates %.1f times", tc.name, tc.opts, a)
		}
		strict := mustNew(t, tc.name, snap, Options{TableSize: tc.opts.TableSize})
		if i, err := strict.Pick(&Flow{Src: client(1)}, nil); !errors.Is(err, ErrNoServer) {
			t.Errorf("%s without fallback: Pick = %d, %v; want ErrNoServer", tc.name, i, err)
		}
	}
}

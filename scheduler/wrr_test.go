package scheduler

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestWRR(t *testing.T) {
	down := lab(4, 3, 2)
	down[0].Available = false
	for _, tc := range []struct {
		name string
		snap []Server
		want string
	}{
		{"ipvs example", lab(4, 3, 2), strings.Repeat("AABABCABC", 3)},
		{"gcd", lab(4, 2), "AABAAB"},
		{"equal", lab(2, 2, 2), "ABCABC"},
		{"weight 0 skipped", lab(2, 0, 1), "AACAAC"},
		{"unavailable skipped", down, "BBCBCBBCBC"},
		{"light first", lab(1, 3), "BBABBBAB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, "wrr", tc.snap, Options{})
			if got := sequence(t, s, len(tc.want), nil); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// ipvsWRR is ip_vs_wrr_schedule transcribed: the reference both the
// precomputed table and the walk must match.
func ipvsWRR(weights []int, n int) []int {
	var g, maxW int
	for _, w := range weights {
		g, maxW = int(gcd(int64(g), int64(w))), max(maxW, w)
	}
	out := make([]int, 0, n)
	i, cw := -1, 0
	for len(out) < n {
		i = (i + 1) % len(weights)
		if i == 0 {
			cw -= g
			if cw <= 0 {
				cw = maxW
			}
		}
		if weights[i] >= cw {
			out = append(out, i)
		}
	}
	return out
}

func TestWRRMatchesIPVS(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		weights := make([]int, 1+rng.IntN(8))
		for i := range weights {
			weights[i] = 1 + rng.IntN(50)
		}
		want := ipvsWRR(weights, 3000)
		s := mustNew(t, "wrr", lab(weights...), Options{})
		if got := picks(t, s, len(want)); !slices.Equal(got, want) {
			t.Fatalf("weights %v: diverges from IPVS", weights)
		}
	}
}

func TestWRRWalkMatchesIPVS(t *testing.T) {
	// Coprime weights whose period exceeds wrrTableMax: Pick walks.
	weights := []int{20011, 7, 20021, 1, 3}
	s := mustNew(t, "wrr", lab(weights...), Options{})
	if s.(*wrr).seq != nil {
		t.Fatal("expected the walk, not a table")
	}
	want := ipvsWRR(weights, 100000)
	if got := picks(t, s, len(want)); !slices.Equal(got, want) {
		t.Fatal("walk diverges from IPVS")
	}
}

func TestWRRHugeWeights(t *testing.T) {
	s := mustNew(t, "wrr", lab(1<<40, 1), Options{}) // clamped to MaxInt32
	for range 1000 {
		if _, err := s.Pick(nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func picks(t *testing.T, s Scheduler, n int) []int {
	t.Helper()
	out := make([]int, n)
	for k := range out {
		i, err := s.Pick(nil, nil)
		if err != nil {
			t.Fatalf("pick %d: %v", k, err)
		}
		out[k] = i
	}
	return out
}

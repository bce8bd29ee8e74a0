package scheduler

import "testing"

// TestLeastOneShot checks single picks from given counters, ties included.
func TestLeastOneShot(t *testing.T) {
	quiesced := lab(0, 1, 1)
	down := lab(1, 1, 1)
	down[0].Available = false
	for _, tc := range []struct {
		name string
		alg  string
		snap []Server
		load counts
		want int
	}{
		{"lc least", "lc", lab(1, 1, 1), counts{{1, 0}, {0, 300}, {0, 200}}, 2},
		{"lc active weighs 256", "lc", lab(1, 1), counts{{1, 0}, {0, 255}}, 1},
		{"lc tie first", "lc", lab(1, 1, 1), counts{{0, 5}, {0, 5}, {0, 6}}, 0},
		{"lc ignores weight", "lc", lab(100, 1), counts{{0, 2}, {0, 1}}, 1},
		{"lc weight 0 skipped", "lc", quiesced, counts{{0, 0}, {2, 0}, {1, 0}}, 2},
		{"lc unavailable skipped", "lc", down, counts{{0, 0}, {2, 0}, {1, 0}}, 2},

		{"wlc per weight", "wlc", lab(1, 3, 2), counts{{1, 0}, {2, 0}, {1, 100}}, 1},
		{"wlc tie first", "wlc", lab(1, 2), counts{{1, 0}, {2, 0}}, 0},
		{"wlc inactive counts", "wlc", lab(1, 1), counts{{0, 9}, {0, 3}}, 1},
		{"wlc weight 0 skipped", "wlc", quiesced, counts{{0, 0}, {2, 0}, {1, 0}}, 2},

		{"sed", "sed", lab(1, 3, 4), counts{{0, 0}, {2, 0}, {2, 0}}, 2},
		{"sed tie first", "sed", lab(1, 3), counts{{0, 0}, {2, 0}}, 0},
		{"sed ignores inactive", "sed", lab(1, 1), counts{{0, 1000}, {1, 0}}, 0},
		{"sed counts idle by weight", "sed", lab(10, 1), counts{{5, 0}, {0, 0}}, 0},
		{"sed unavailable skipped", "sed", down, counts{{0, 0}, {2, 0}, {1, 0}}, 2},

		{"nq idle first", "nq", lab(10, 1), counts{{5, 0}, {0, 0}}, 1},
		{"nq first idle wins", "nq", lab(1, 1, 1), counts{{1, 0}, {0, 50}, {0, 0}}, 1},
		{"nq no idle is sed", "nq", lab(1, 3, 4), counts{{1, 0}, {2, 0}, {2, 0}}, 2},
		{"nq idle but quiesced", "nq", quiesced, counts{{0, 0}, {2, 0}, {1, 0}}, 2},
		{"nq idle but down", "nq", down, counts{{0, 0}, {2, 0}, {1, 0}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, tc.alg, tc.snap, Options{})
			got, err := s.Pick(nil, &tc.load)
			if err != nil || got != tc.want {
				t.Errorf("Pick = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestLeastSequence opens a connection per pick, starting idle, so the
// counters move as in the connection table.
func TestLeastSequence(t *testing.T) {
	for _, tc := range []struct {
		alg     string
		weights []int
		want    string
	}{
		{"lc", []int{1, 1, 1}, "ABCABCABC"},
		{"lc", []int{5, 0, 1}, "ACACAC"},
		{"wlc", []int{2, 1}, "ABAABAABA"},
		{"sed", []int{2, 1}, "AABAABAAB"},
		{"nq", []int{2, 1}, "ABAAABAAB"},
		{"nq", []int{1, 1, 1}, "ABCABCABC"},
	} {
		s := mustNew(t, tc.alg, lab(tc.weights...), Options{})
		load := make(counts, len(tc.weights))
		if got := sequence(t, s, len(tc.want), &load); got != tc.want {
			t.Errorf("%s %v: got %s, want %s", tc.alg, tc.weights, got, tc.want)
		}
	}
}

func TestLeastHugeCounts(t *testing.T) {
	// Overheads near 2^40 times weights near 2^31 overflow 64 bits.
	s := mustNew(t, "wlc", lab(1<<31-1, 1<<31-2), Options{})
	load := counts{{1<<32 - 1, 1<<32 - 1}, {1<<32 - 1, 1<<32 - 1}}
	if got, err := s.Pick(nil, &load); err != nil || got != 0 {
		t.Errorf("Pick = %d, %v; want 0 (heavier weight, same load)", got, err)
	}
}

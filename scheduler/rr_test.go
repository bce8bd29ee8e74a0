package scheduler

import "testing"

func TestRR(t *testing.T) {
	down := lab(1, 1, 1, 1)
	down[2].Available = false
	for _, tc := range []struct {
		name string
		snap []Server
		want string
	}{
		{"cycle", lab(1, 1, 1), "ABCABCABC"},
		{"weights ignored", lab(5, 1, 2), "ABCABC"},
		{"weight 0 skipped", lab(1, 0, 1), "ACACAC"},
		{"unavailable skipped", down, "ABDABD"},
		{"one", lab(3), "AAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustNew(t, "rr", tc.snap, Options{})
			if got := sequence(t, s, len(tc.want), nil); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// sequence picks n times. With load set, each pick opens a connection that
// stays active, as the connection table would report it.
func sequence(t *testing.T, s Scheduler, n int, load *counts) string {
	t.Helper()
	picks := make([]int, n)
	for k := range picks {
		var l Load
		if load != nil {
			l = load
		}
		i, err := s.Pick(nil, l)
		if err != nil {
			t.Fatalf("pick %d: %v", k, err)
		}
		picks[k] = i
		if load != nil {
			load.open(i)
		}
	}
	return letters(picks)
}

package scheduler

import (
	"errors"
	"slices"
	"testing"
)

func TestTraitsOf(t *testing.T) {
	want := map[string]Traits{
		"rr":  {},
		"wrr": {Weighted: true},
		"lc":  {LoadBased: true},
		"wlc": {Weighted: true, LoadBased: true},
		"sed": {Weighted: true, LoadBased: true},
		"nq":  {Weighted: true, LoadBased: true},
		"sh":  {Weighted: true, Consistent: true},
		"mh":  {Weighted: true, Consistent: true},
	}
	for _, name := range Names() {
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: registered, but not in this table", name)
			continue
		}
		got, err := TraitsOf(name)
		if err != nil || got != w {
			t.Errorf("TraitsOf(%q) = %+v, %v; want %+v", name, got, err, w)
		}
	}
	for name := range want {
		if !slices.Contains(Names(), name) {
			t.Errorf("%s: in this table, but not registered", name)
		}
	}
	if got, err := TraitsOf("fifo"); !errors.Is(err, ErrUnknown) || got != (Traits{}) {
		t.Errorf("TraitsOf(fifo) = %+v, %v; want zero Traits, ErrUnknown", got, err)
	}
}

// TestTraitsMatchPicks checks each algorithm's declared traits against what
// its picks actually depend on, so a new or changed algorithm cannot
// declare traits it does not have.
func TestTraitsMatchPicks(t *testing.T) {
	for _, name := range Names() {
		tr, err := TraitsOf(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := weightsMatter(t, name); got != tr.Weighted {
			t.Errorf("%s: weights change the picks: %t, but Weighted is %t", name, got, tr.Weighted)
		}
		if got := loadMatters(t, name); got != tr.LoadBased {
			t.Errorf("%s: load changes the picks: %t, but LoadBased is %t", name, got, tr.LoadBased)
		}
		if got := flowDecides(t, name); got != tr.Consistent {
			t.Errorf("%s: the flow alone decides the pick: %t, but Consistent is %t", name, got, tr.Consistent)
		}
	}
}

// placeFresh places n connections from distinct clients on a fresh scheduler,
// each staying active, and returns the server of each.
func placeFresh(t *testing.T, name string, snap []Server, n int, load *counts) []int {
	t.Helper()
	s := mustNew(t, name, snap, Options{})
	out := make([]int, n)
	for k := range out {
		f := Flow{Proto: 6, Src: client(k * 37), SrcPort: uint16(1024 + k)}
		i, err := s.Pick(&f, load)
		if err != nil {
			t.Fatalf("%s: Pick: %v", name, err)
		}
		out[k] = i
		load.open(i)
	}
	return out
}

// weightsMatter reports whether making one server heavier changes the picks.
func weightsMatter(t *testing.T, name string) bool {
	even, heavy := make(counts, 4), make(counts, 4)
	return !slices.Equal(placeFresh(t, name, lab(1, 1, 1, 1), 400, &even), placeFresh(t, name, lab(8, 1, 1, 1), 400, &heavy))
}

// loadMatters reports whether a busy first server changes the picks.
func loadMatters(t *testing.T, name string) bool {
	idle, busy := make(counts, 3), make(counts, 3)
	busy[0] = [2]uint32{1000, 1000}
	return !slices.Equal(placeFresh(t, name, lab(1, 1, 1), 30, &idle), placeFresh(t, name, lab(1, 1, 1), 30, &busy))
}

// flowDecides reports whether one flow always lands on the same address:
// picked again and again while the load grows, and by a second scheduler
// over the same servers listed in another order.
func flowDecides(t *testing.T, name string) bool {
	a := lab(1, 1, 1)
	b := []Server{a[2], a[0], a[1]}
	sa, sb := mustNew(t, name, a, Options{}), mustNew(t, name, b, Options{})
	la, lb := make(counts, 3), make(counts, 3)
	f := Flow{Proto: 6, Src: client(7), SrcPort: 40000}
	first := -1
	for range 10 {
		i, err := sa.Pick(&f, &la)
		if err != nil {
			t.Fatalf("%s: Pick: %v", name, err)
		}
		j, err := sb.Pick(&f, &lb)
		if err != nil {
			t.Fatalf("%s: Pick: %v", name, err)
		}
		la.open(i)
		lb.open(j)
		if first < 0 {
			first = i
		}
		if a[i].Addr != a[first].Addr || b[j].Addr != a[first].Addr {
			return false
		}
	}
	return true
}

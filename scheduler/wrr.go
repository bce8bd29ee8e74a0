package scheduler

import (
	"sort"
	"sync/atomic"
)

func init() { register("wrr", Traits{Weighted: true}, newWRR) }

// wrrTableMax bounds the precomputed wrr sequence (entries per period).
// Longer periods (large, coprime weights) walk the IPVS state machine
// instead.
const wrrTableMax = 1 << 15

// wrr is IPVS weighted round robin: the current weight cw starts at the
// largest weight and drops by the gcd of the weights each time the scan
// wraps; a server is picked when its weight is at least cw. Weights 4, 3, 2
// give A A B A B C A B C and repeat.
//
// The sequence is periodic, so for ordinary weights it is precomputed and
// Pick is one atomic add and an index. Otherwise pos holds the position in
// the state machine, encoded as level*n + i, advanced with compare-and-swap.
// Level k is IPVS's current weight mw - k*gcd, mw = maxW - (gcd-1), which
// admits the same servers as maxW - k*gcd.
//
// Like IPVS's wrr, a rebuild (NewAfter) keeps the current weight, fitted
// to the new weights, and starts the scan at the first server again.
type wrr struct {
	idx    []int32 // usable servers, snapshot order
	weight []int64 // their weights
	seq    []int32 // one period of picks, or nil
	// levels holds, with seq, the index in seq of each level's first
	// pick (every level admits the heaviest server).
	levels []uint32
	gcd    int64
	maxW   int64
	steps  uint64 // levels*n: positions in one period of the state machine
	// pos is the next pick's index in seq, or the next position in the
	// state machine. start is its value at construction: while pos is
	// still start, the current weight is the one start is at.
	pos   atomic.Uint64
	start uint64
}

func newWRR(servers []Server, _ Options) (Scheduler, error) {
	s := &wrr{idx: usableIndices(servers)}
	if len(s.idx) == 0 {
		return s, nil
	}
	var period int64
	for _, i := range s.idx {
		w := weightOf(servers[i])
		s.weight = append(s.weight, w)
		s.gcd = gcd(s.gcd, w)
		s.maxW = max(s.maxW, w)
	}
	for _, w := range s.weight {
		period += w / s.gcd
	}
	s.steps = uint64(s.maxW/s.gcd) * uint64(len(s.idx))
	if period <= wrrTableMax {
		s.seq = make([]int32, 0, period)
		s.levels = make([]uint32, 0, s.maxW/s.gcd)
		n := uint64(len(s.idx))
		var p uint64
		for k := range period {
			var i int32
			i, p = s.walk(p)
			if (p-1)%s.steps/n == uint64(len(s.levels)) {
				s.levels = append(s.levels, uint32(k))
			}
			s.seq = append(s.seq, i)
		}
	}
	return s, nil
}

func (*wrr) Name() string { return "wrr" }

// walk returns the server picked at or after state-machine position p and
// the position after it. Every level admits the heaviest server, so walk
// looks at no more than n positions.
//
// Positions only grow (taken modulo steps here, never stored so): cw
// tells "no pick since start" by pos == start, and a position stored
// modulo steps came back to start after exactly one period of picks on
// a resumed wrr, which then reported the level it resumed at instead of
// its last pick's, one level off IPVS's cw at the next rebuild.
func (s *wrr) walk(p uint64) (int32, uint64) {
	n := uint64(len(s.idx))
	for {
		q := p % s.steps
		level, i := q/n, q%n
		cw := s.maxW - int64(level)*s.gcd
		p++
		if s.weight[i] >= cw {
			return s.idx[i], p
		}
	}
}

func (s *wrr) Pick(*Flow, Load) (int, error) {
	if len(s.idx) == 0 {
		return -1, ErrNoServer
	}
	if s.seq != nil {
		return int(s.seq[(s.pos.Add(1)-1)%uint64(len(s.seq))]), nil
	}
	for {
		p := s.pos.Load()
		i, next := s.walk(p)
		if s.pos.CompareAndSwap(p, next) {
			return int(i), nil
		}
	}
}

// level returns the level of pick pos (an index in seq, or a position in
// the state machine), modulo the period.
func (s *wrr) level(pos uint64) int64 {
	if s.seq != nil {
		pos %= uint64(len(s.seq))
		return int64(sort.Search(len(s.levels), func(k int) bool { return uint64(s.levels[k]) > pos }) - 1)
	}
	return int64(pos % s.steps / uint64(len(s.idx)))
}

// mw is IPVS's highest current weight: maxW - (gcd-1).
func (s *wrr) mw() int64 { return s.maxW - (s.gcd - 1) }

// cw returns IPVS's current weight (mark->cw): the level of the last pick,
// or before any, the one s started at; 0 with no usable server (IPVS's mw
// and cw are then 0).
func (s *wrr) cw() int64 {
	if len(s.idx) == 0 {
		return 0
	}
	v := s.pos.Load()
	if v != s.start {
		v--
	}
	return s.mw() - s.level(v)*s.gcd
}

// resume is ip_vs_wrr_dest_changed: the scan starts at the first server
// again (mark->cl at the list head) with prev's current weight, set to
// the new mw if above it (or 0), else rounded for the new gcd.
func (s *wrr) resume(prev Scheduler) {
	p, ok := prev.(*wrr)
	if !ok || len(s.idx) == 0 {
		return
	}
	cw, mw := p.cw(), s.mw()
	switch {
	case cw > mw || cw == 0:
		cw = mw
	case s.gcd > 1:
		cw = cw/s.gcd*s.gcd + 1
	}
	level := (mw - cw) / s.gcd
	if s.seq != nil {
		s.start = uint64(s.levels[level])
	} else {
		s.start = uint64(level) * uint64(len(s.idx))
	}
	s.pos.Store(s.start)
}

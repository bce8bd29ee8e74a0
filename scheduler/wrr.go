package scheduler

import "sync/atomic"

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
// Pick is one atomic add and an index. Otherwise step holds the position in
// the state machine, encoded as level*n + i, advanced with compare-and-swap.
type wrr struct {
	idx    []int32 // usable servers, snapshot order
	weight []int64 // their weights
	seq    []int32 // one period of picks, or nil
	gcd    int64
	maxW   int64
	steps  uint64 // levels*n: positions in one period of the state machine
	pos    atomic.Uint64
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
		var p uint64
		for range period {
			var i int32
			i, p = s.walk(p)
			s.seq = append(s.seq, i)
		}
	}
	return s, nil
}

func (*wrr) Name() string { return "wrr" }

// walk returns the server picked at or after state-machine position p and
// the position after it. Every level admits the heaviest server, so walk
// looks at no more than n positions.
func (s *wrr) walk(p uint64) (int32, uint64) {
	n := uint64(len(s.idx))
	for {
		p %= s.steps
		level, i := p/n, p%n
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

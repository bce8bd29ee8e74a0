package scheduler

func init() { register("sed", Traits{Weighted: true, LoadBased: true}, newSED) }

// sed is shortest expected delay: the least (active+1)/weight wins, the
// delay the new connection would see if the server served its active
// connections in turn. Inactive connections do not count. Ratios are
// compared by cross-multiplying; the first in snapshot order wins a tie.
type sed struct{ weighted }

func newSED(servers []Server, _ Options) (Scheduler, error) {
	return &sed{newWeighted(servers)}, nil
}

func (*sed) Name() string { return "sed" }

func (s *sed) Pick(_ *Flow, load Load) (int, error) {
	return s.pickSED(load, false)
}

// pickSED is sed, and nq when idleFirst is set: nq takes the first server
// with no active connection at once.
func (s *weighted) pickSED(load Load, idleFirst bool) (int, error) {
	best, bestOH, bestW := -1, uint64(0), uint64(0)
	for k, i := range s.idx {
		active, _ := conns(load, i)
		if idleFirst && active == 0 {
			return int(i), nil
		}
		oh, w := uint64(active)+1, s.weight[k]
		if best < 0 || ratioLess(oh, w, bestOH, bestW) {
			best, bestOH, bestW = int(i), oh, w
		}
	}
	if best < 0 {
		return -1, ErrNoServer
	}
	return best, nil
}

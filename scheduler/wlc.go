package scheduler

func init() { register("wlc", Traits{Weighted: true, LoadBased: true}, newWLC) }

// wlc is weighted least connection: the least overhead/weight wins, where
// overhead is lc's active*256 + inactive. Ratios are compared by
// cross-multiplying; the first in snapshot order wins a tie.
type wlc struct{ weighted }

func newWLC(servers []Server, _ Options) (Scheduler, error) {
	return &wlc{newWeighted(servers)}, nil
}

func (*wlc) Name() string { return "wlc" }

func (s *wlc) Pick(_ *Flow, load Load) (int, error) {
	best, bestOH, bestW := -1, uint64(0), uint64(0)
	for k, i := range s.idx {
		oh, w := lcOverhead(conns(load, i)), s.weight[k]
		if best < 0 || ratioLess(oh, w, bestOH, bestW) {
			best, bestOH, bestW = int(i), oh, w
		}
	}
	if best < 0 {
		return -1, ErrNoServer
	}
	return best, nil
}

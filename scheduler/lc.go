package scheduler

// lc reads the load but, as in IPVS, not the weights.
func init() { register("lc", Traits{LoadBased: true}, newLC) }

// lc is least connection: the usable server with the least overhead
// (active*256 + inactive) wins; the first in snapshot order wins a tie.
type lc struct{ idx []int32 }

func newLC(servers []Server, _ Options) (Scheduler, error) {
	return &lc{idx: usableIndices(servers)}, nil
}

func (*lc) Name() string { return "lc" }

func (s *lc) Pick(_ *Flow, load Load) (int, error) {
	best, bestOH := -1, uint64(0)
	for _, i := range s.idx {
		oh := lcOverhead(conns(load, i))
		if best < 0 || oh < bestOH {
			best, bestOH = int(i), oh
		}
	}
	if best < 0 {
		return -1, ErrNoServer
	}
	return best, nil
}

package scheduler

import "sync/atomic"

// rr has no traits: weights only quiesce (0), load and flow are ignored.
func init() { register("rr", Traits{}, newRR) }

// rr is round robin: each new connection goes to the next usable server in
// snapshot order. The usable servers are listed once at construction, so a
// quiesced or failed server is not visited at all and the others share
// evenly.
type rr struct {
	usable []int32
	next   atomic.Uint64
}

func newRR(servers []Server, _ Options) (Scheduler, error) {
	return &rr{usable: usableIndices(servers)}, nil
}

func (*rr) Name() string { return "rr" }

func (s *rr) Pick(*Flow, Load) (int, error) {
	n := uint64(len(s.usable))
	if n == 0 {
		return -1, ErrNoServer
	}
	return int(s.usable[(s.next.Add(1)-1)%n]), nil
}

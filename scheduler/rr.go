package scheduler

import (
	"sort"
	"sync/atomic"
)

// rr has no traits: weights only quiesce (0), load and flow are ignored.
func init() { register("rr", Traits{}, newRR) }

// rr is round robin: each new connection goes to the next usable server in
// snapshot order. The usable servers are listed once at construction, so a
// quiesced or failed server is not visited at all and the others share
// evenly.
//
// Like IPVS's rr it keeps its place when it is rebuilt (NewAfter): the one
// that replaces it starts after the server it picked last.
type rr struct {
	snap   []Server // to find the last pick in the next snapshot
	usable []int32
	// next counts picks: the next one is usable[next%len(usable)].
	next atomic.Uint64
	// start is next's value at construction, after the last pick of
	// the scheduler this one replaced; while next is still start, that
	// pick is after (a snapshot index; -1: none, start at the first).
	start uint64
	after int32
}

func newRR(servers []Server, _ Options) (Scheduler, error) {
	return &rr{snap: servers, usable: usableIndices(servers), after: -1}, nil
}

func (*rr) Name() string { return "rr" }

func (s *rr) Pick(*Flow, Load) (int, error) {
	n := uint64(len(s.usable))
	if n == 0 {
		return -1, ErrNoServer
	}
	return int(s.usable[(s.next.Add(1)-1)%n]), nil
}

// last returns the snapshot index of the server the next pick comes after:
// the last one picked, or before any pick the one s continued after (-1:
// none).
func (s *rr) last() int32 {
	v := s.next.Load()
	if v == s.start || len(s.usable) == 0 {
		return s.after
	}
	return s.usable[(v-1)%uint64(len(s.usable))]
}

// resume places s after prev's last pick, or, if that server is not in
// s's snapshot, after the nearest one before it in prev's that is (IPVS's
// ip_vs_rr_del_dest moves its place back to the previous destination).
func (s *rr) resume(prev Scheduler) {
	p, ok := prev.(*rr)
	if !ok {
		return
	}
	s.after = -1
	if last := p.last(); last >= 0 {
		if match := matcher(p.snap, s.snap); match != nil {
			for i := int(last); i >= 0 && s.after < 0; i-- {
				s.after = int32(match(i))
			}
		}
	}
	n := len(s.usable)
	k := sort.Search(n, func(j int) bool { return s.usable[j] > s.after })
	if k == n {
		k = 0
	}
	s.start = uint64(k)
	s.next.Store(s.start)
}

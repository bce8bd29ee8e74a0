package scheduler

// nq weighs servers as sed does once none is idle.
func init() { register("nq", Traits{Weighted: true, LoadBased: true}, newNQ) }

// nq is never queue: a usable server with no active connection gets the new
// one straight away (the first such in snapshot order), so no connection
// waits behind another while a server idles; when none is idle, nq
// behaves as sed.
type nq struct{ weighted }

func newNQ(servers []Server, _ Options) (Scheduler, error) {
	return &nq{newWeighted(servers)}, nil
}

func (*nq) Name() string { return "nq" }

func (s *nq) Pick(_ *Flow, load Load) (int, error) {
	return s.pickSED(load, true)
}

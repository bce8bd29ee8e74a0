package forwarder

// Ahead prefetches the connection-table slots of a stream of batches, a
// fixed distance (AheadDistance frames) ahead of the frame being
// processed, across batch boundaries: a caller that already holds the
// next batch while it handles this one (the director reads ahead when a
// batch came full) has the next batch's first lookups prefetched during
// this batch's last frames. Prefetch, which knows only the batch it is
// given, prefetches it all at once and then waits for the first misses at
// the batch's start; Ahead's misses arrive while other frames' work is
// done. Like Prefetch it changes nothing a result depends on, counts
// nothing, allocates nothing and works only while the table is large
// enough for it to pay (PrefetchMinConns, PrefetchMinTableBytes).
//
// Side by side at 1M connections (BenchmarkExistingFlowBatch, ns per
// packet): the whole batch at once 136-165, 16 ahead across batches
// 109-124, 32 ahead 109-137; 1k connections (no prefetching) 63-67.
//
// Per batch: Begin, then Before(i) before processing frame i, then End.
// An Ahead is for the goroutine that owns the Forwarder.
type Ahead struct {
	f    *Forwarder
	data [][]byte // this batch's frames, then the next batch's
	n    int      // this batch's frames in data
	on   bool     // streaming: Before prefetches
	// carried is how many of this batch's first frames the previous
	// batch prefetched (as its next batch's).
	carried int
	// issued counts the frames handed to prefetching, for tests: each
	// frame of a stream once.
	issued int
}

// AheadDistance is how many frames ahead of the one being processed
// Ahead prefetches: at 70-130 ns of work per frame, 16 frames are a few
// times the latency of a miss with its page walk, and few enough that
// the lines are still in the caches when their frame comes.
const AheadDistance = 16

// NewAhead returns an Ahead for f's batches.
func (f *Forwarder) NewAhead() *Ahead { return &Ahead{f: f} }

// Begin starts a batch: data holds its n frames followed by the next
// batch's frames, if the caller has them (none is fine: the batch is then
// prefetched all at once, as Prefetch does). The next call's data must
// start with those next frames for their prefetches to count; any other
// data only wastes them. data is held until End.
func (a *Ahead) Begin(data [][]byte, n int) {
	n = min(n, len(data))
	carried := min(a.carried, n)
	a.data, a.n, a.on, a.carried = data, n, false, 0
	if !a.f.prefetches() {
		return
	}
	if len(data) == n {
		a.f.Prefetch(data[carried:n])
		a.issued += n - carried
		return
	}
	// The first AheadDistance frames at once, as Prefetch does (those
	// not carried from the previous batch), then one per Before.
	if end := min(AheadDistance, len(data)); carried < end {
		a.f.Prefetch(data[carried:end])
		a.issued += end - carried
	}
	a.on = true
}

// Before prefetches what processing frame i of the batch calls for: the
// frame AheadDistance places further in the stream.
func (a *Ahead) Before(i int) {
	if j := i + AheadDistance; a.on && j < len(a.data) {
		a.f.prefetchFrame(a.data[j])
		a.issued++
	}
}

// End finishes the batch and drops its reference to data.
func (a *Ahead) End() {
	if a.on {
		a.carried = min(len(a.data)-a.n, AheadDistance)
	}
	a.data, a.on = nil, false
}

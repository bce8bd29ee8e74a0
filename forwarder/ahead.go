package forwarder

import "github.com/drlb/drlb/conntable"

// Ahead prefetches the connection-table slots of a stream of batches, a
// fixed distance (AheadDistance frames) ahead of the frame being
// processed, across batch boundaries: a caller that already holds the
// next batch while it handles this one (the director reads ahead when a
// batch came full) has the next batch's first lookups prefetched during
// this batch's last frames. Prefetch, which knows only the batch it is
// given, prefetches it all at once and then waits for the first misses at
// the batch's start; Ahead's misses arrive while other frames' work is
// done. Like Prefetch it changes nothing a result depends on, counts
// nothing, allocates nothing in steady state and works only while the
// table is large enough for it to pay (PrefetchMinConns,
// PrefetchMinTableBytes).
//
// The parse and hash of a plain TCP/UDP frame made for its prefetch are
// kept, and the fast path takes them for that frame (Before hands them to
// the Forwarder; a frame is known by its buffer and length) instead of
// parsing and hashing it again.
//
// Side by side at 1M connections (BenchmarkExistingFlowBatch, ns per
// packet, medians of 6 alternated runs in a slow hour): the whole batch
// at once 162, Ahead 126-130; 1k connections (no prefetching) 63-67 in a
// faster one. Keeping the parse and hash, min / median of 8 runs, five
// alternated pairs: 92-108 / 105-121 against 107-110 / 122-129.
//
// Per batch: Begin, then Before(i) before processing frame i, then End.
// An Ahead is for the goroutine that owns the Forwarder.
type Ahead struct {
	f    *Forwarder
	data [][]byte // this batch's frames, then the next batch's
	n    int      // this batch's frames in data
	on   bool     // streaming: Before prefetches
	// upto is how many frames of data are prefetched (carried over from
	// the previous batch, as its next batch's, or by this batch).
	upto int
	// issued counts the frames handed to prefetching, for tests: each
	// frame of a stream once.
	issued int
	// prep holds, per frame of data, what the prefetch learnt: the key,
	// offsets and hash of a plain TCP/UDP frame, which Process's fast path
	// then takes instead of parsing and hashing the frame again.
	// It grows to the longest data given (no allocation in steady state).
	prep []prepared
}

// prepared is a frame's parse and hash, made when its slot was
// prefetched, for the fast path to take (Forwarder.pre). frame and n
// identify the frame it was made from: any other is parsed afresh.
type prepared struct {
	frame *byte
	n     int
	key   conntable.Key
	q     plain
	hash  uint64
}

// of reports whether p was made from frame.
func (p *prepared) of(frame []byte) bool {
	return p.frame != nil && len(frame) == p.n && &frame[0] == p.frame
}

// AheadDistance is how many frames ahead of the one being processed
// Ahead prefetches, and aheadGroup how many it prefetches at a time,
// back to back. At 70-130 ns of work per frame, 8 to 12 frames are a few
// times the latency of a miss with its page walk, and few enough that
// the lines are still in the caches when their frame comes. Groups:
// on the VM a prefetch whose page is out of the TLB holds the CPU until
// its page walk is done (forwarder.Prefetch says more), and prefetches
// issued back to back have their walks overlap, where one per frame
// waits for a walk at every frame. Medians of 6 alternated runs at 1M
// connections, ns per packet: one per frame 16 ahead 151, 2 at a time 8
// ahead 138, 4 at a time 16 ahead 130, 4 at a time 8 ahead 126, the
// whole batch at once (Prefetch) 162; 4 at a time 4, 8 or 12 ahead and
// 8 at a time differed by less than the noise.
const (
	AheadDistance = 12
	aheadGroup    = 4
)

// NewAhead returns an Ahead for f's batches.
func (f *Forwarder) NewAhead() *Ahead { return &Ahead{f: f} }

// Begin starts a batch: data holds its n frames followed by the next
// batch's frames, if the caller has them (none is fine: the batch is then
// prefetched all at once, as Prefetch does). The next call's data must
// start with those next frames for their prefetches to count; any other
// data only wastes them. A next frame's buffer must hold that frame, as
// it was, until the next call has processed it (the director's read-ahead
// keeps it so): its parse is kept, and known by buffer and length. data
// is held until End.
func (a *Ahead) Begin(data [][]byte, n int) {
	n = min(n, len(data))
	carried := min(a.upto, n)
	if len(a.prep) < len(data) {
		a.prep = append(a.prep, make([]prepared, len(data)-len(a.prep))...)
	}
	a.data, a.n, a.on, a.upto = data, n, false, 0
	if !a.f.prefetches() {
		return
	}
	if len(data) == n {
		a.prefetch(carried, n)
		return
	}
	// The first AheadDistance frames at once, as Prefetch does (those
	// not carried from the previous batch), then aheadGroup at a time.
	a.upto = carried
	a.prefetch(carried, min(AheadDistance, len(data)))
	a.on = true
}

// prefetch prefetches data[from:to], back to back, and notes it: keys
// and hashes first, then the prefetches, in a loop of their own
// (Prefetch says why). A plain TCP/UDP frame's parse and hash are kept
// for its Process (a.prep); other frames' keys are found as Prefetch
// finds them.
func (a *Ahead) prefetch(from, to int) {
	if from >= to {
		return
	}
	t := a.f.table
	for j := from; j < to; j++ {
		frame, p := a.data[j], &a.prep[j]
		p.frame = nil
		if quickParse(frame, &p.key, &p.q) {
			p.frame, p.n = &frame[0], len(frame)
		} else if !a.f.prefetchKey(frame, &p.key) {
			p.hash = noPrefetch
			continue
		}
		p.hash = t.Hash(&p.key)
	}
	for j := from; j < to; j++ {
		if h := a.prep[j].hash; h != noPrefetch {
			t.PrefetchHash(h)
		}
	}
	a.issued += to - from
	a.upto = to
}

// noPrefetch marks a frame whose slot is not prefetched (not TCP, UDP or
// an ICMP error). A key whose hash is this value is simply not prefetched.
const noPrefetch = ^uint64(0)

// Before prefetches what processing frame i of the batch calls for: the
// next aheadGroup frames of the stream once the frame AheadDistance
// places further is not prefetched yet.
func (a *Ahead) Before(i int) {
	if a.on && i+AheadDistance >= a.upto {
		a.prefetch(a.upto, min(a.upto+aheadGroup, len(a.data)))
	}
	a.f.pre = nil
	if i < a.upto {
		a.f.pre = &a.prep[i] // checked against the frame in fastExisting
	}
}

// End finishes the batch and drops its reference to data.
func (a *Ahead) End() {
	carried := 0
	if a.on {
		carried = max(a.upto-a.n, 0)
	}
	// The next batch's frames become the first of the next call's data.
	copy(a.prep[:carried], a.prep[a.n:a.n+carried])
	a.data, a.on, a.upto = nil, false, carried
	a.f.pre = nil
}

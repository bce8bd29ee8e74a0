package forwarder

// Counts held for a batch.
//
// Every frame adds to counters that other goroutines read (Stats, Count,
// the metrics): its reason's count and, when it is forwarded, the packets
// and bytes of its real server and of its service. Each of those is an
// atomic add, which on amd64 is a locked instruction and a full memory
// barrier; five per frame were a quarter of the fast path's time (the
// 10k-connection BenchmarkExistingFlowBatch, in a CPU profile). Between
// HoldCounts and PublishCounts a worker adds to plain counters that only
// it touches instead, and PublishCounts makes one atomic add per counter
// the batch touched: with a batch of 64 frames over a few real servers,
// a few adds per batch instead of five per frame.

// heldCounts is what a worker counted since HoldCounts and has not
// published yet. Only the worker's goroutine reads or writes it.
type heldCounts struct {
	on      bool
	reasons [numReasons]uint64
	// totals are the totals with held packets, bytes or connections,
	// each listed once (its held fields are non-zero while listed).
	// Their number is bounded by heldTotalsMax: a batch that touches
	// more publishes early, so that holding never allocates.
	totals []*totals
}

// heldTotalsMax bounds heldCounts.totals: a batch of 64 forwarded frames
// touches at most 128 (a server and a service for each). A longer batch,
// or one over more servers, publishes each time the list fills.
const heldTotalsMax = 2 * PrefetchBatch

// HoldCounts makes the Process calls that follow count into this worker's
// own counters, which nobody else reads, until PublishCounts adds them to
// the counters Stats, Count and the metrics read. The director's step
// holds the counts of each batch it processes. Like Process, it is for
// the goroutine that owns the worker; a worker that never holds counts
// publishes each frame's at once.
func (f *Forwarder) HoldCounts() {
	if f.held.totals == nil {
		f.held.totals = make([]*totals, 0, heldTotalsMax)
	}
	f.held.on = true
}

// PublishCounts adds what the Process calls since HoldCounts counted to
// the shared counters and stops holding. It allocates nothing.
func (f *Forwarder) PublishCounts() {
	f.publishHeld()
	f.held.on = false
}

// publishHeld adds the held counts to the shared counters and zeroes
// them.
func (f *Forwarder) publishHeld() {
	h := &f.held
	for r, n := range h.reasons {
		if n != 0 {
			f.counts[r].Add(n)
			h.reasons[r] = 0
		}
	}
	for i, t := range h.totals {
		if t.heldPackets != 0 {
			t.addTraffic(t.heldPackets, t.heldBytes)
		}
		if t.heldConns != 0 {
			t.connections.Add(t.heldConns)
		}
		t.heldPackets, t.heldBytes, t.heldConns = 0, 0, 0
		h.totals[i] = nil // keep no configuration alive past the batch
	}
	h.totals = h.totals[:0]
}

// countReason counts a frame's reason.
func (f *Forwarder) countReason(r Reason) {
	if f.held.on {
		f.held.reasons[r]++
		return
	}
	f.counts[r].Add(1)
}

// countForwarded adds a forwarded IP packet of size bytes to this worker's
// totals of r and of its service s.
func (f *Forwarder) countForwarded(s *service, r *realServer, size int) {
	rt, sv := &r.totals[f.id], &s.ctr.totals[f.id]
	n := uint64(size)
	if !f.held.on {
		rt.addTraffic(1, n)
		sv.addTraffic(1, n)
		return
	}
	f.holdTotals(rt)
	rt.heldPackets++
	rt.heldBytes += n
	f.holdTotals(sv)
	sv.heldPackets++
	sv.heldBytes += n
}

// countConnection adds a new connection to this worker's totals of r and
// of its service s.
func (f *Forwarder) countConnection(s *service, r *realServer) {
	rt, sv := &r.totals[f.id], &s.ctr.totals[f.id]
	if !f.held.on {
		sv.connections.Add(1)
		rt.connections.Add(1)
		return
	}
	f.holdTotals(rt)
	rt.heldConns++
	f.holdTotals(sv)
	sv.heldConns++
}

// holdTotals lists t among the held totals unless it is already, first
// publishing everything held if the list is full.
func (f *Forwarder) holdTotals(t *totals) {
	if t.heldPackets|t.heldConns != 0 {
		return
	}
	h := &f.held
	if len(h.totals) == cap(h.totals) {
		f.publishHeld()
	}
	h.totals = append(h.totals, t)
}

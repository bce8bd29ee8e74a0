package director

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/link"
)

// Kernel flows (Options.KernelFlows): the kernel forwards the frames of
// established flows itself (link.FlowPort: the AF_XDP port's XDP
// program, or on AF_PACKET each worker's socket filter and the tc
// program Run attaches), the flows the worker's forwarder hands out
// (forwarder.KernelFlowChanges). The worker
// writes the changes after each batch; a goroutine of its own (followFlows)
// writes the servers the kernel may send to, the changes an idle sweep
// made, and notes what the kernel forwarded in the forwarder's counters.

// flowsEvery is how often followFlows runs besides the forwarder's
// changes (a server that fails, is removed or changes MAC leaves the
// kernel's list at once) while a server drains (forwarder.DrainPending):
// a server whose drain deadline passes leaves the list within flowsEvery.
// Otherwise it runs every flowCountsEvery, how often the kernel's counts
// are read: at 50 ms always, the follower and the system calls it made
// were a quarter of an idle director's CPU (link's closeWake has the rest
// of that story).
const (
	flowsEvery      = 50 * time.Millisecond
	flowCountsEvery = 500 * time.Millisecond
)

// errLostRemovals: the forwarder ended more handed-out flows between two
// writes than it keeps (forwarder.KernelFlowChanges' lost).
var errLostRemovals = errors.New("more flows ended at once than drlb keeps for the kernel")

// kernelFlows is a worker's writer of kernel flows, used with the
// worker's mu held (the forwarder's slices are valid until the next
// Process call).
type kernelFlows struct {
	port   link.FlowPort
	failed bool // a write failed: the forwarding is off for good
	add    []link.KernelFlow
	del    []link.KernelFlowKey
	// held are the flows a batch handed out, written once the batch's
	// frames are sent (flushAfterFrames). Another flush meanwhile
	// (followFlows, the idle sweep, sync) leaves them held, but drops
	// the ones it takes back, so that none is written after its removal.
	held []link.KernelFlow
	// takenBack is dropTakenBack's set of the held flows, kept between
	// calls (at most kernelFlowBatch keys).
	takenBack map[link.KernelFlowKey]bool
}

// dropTakenBack drops from k.held the flows k.del takes back. In
// O(held+del), not O(held*del): the idle sweep's flush, with the
// worker's lock held, brings up to 8192 removals (forwarder's
// kernelFlowRemovals) while up to 256 flows are held, and a scan of the
// removals per held flow (2M comparisons) stopped the worker's data path
// for milliseconds, several times the write of the removals itself.
func (k *kernelFlows) dropTakenBack() {
	if len(k.held) == 0 || len(k.del) == 0 {
		return
	}
	if k.takenBack == nil {
		k.takenBack = make(map[link.KernelFlowKey]bool, len(k.held))
	}
	clear(k.takenBack)
	for _, a := range k.held {
		k.takenBack[link.KernelFlowKey{Client: a.Client, VIP: a.VIP, Proto: a.Proto}] = false
	}
	found := false
	for _, r := range k.del {
		if _, ok := k.takenBack[r]; ok {
			k.takenBack[r], found = true, true
		}
	}
	if found {
		k.held = slices.DeleteFunc(k.held, func(a link.KernelFlow) bool {
			return k.takenBack[link.KernelFlowKey{Client: a.Client, VIP: a.VIP, Proto: a.Proto}]
		})
	}
}

// flushKernelFlows writes the flows w's forwarder handed out and took
// back since the last call. A failed write turns the kernel's forwarding
// off (the kernel may hold flows drlb took back).
func (d *Director) flushKernelFlows(w *worker, k *kernelFlows) {
	d.flushKernelFlowsBefore(w, k, false)
}

// flushKernelFlowsBefore is flushKernelFlows for the worker's loop
// (beforeFrames), between a batch and the write of its frames: it writes
// the removals, and holds the additions in k.held for
// flushAfterFrames. A flow is handed out at a frame drlb forwards, and
// the kernel would otherwise forward the flow's next frames, arriving
// meanwhile, ahead of that one; a flow taken back is out of the kernel
// before the frame that took it back goes. It says whether it holds
// additions.
func (d *Director) flushKernelFlowsBefore(w *worker, k *kernelFlows, beforeFrames bool) (held bool) {
	add, del, lost := w.fw.KernelFlowChanges()
	if k.failed {
		return false
	}
	if beforeFrames {
		// Nothing is held between batches (flushAfterFrames ran); if
		// anything were, it goes first, as a removal here may be its.
		if err := d.writeHeldFlows(k); err != nil {
			d.kernelFlowsOff(w, k, err)
			return false
		}
	}
	if len(add)+len(del) == 0 && !lost {
		return len(k.held) > 0
	}
	var err error
	if lost {
		err = errLostRemovals
	} else {
		k.add, k.del = k.add[:0], k.del[:0]
		for _, a := range add {
			k.add = append(k.add, link.KernelFlow(a))
		}
		for _, r := range del {
			k.del = append(k.del, link.KernelFlowKey(r))
		}
		if beforeFrames {
			k.add, k.held = k.held, k.add // held was written, so empty
			if len(k.del) > 0 {
				err = k.port.UpdateKernelFlows(nil, k.del)
			}
		} else {
			// Not the held flows: this flush may run while the worker
			// still sends the batch that handed them out (between its
			// unlock and flushAfterFrames), and writing them here let
			// the kernel forward a flow's next frames ahead of that
			// batch's. The held ones this flush takes back are dropped
			// instead (their removal is written all the same, a no-op),
			// so that none is written after its removal.
			k.dropTakenBack()
			err = k.port.UpdateKernelFlows(k.add, k.del)
		}
	}
	if err != nil {
		d.kernelFlowsOff(w, k, err)
		return false
	}
	return len(k.held) > 0
}

// flushAfterFrames writes the additions flushKernelFlowsBefore held,
// once the batch's frames are sent, less those another flush took back
// meanwhile (dropTakenBack). With w.mu held.
func (d *Director) flushAfterFrames(w *worker, k *kernelFlows) {
	if k.failed {
		return
	}
	if err := d.writeHeldFlows(k); err != nil {
		d.kernelFlowsOff(w, k, err)
	}
}

// writeHeldFlows writes k.held, and empties it.
func (d *Director) writeHeldFlows(k *kernelFlows) error {
	if len(k.held) == 0 {
		return nil
	}
	err := k.port.UpdateKernelFlows(k.held, nil)
	k.held = k.held[:0]
	return err
}

// kernelFlowsOff turns the kernel's forwarding off for good after err
// (k.failed stops every later write), stops w's forwarder handing out
// flows (no extra refresh, no count of flows the kernel no longer
// forwards), and logs why, once. With w.mu held.
func (d *Director) kernelFlowsOff(w *worker, k *kernelFlows, err error) {
	k.failed = true
	w.fw.DisableKernelFlows()
	d.kflowsFailed.Store(true)
	_ = k.port.SetKernelFlowServers(false, 0, nil)
	if !errors.Is(err, link.ErrClosed) {
		d.log.Warn("kernel flows off: every frame goes through drlb", "err", err)
	}
}

// followFlows runs every flowsEvery, and at once when the forwarder's
// servers change (forwarder.Changes) or kernel flows are held or resumed
// (Director.kflowsHeld), until ctx ends: the servers the kernel may send
// to, the idle sweep's removals, and every flowCountsEvery the kernel's
// counts. While held, the port's forwarding is off and drlb forwards
// every frame (the flows' records stay written, so resuming costs one
// write). On the way out the forwarding is turned off (best effort).
func (d *Director) followFlows(ctx context.Context, w *worker, k *kernelFlows) {
	every := flowCountsEvery
	t := time.NewTicker(every)
	defer t.Stop()
	var (
		servers   []link.KernelServer
		wrote     bool // the port's forwarding is on, with servers
		announced bool
		counts    = map[uint32]link.KernelCount{}
		countAt   time.Time
	)
	defer func() { _ = k.port.SetKernelFlowServers(false, 0, nil) }()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				d.noteKernelCounts(w, k, counts) // the last ones, for the final counters
				return
			case <-t.C:
			case <-w.fw.Changes():
			case <-w.holdChanged:
			}
		}
		now := d.clock()
		if next := tickEvery(w.fw.DrainPending(now.UnixNano())); next != every {
			every = next
			t.Reset(every)
		}
		// Under the worker's lock, removals first, then the servers: a
		// slot the sweep freed and a reload reused names a new server
		// only once the old one's flows left the kernel.
		w.mu.Lock()
		d.flushKernelFlows(w, k)
		switch {
		case k.failed:
		case d.kflowsHeld.Load():
			if wrote {
				if err := k.port.SetKernelFlowServers(false, 0, nil); err != nil {
					d.kernelFlowsOff(w, k, err)
				}
				servers, wrote = nil, false
			}
		default:
			next := linkKernelServers(w.fw.KernelServers(now.UnixNano()))
			if !wrote || !slices.Equal(next, servers) {
				if err := k.port.SetKernelFlowServers(true, w.fw.MTU(), next); err != nil {
					d.kernelFlowsOff(w, k, err)
				} else {
					if !announced {
						d.log.Info("kernel flows on: the kernel forwards established flows itself", "servers", len(next))
						announced = true
					}
					servers, wrote = next, true
				}
			}
		}
		failed := k.failed
		w.mu.Unlock()
		if failed {
			d.noteKernelCounts(w, k, counts) // what it forwarded before, for the counters
			return
		}
		// A tick a little early still counts: ticks come every
		// flowCountsEvery too.
		if now.Sub(countAt) >= flowCountsEvery-flowsEvery {
			countAt = now
			d.noteKernelCounts(w, k, counts)
		}
	}
}

// tickEvery is followFlows' tick: flowsEvery while a server drains,
// flowCountsEvery otherwise.
func tickEvery(draining bool) time.Duration {
	if draining {
		return flowsEvery
	}
	return flowCountsEvery
}

// holdKernelFlows holds the kernel's forwarding of kernel flows off
// (held) or lets it resume, on every worker at once.
func (d *Director) holdKernelFlows(held bool) {
	if d.kflowsHeld.Swap(held) == held {
		return
	}
	for _, w := range d.workers {
		select {
		case w.holdChanged <- struct{}{}:
		default: // a wake-up is already waiting
		}
		select { // the same for followSYNs: the SYNs are held too
		case w.synHoldChanged <- struct{}{}:
		default:
		}
	}
}

// noteKernelCounts adds what the kernel forwarded since the last call
// (last: the counts then, updated) to w's forwarder.
func (d *Director) noteKernelCounts(w *worker, k *kernelFlows, last map[uint32]link.KernelCount) {
	now, err := k.port.KernelFlowCounts()
	if err != nil {
		return // counted at the next read
	}
	for id, c := range now {
		l := last[id]
		if c.Packets >= l.Packets && c.Bytes >= l.Bytes {
			w.fw.NoteKernelForwarded(id, c.Packets-l.Packets, c.Bytes-l.Bytes)
		}
		last[id] = c
	}
}

// linkKernelServers converts the forwarder's servers for the port.
func linkKernelServers(ss []forwarder.KernelServer) []link.KernelServer {
	out := make([]link.KernelServer, len(ss))
	for i, s := range ss {
		out[i] = link.KernelServer(s)
	}
	return out
}

package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

// worker is one data path: a port (a member of the fanout group), a
// forwarder worker with its own connection table, and a step, driven by
// one goroutine. The kernel sorts frames among the workers by client
// (link.ClientHash), so a client's connections, persistence template,
// fragments and ICMP errors all meet in one table.
type worker struct {
	port link.Port
	fw   *forwarder.Forwarder
	step *step.Step
	// mu guards fw's connection table: the worker's loop holds it for
	// each batch (uncontended, once per batch); the idle sweeper,
	// connection listings and sync take it between batches, briefly, and
	// Apply for its swap (a pointer and the weights: no work per
	// connection). No other worker ever takes it, and nothing slow runs
	// under it: resolver events are queued (neighborQueue), Apply builds
	// schedulers before taking it.
	mu sync.Mutex
	// kflows writes the flows fw hands to the port's kernel side
	// (Options.KernelFlows; kernelflows.go); nil without.
	kflows *kernelFlows
	// holdChanged wakes the worker's followFlows when Director.kflowsHeld
	// changes (a token, buffered: the sender never waits);
	// synHoldChanged its followSYNs.
	holdChanged, synHoldChanged chan struct{}
}

// FanoutHash is how the director's workers share clients for cfg: by the
// whole client address, or by the widest persistence netmask of its
// services, so that the clients one persistence template covers share a
// worker (and so the template).
func FanoutHash(cfg *config.Config) link.ClientHash {
	var h link.ClientHash
	for _, s := range cfg.Services {
		if s.Persistence <= 0 || s.PersistenceBits <= 0 {
			continue
		}
		if s.VIP.Unmap().Is4() {
			if h.Bits4 == 0 || s.PersistenceBits < h.Bits4 {
				h.Bits4 = min(s.PersistenceBits, 32)
			}
		} else if h.Bits6 == 0 || s.PersistenceBits < h.Bits6 {
			h.Bits6 = min(s.PersistenceBits, 128)
		}
	}
	// The whole address is 0, whichever way it was reached: hashes compare
	// equal when they sort clients alike.
	if h.Bits4 == 32 {
		h.Bits4 = 0
	}
	if h.Bits6 == 128 {
		h.Bits6 = 0
	}
	return h
}

// runWorkers runs every worker's loop until ctx ends or one fails (which
// stops the others through cancel).
func (d *Director) runWorkers(ctx context.Context, cancel context.CancelFunc) error {
	errs := make([]error, len(d.workers))
	var wg sync.WaitGroup
	for i, w := range d.workers {
		// A port that forwards established flows in the kernel
		// (OpenXDP's or an AF_PACKET worker's, with Options.KernelFlows
		// and, for AF_PACKET, the tc program attached): the forwarder
		// hands them out from their first frame on, and the servers, the idle
		// sweep's removals and the kernel's counts are followed on a
		// goroutine of their own (kernelflows.go).
		if p, ok := w.port.(link.FlowPort); ok && d.kflowsOn {
			w.mu.Lock() // the idle sweeper and sync may already run
			w.kflows = &kernelFlows{port: p}
			w.fw.EnableKernelFlows()
			w.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.followFlows(ctx, w, w.kflows)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.loop(ctx, w)
			cancel()
		}()
		// A port that forwards SYNs in the kernel under pressure
		// (OpenXDP's, or an AF_PACKET worker's with the tc program
		// attached, with Options.KernelSYNs) follows the forwarder's
		// pressure on a goroutine of its own (statelesssyn.go): the
		// kernel's SYNs must be noted even while no frame reaches drlb.
		if p, ok := w.port.(link.StatelessSYNPort); ok && d.kernelSYNs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.followSYNs(ctx, w, p)
			}()
		}
	}
	wg.Wait()
	if gone := d.gone.Load(); gone != nil {
		return *gone
	}
	for _, err := range errs {
		if ctx.Err() != nil && (err == nil || errors.Is(err, link.ErrClosed) || errors.Is(err, ctx.Err())) {
			continue
		}
		return err
	}
	return nil
}

// writeWarnEvery is the least time between two write warnings of a
// worker.
const writeWarnEvery = 10 * time.Second

// loop is one worker's data path: read a batch, step, write a batch.
//
// When a batch comes full and the port can be read ahead
// (link.ReadAheader), the loop reads the next batch before it handles
// this one, without waiting, and the step starts the next batch's
// connection-table lookups during this one's (step.HandleAhead): under
// load, with a large table, the memory misses then arrive while other
// frames are processed. The next batch is handled in the next turn,
// without a read; a batch that was not full is not read ahead of, so a
// lightly loaded director reads, and waits, as before.
func (d *Director) loop(ctx context.Context, w *worker) error {
	// The ports point Data at their own buffers.
	in := make([]link.Frame, link.DefaultBatchSize)
	next := make([]link.Frame, link.DefaultBatchSize)
	out := make([]link.Frame, 0, 2*link.DefaultBatchSize)
	reader, _ := w.port.(link.ReadAheader)
	// Clients that completed a handshake go to the port's trusted lane
	// (OpenSplit's, OpenXDP's): under a SYN flood their SYNs skip the
	// flooded queue.
	truster, _ := w.port.(link.ClientTruster)
	trusted := make([]netip.Addr, 0, forwarder.HandshakeBatch)
	// With ha.sync: the batch's table changes, copied out under the
	// lock and sent before the batch's frames (sync.go).
	var updates *packer
	var changes []forwarder.SyncEvent
	if d.sync != nil {
		updates = d.sync.updates()
		changes = make([]forwarder.SyncEvent, 0, syncEventsPerBatch)
	}
	// The last write warning: at most one per writeWarnEvery, since a
	// cause that lasts (a link down) fails every batch; the frames are
	// counted all the same (link.Stats.TxFailed).
	var warned time.Time
	n, m := 0, 0 // frames in in; frames read ahead in next
	// aheadErr is the read ahead's error, reported once the batch it
	// came with is handled (its frames are good), in the next turn.
	var aheadErr error
	for {
		var err error
		switch {
		case aheadErr != nil:
			err, aheadErr = aheadErr, nil
		case m > 0:
			if err = ctx.Err(); err == nil { // else the batch read ahead is dropped, as queued frames are
				in, next, n, m = next, in, m, 0
			}
		default:
			n, err = w.port.ReadBatch(ctx, in)
		}
		if err != nil {
			if errors.Is(err, link.ErrLinkDown) {
				// The socket resumes by itself when the link comes back.
				d.log.Warn("interface went down; waiting for it to come back")
				continue
			}
			return err
		}
		if reader != nil && n == len(in) {
			if m, aheadErr = reader.TryReadBatch(next); aheadErr != nil {
				m = 0
			}
		}
		now := d.clock().UnixNano()
		w.mu.Lock()
		out = w.step.HandleAhead(now, in[:n], next[:m], out[:0])
		if updates != nil {
			changes = append(changes[:0], w.fw.SyncEvents()...)
			w.fw.ResetSyncEvents()
		}
		if truster != nil {
			trusted = w.fw.TakeHandshakes(trusted[:0])
		}
		heldFlows := false
		if w.kflows != nil {
			heldFlows = d.flushKernelFlowsBefore(w, w.kflows, true)
		}
		w.mu.Unlock()
		if len(changes) > 0 {
			updates.addAll(changes) // the records before the frames (sync.go)
			updates.flush()
		}
		if len(trusted) > 0 {
			truster = d.trust(w, truster, trusted)
			trusted = trusted[:0]
		}
		if len(out) > 0 {
			if _, err := w.port.WriteBatch(out); err != nil && time.Since(warned) >= writeWarnEvery {
				warned = time.Now()
				d.log.Warn("write: frames refused, counted in drlb_link_dropped_frames_total{kind=\"tx_failed\"} (this warning at most once per "+writeWarnEvery.String()+" per worker)", "err", err)
			}
		}
		if heldFlows { // the flows this batch handed out, behind its frames
			w.mu.Lock()
			d.flushAfterFrames(w, w.kflows)
			w.mu.Unlock()
		}
		if d.coalesce > 0 && n < len(in)/4 {
			coalesceWait(d.coalesce)
		}
	}
}

// trust puts the clients w's forwarder reported in the port's trusted
// lane, and returns the truster to use from then on: nil once the port
// says it has no lane.
func (d *Director) trust(w *worker, truster link.ClientTruster, clients []netip.Addr) link.ClientTruster {
	err := truster.TrustClients(clients)
	switch {
	case err == nil:
		// Counted once in the lane, never before: the count is a
		// Prometheus counter, which must not go down on a failure.
		w.fw.HandshakesTrusted(len(clients))
	case errors.Is(err, link.ErrClosed):
	case errors.Is(err, link.ErrNoTrustLane):
		d.trustOff.Do(func() {
			d.log.Warn("no trusted-client lane: under a SYN flood, known clients' SYNs queue with the flood's", "err", err)
		})
		return nil
	default:
		d.log.Warn("trusted clients", "err", err)
		// Reported again at their next handshake.
		w.mu.Lock()
		w.fw.ForgetHandshakes(clients)
		w.mu.Unlock()
	}
	return truster
}

// interfaceDeleted ends Serve with ErrInterfaceGone: the sockets (and the
// XDP program) are bound to the deleted interface's index and would wait
// for it for good, deaf to the one created again under its name (a VLAN,
// a bond or a veth set up anew). A new start binds to that one; systemd's
// Restart=on-failure gives it.
func (d *Director) interfaceDeleted(name string) {
	err := fmt.Errorf("%w: %s was deleted while drlb was bound to it: start drlb again (systemd's Restart= does) to run on the interface that replaces it", ErrInterfaceGone, name)
	if d.gone.CompareAndSwap(nil, &err) {
		d.log.Error("interface deleted: the director stops", "interface", name)
		d.closePorts()
	}
}

// closePorts closes every worker's port (ReadBatch returns ErrClosed).
func (d *Director) closePorts() {
	for _, w := range d.workers {
		w.port.Close()
	}
}

// lockWorkers takes every worker's lock, in order (Apply's swap), and
// returns the function that releases them.
func (d *Director) lockWorkers() func() {
	for _, w := range d.workers {
		w.mu.Lock()
	}
	return func() {
		for _, w := range d.workers {
			w.mu.Unlock()
		}
	}
}

// workerOf is the worker whose table holds client c's connections.
func (d *Director) workerOf(c netip.Addr) *worker { return d.workers[d.workerIndex(c)] }

// workerIndex is workerOf's index in d.workers.
func (d *Director) workerIndex(c netip.Addr) int { return d.hash.Index(c, len(d.workers)) }

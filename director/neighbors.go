package director

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/forwarder"
)

// neighborQueue carries the resolver's events (a real server resolved,
// its MAC changed, it stopped answering) from wherever the resolver
// raises them, often the data path, to a goroutine beside it that applies
// them. Applying one rebuilds the schedulers of every service with that
// server (about 2.5 ms for mh with 100 servers): inside the loop that
// would stall forwarding once per resolved server.
//
// push only appends under a mutex nobody holds for long, and never drops
// an event: the queue is bounded in practice by the number of real
// servers times the few events each can raise between two drains.
type neighborQueue struct {
	mu      sync.Mutex
	pending []arp.Event
	wake    chan struct{} // capacity 1: "something is pending"
}

func newNeighborQueue() *neighborQueue {
	return &neighborQueue{wake: make(chan struct{}, 1)}
}

// push queues e; it is the resolver's OnEvent.
func (q *neighborQueue) push(e arp.Event) {
	q.mu.Lock()
	q.pending = append(q.pending, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the queued events in order and empties the queue; buf is
// reused for the next round.
func (q *neighborQueue) take(buf []arp.Event) []arp.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	buf = append(buf[:0], q.pending...)
	q.pending = q.pending[:0]
	return buf
}

// run applies queued events with apply until ctx ends.
func (q *neighborQueue) run(ctx context.Context, apply func(arp.Event)) {
	var buf []arp.Event
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		buf = q.take(buf)
		for _, e := range buf {
			apply(e)
		}
	}
}

// applyNeighbor makes a resolver event count in the forwarder: a resolved
// or changed MAC makes the server usable with it, a failed one takes it
// out of scheduling until it answers again.
//
// An event is applied some time after the resolver raised it, and a
// reload may come in between: it may give the address a static MAC
// (Static raises no event, so a "failed" or a "changed" applied after it
// overrode the configured MAC for good: the server out of scheduling, or
// sent to whoever answered ARP for it), forget it, or ask for it afresh
// (a "resolved" from before its removal made it usable again with a MAC
// nobody confirmed). So the event is applied under Apply's lock, and only
// while it still says what the resolver holds now: a stale one is
// followed by the event of what made it stale, or was made stale by an
// Apply, which told the forwarder itself (followNeighbors). The kernel's
// neighbor table is the model: a permanent entry is never replaced by
// what ARP says.
func (d *Director) applyNeighbor(e arp.Event) {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	now, known := d.resolver.Lookup(e.Addr)
	switch e.Kind {
	case arp.EventResolved, arp.EventChanged:
		if !known || now != e.MAC {
			return // stale: failed, changed again, static, or forgotten since
		}
		if err := d.fw.SetMAC(e.Addr, net.HardwareAddr(e.MAC[:])); err != nil {
			d.log.Error("neighbor", "addr", e.Addr, "err", err)
			return
		}
		if e.Kind == arp.EventChanged {
			d.log.Warn("real server MAC changed", "addr", e.Addr, "old", net.HardwareAddr(e.OldMAC[:]), "mac", net.HardwareAddr(e.MAC[:]).String())
		} else {
			d.log.Info("real server resolved", "addr", e.Addr, "mac", net.HardwareAddr(e.MAC[:]).String())
		}
	case arp.EventFailed:
		if known {
			return // stale: answered again since, or static now
		}
		if err := d.fw.SetMAC(e.Addr, nil); errors.Is(err, forwarder.ErrUnknownServer) {
			return // removed by a reload meanwhile
		}
		d.log.Warn("real server does not answer ARP/NDP: not scheduled until it does (is it up, on this LAN segment?)", "addr", e.Addr)
	}
}

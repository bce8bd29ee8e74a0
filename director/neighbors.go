package director

import (
	"context"
	"net"
	"sync"

	"github.com/drlb/drlb/arp"
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
func (d *Director) applyNeighbor(e arp.Event) {
	switch e.Kind {
	case arp.EventResolved, arp.EventChanged:
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
		_ = d.fw.SetMAC(e.Addr, nil)
		d.log.Warn("real server does not answer ARP/NDP: not scheduled until it does (is it up, on this LAN segment?)", "addr", e.Addr)
	}
}

package director

import (
	"context"
	"time"

	"github.com/drlb/drlb/link"
)

// With AF_PACKET, a kernel flow's frame is refused by drlb's socket
// filter and sent by the tc program at the head of tcx ingress
// (link.AttachVIPDrop). Another tool that attaches a program at the head
// later (a CNI, a monitor, "bpftool prog attach ... head") runs before
// ours: if it ends a frame's way (TC_ACT_OK, a drop, a redirect), the
// frames drlb's filters refused are lost; a link detached from outside
// loses them all. watchKernelFlowOrder polls the order and holds kernel
// flows (Director.holdKernelFlows) while ours is not first, so that drlb
// forwards every frame itself: a tool drlb cannot see cost at most a
// poll's worth of frames (flowsEvery, then the workers' wake-up), which
// TCP retransmits, never a silent black hole.

// kflowOrder is what watchKernelFlowOrder polls (link.VIPDrop).
type kflowOrder interface {
	KernelFlowOrder() (link.TCXOrder, error)
}

// background runs fn on a goroutine of its own until ctx ends or the
// returned stop is called; stop returns once fn has: for the watchers Run
// starts beside the workers (watchKernelFlowOrder, watchXDP).
func background(ctx context.Context, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(ctx)
	}()
	return func() { cancel(); <-done }
}

// kflowOrderState is what watchKernelFlowOrder last saw.
type kflowOrderState int

const (
	kflowFirst    kflowOrderState = iota // drlb's program runs first: kernel flows run
	kflowBehind                          // another program runs before it
	kflowDetached                        // it is not attached any more
	kflowUnread                          // the order could not be read failuresToHold times in a row
)

// failuresToHold is how many failed reads in a row hold kernel flows: a
// watcher that cannot see cannot tell that frames are safe. One failure
// alone is kept as it was (the list can change between the two calls a
// read takes).
const failuresToHold = 3

// heldByTCOrder names, for the log, what a tc program ahead of drlb's
// holds: kernel flows, the SYNs the socket filters leave to the same
// program with -kernel-syns (statelesssyn.go), or both.
func (d *Director) heldByTCOrder() string {
	switch {
	case d.kflowsOn && d.kernelSYNs:
		return "kernel flows and SYNs"
	case d.kflowsOn:
		return "kernel flows"
	default:
		return "kernel SYNs"
	}
}

// watchKernelFlowOrder reads drop's place in ifname's tcx ingress every
// `every` and holds kernel flows while the program is not first (or the
// order cannot be read), logging each change.
func (d *Director) watchKernelFlowOrder(ctx context.Context, drop kflowOrder, ifname string, every time.Duration) {
	log := d.log
	what := d.heldByTCOrder()
	t := time.NewTicker(every)
	defer t.Stop()
	last, failures, lastErr := kflowFirst, 0, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o, err := drop.KernelFlowOrder()
		state := kflowFirst
		switch {
		case err != nil:
			failures++
			if err.Error() != lastErr {
				lastErr = err.Error()
				log.Warn(what+": cannot read the order of the tc ingress programs", "interface", ifname, "failures in a row", failures, "err", err)
			}
			if failures < failuresToHold {
				continue // as it was
			}
			state = kflowUnread
		case !o.Attached:
			state = kflowDetached
		case !o.First():
			state = kflowBehind
		}
		if err == nil {
			failures, lastErr = 0, ""
		}
		if state == last {
			continue
		}
		last = state
		d.holdKernelFlows(state != kflowFirst)
		switch state {
		case kflowFirst:
			log.Info(what+" resumed: drlb's tc program runs first at tc ingress again", "interface", ifname)
		case kflowBehind:
			log.Warn(what+" held: another tc program runs before drlb's at tc ingress and could lose the frames drlb leaves to the kernel; drlb forwards every frame itself while it is there",
				"interface", ifname, "programs ahead", o.Ahead)
		case kflowDetached:
			log.Warn(what+" held: drlb's tc program was detached from tc ingress (from outside drlb); drlb forwards every frame itself until it restarts",
				"interface", ifname)
		case kflowUnread:
			log.Warn(what+" held: drlb cannot read the order of the tc ingress programs; drlb forwards every frame itself until it can",
				"interface", ifname, "err", err)
		}
	}
}

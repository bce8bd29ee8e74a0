package director

import (
	"context"
	"log/slog"
	"sync"
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

// startKernelFlowWatch runs watchKernelFlowOrder until ctx ends or the
// returned stop is called; stop returns once it has ended.
func (d *Director) startKernelFlowWatch(ctx context.Context, drop kflowOrder, ifname string, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.watchKernelFlowOrder(ctx, drop, ifname, log, flowsEvery)
	}()
	return func() { cancel(); wg.Wait() }
}

// watchKernelFlowOrder reads drop's place in ifname's tcx ingress every
// `every` and holds kernel flows while the program is not first, logging
// each change. A failed read keeps the last state (logged once per
// distinct error).
func (d *Director) watchKernelFlowOrder(ctx context.Context, drop kflowOrder, ifname string, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	held, lastErr := false, ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		o, err := drop.KernelFlowOrder()
		if err != nil {
			if err.Error() != lastErr {
				lastErr = err.Error()
				log.Warn("kernel flows: cannot read the order of the tc ingress programs; kept as it was", "interface", ifname, "held", held, "err", err)
			}
			continue
		}
		lastErr = ""
		if o.First() != held {
			continue // unchanged
		}
		held = !o.First()
		d.holdKernelFlows(held)
		switch {
		case !held:
			log.Info("kernel flows resumed: drlb's tc program runs first at tc ingress again", "interface", ifname)
		case !o.Attached:
			log.Warn("kernel flows held: drlb's tc program was detached from tc ingress (from outside drlb); drlb forwards every frame itself until it restarts",
				"interface", ifname)
		default:
			log.Warn("kernel flows held: another tc program runs before drlb's at tc ingress and could lose the frames drlb leaves to the kernel; drlb forwards every frame itself while it is there",
				"interface", ifname, "programs ahead", o.Ahead)
		}
	}
}

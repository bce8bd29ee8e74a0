package director

import (
	"context"
	"errors"
	"time"

	"github.com/drlb/drlb/link"
)

// With -io afxdp the XDP program sends VIP frames to drlb's AF_XDP
// sockets and, with -kernel-flows or -kernel-syns, forwards some itself. Its
// BPF link cannot be replaced behind drlb's back, but an operator can
// detach it ("bpftool link detach"). Frames then reach drlb through the
// port's AF_PACKET side (drlb goes on forwarding them, sending through
// the AF_XDP socket in copy mode, which needs no program, and through
// AF_PACKET in zero-copy mode, whose driver does), and the kernel gets
// them too, its copy dropped at tc ingress where Run attached the drop
// (attachVIPDrop); the XDP program's own forwarding is gone.
// Nothing breaks, but the director runs differently from what its
// start-up log said: watchXDP notices, logs it, and says so in drlb ctl
// and the metrics. It does not attach again: the operator detached it,
// and a detached link never comes back; a restart attaches a new one.

// xdpWatchEvery is how often watchXDP asks: it only reports, so a second
// is soon enough.
const xdpWatchEvery = time.Second

// watchXDP asks port every `every` whether its XDP program is still
// attached. Once it is not, it marks the director (Director.xdpDetached),
// holds kernel flows (the program that forwarded them is gone: drlb
// forwards every frame), logs why and ends. A failed read is logged once
// per distinct error and changes nothing.
func (d *Director) watchXDP(ctx context.Context, port link.XDPAttachment, ifname string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	lastErr := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		attached, err := port.XDPAttached()
		switch {
		case errors.Is(err, link.ErrClosed):
			return
		case err != nil:
			if err.Error() != lastErr {
				lastErr = err.Error()
				d.log.Warn("cannot tell whether drlb's XDP program is still attached", "interface", ifname, "err", err)
			}
			continue
		case attached:
			lastErr = ""
			continue
		}
		d.xdpDetached.Store(true)
		// kflowsOn is settled: Run changes it only for AF_PACKET ports,
		// and this watch runs for AF_XDP ones.
		if d.kflowsOn {
			d.holdKernelFlows(true)
		}
		d.log.Warn("XDP program detached from the interface, from outside drlb (or the interface was deleted): VIP frames now reach drlb through its AF_PACKET socket and drlb goes on forwarding them (the kernel's copy is dropped at tc ingress where that drop is attached), but the XDP program's own forwarding (-kernel-flows, -kernel-syns) is gone until drlb restarts",
			"interface", ifname)
		return
	}
}

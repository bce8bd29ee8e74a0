package director

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/link"
)

// scriptedAttachment answers XDPAttached (scripted); closed, it says the
// port closed.
type scriptedAttachment struct{ scripted[bool] }

func (s scriptedAttachment) XDPAttached() (bool, error) { return s.next(link.ErrClosed) }

// TestWatchXDP: while the XDP program is attached nothing changes, and a
// failed read changes nothing either (logged once per distinct error);
// once it is detached the director says so (ctl's xdp "detached", kernel
// flows held, the workers' kernel forwarding off), logs why, and the
// watch ends without asking again.
func TestWatchXDP(t *testing.T) {
	d, spy, logs := spiedDirector(t)
	d.xdpMode = "generic" // as New sets it for an AF_XDP port
	spy.want(t, true, "at start")
	attached := scriptedAttachment{make(scripted[bool])}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.watchXDP(context.Background(), attached, "eth-test", time.Millisecond)
	}()
	answer := attached.answer
	failed := errors.New("link info failed")
	answer(true, nil)
	answer(false, failed)
	answer(false, failed) // logged once
	answer(true, nil)
	if s := d.Snapshot(false); s.XDP != "generic" || s.KernelFlows != control.KernelFlowsOn {
		t.Fatalf("attached: ctl says xdp %q, kernel flows %q; want generic, on", s.XDP, s.KernelFlows)
	}
	answer(false, nil)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch goes on after the program was detached")
	}
	close(attached.scripted)
	spy.want(t, false, "the XDP program detached")
	if s := d.Snapshot(false); s.XDP != control.XDPDetached || s.KernelFlows != control.KernelFlowsHeld {
		t.Errorf("detached: ctl says xdp %q, kernel flows %q; want detached, held", s.XDP, s.KernelFlows)
	}
	out := logs.String()
	if n := strings.Count(out, "cannot tell whether drlb's XDP program is still attached"); n != 1 {
		t.Errorf("a failed read twice in a row logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "XDP program detached from the interface, from outside drlb") || !strings.Contains(out, "interface=eth-test") {
		t.Errorf("the log does not say the XDP program was detached:\n%s", out)
	}
}

// TestWatchXDPClosed: a closed port ends the watch and changes nothing.
func TestWatchXDPClosed(t *testing.T) {
	d := &Director{log: slog.New(slog.DiscardHandler)}
	attached := scriptedAttachment{make(scripted[bool])}
	close(attached.scripted)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.watchXDP(context.Background(), attached, "eth-test", time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch goes on after the port closed")
	}
	if d.xdpDetached.Load() || d.kflowsHeld.Load() {
		t.Error("a closed port marked the XDP program detached")
	}
}

package director

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/link"
)

// flowPortSpy is a port whose kernel side only records what the
// director turns on and off.
type flowPortSpy struct {
	link.Port
	on chan bool // each SetKernelFlowServers call's on
}

func (p *flowPortSpy) SetKernelFlowServers(on bool, _ int, _ []link.KernelServer) error {
	select {
	case p.on <- on:
	default:
	}
	return nil
}
func (p *flowPortSpy) UpdateKernelFlows([]link.KernelFlow, []link.KernelFlowKey) error { return nil }
func (p *flowPortSpy) KernelFlowCounts() (map[uint32]link.KernelCount, error)          { return nil, nil }

// spiedDirector is a serving director with kernel flows over a
// flowPortSpy, logging as text into logs.
func spiedDirector(t *testing.T) (*Director, *flowPortSpy, *testutil.SyncBuffer) {
	t.Helper()
	dirPort, wire := link.Pipe()
	spy := &flowPortSpy{Port: dirPort, on: make(chan bool, 16)}
	logs := new(testutil.SyncBuffer)
	d, err := New(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), spy, Options{IPv4: netip.MustParseAddr("198.18.0.2"), KernelFlows: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	return d, spy, logs
}

// want waits for the worker's next change of the port's kernel
// forwarding and checks it is on (or off); why names the step.
func (p *flowPortSpy) want(t *testing.T, on bool, why string) {
	t.Helper()
	select {
	case got := <-p.on:
		if got != on {
			t.Fatalf("%s: the worker turned the kernel's forwarding on=%v, want on=%v", why, got, on)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the worker did not turn the kernel's forwarding on=%v", why, on)
	}
}

// scripted answers a watcher's reads with what the test sends, one read
// per answer (answer blocks until the watcher reads); once the test
// closes it, reads fail with the error next is given.
type scripted[T any] chan func() (T, error)

func (s scripted[T]) answer(v T, err error) { s <- func() (T, error) { return v, err } }

func (s scripted[T]) next(ended error) (T, error) {
	answer, ok := <-s
	if !ok {
		var zero T
		return zero, ended
	}
	return answer()
}

// scriptedOrder answers KernelFlowOrder.
type scriptedOrder struct{ scripted[link.TCXOrder] }

func (s scriptedOrder) KernelFlowOrder() (link.TCXOrder, error) {
	return s.next(errors.New("the test ended"))
}

// TestKernelFlowHold: while the tc program is not first at tc ingress
// (another program ahead, or detached), the workers turn their port's
// kernel forwarding off, and on again once it is first; a failed read
// changes nothing. Each change is logged.
func TestKernelFlowHold(t *testing.T) {
	d, spy, logs := spiedDirector(t)
	want := func(on bool, why string) { t.Helper(); spy.want(t, on, why) }
	want(true, "at start")
	order := scriptedOrder{make(scripted[link.TCXOrder])}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.watchKernelFlowOrder(ctx, order, "eth-test", time.Millisecond)
	}()
	defer func() { cancel(); close(order.scripted); <-done }()
	answer := order.answer
	answer(link.TCXOrder{Attached: true}, nil) // first: nothing to do
	answer(link.TCXOrder{Attached: true, Ahead: []ebpf.ProgramID{7}}, nil)
	want(false, "a program ahead")
	answer(link.TCXOrder{Ahead: []ebpf.ProgramID{7}}, nil) // and then detached: still held, logged
	failed := errors.New("query failed")
	answer(link.TCXOrder{}, failed)
	answer(link.TCXOrder{}, failed) // kept as it was
	answer(link.TCXOrder{Attached: true}, nil)
	want(true, "first again")
	for range failuresToHold {
		answer(link.TCXOrder{}, failed)
	}
	want(false, "the order unreadable")
	answer(link.TCXOrder{Attached: true}, nil)
	want(true, "readable and first")
	answer(link.TCXOrder{Attached: true}, nil) // processed the one before
	select {
	case on := <-spy.on:
		t.Errorf("the workers changed the kernel's forwarding (on=%v) without a change in the order", on)
	case <-time.After(3 * flowsEvery): // the workers' own poll has run since
	}
	out := logs.String()
	for _, line := range []string{"kernel flows held: another tc program", `"programs ahead"=[7]`, "kernel flows held: drlb's tc program was detached",
		"cannot read the order", "kernel flows held: drlb cannot read", "kernel flows resumed"} {
		if !strings.Contains(out, line) {
			t.Errorf("the log has no %q:\n%s", line, out)
		}
	}
	if n := strings.Count(out, "kernel flows: cannot read the order"); n != 2 {
		t.Errorf("two runs of the same failed read logged %d times, want once each", n)
	}
}

// TestHeldByTCOrder: the hold's log lines name what is held, both
// when -kernel-flows and -kernel-syns run together (they said "kernel
// flows" alone, though the SYNs were held as well).
func TestHeldByTCOrder(t *testing.T) {
	for _, c := range []struct {
		flows, syns bool
		want        string
	}{
		{flows: true, want: "kernel flows"},
		{syns: true, want: "kernel SYNs"},
		{flows: true, syns: true, want: "kernel flows and SYNs"},
	} {
		d := &Director{kflowsOn: c.flows, kernelSYNs: c.syns}
		if got := d.heldByTCOrder(); got != c.want {
			t.Errorf("kernel flows %v, kernel SYNs %v: %q, want %q", c.flows, c.syns, got, c.want)
		}
	}
}

// TestKernelFlowsFailedReported: once a write to the kernel failed and
// kernel flows are off for good, drlb ctl says so ("failed", where it
// said "on"), and no flow counts as the kernel's.
func TestKernelFlowsFailedReported(t *testing.T) {
	d, spy, logs := spiedDirector(t)
	spy.want(t, true, "at start")
	w := d.workers[0]
	w.mu.Lock()
	d.kernelFlowsOff(w, w.kflows, errors.New("map update: no space left"))
	w.mu.Unlock()
	s := d.Snapshot(false)
	if s.KernelFlows != control.KernelFlowsFailed || s.KernelFlowsOut != 0 {
		t.Errorf("kernel flows %q with %d out, want %q and 0", s.KernelFlows, s.KernelFlowsOut, control.KernelFlowsFailed)
	}
	if !strings.Contains(logs.String(), "kernel flows off") {
		t.Errorf("not logged:\n%s", logs)
	}
}

package director

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// orderSpy is a flowPortSpy that notes, at each write of kernel flows,
// how many frames the director had read and sent by then.
type orderSpy struct {
	*flowPortSpy
	mu         sync.Mutex
	read, sent int
	adds       [][2]int // (read, sent) at each write that hands out flows
	dels       [][2]int // the same for writes that take flows back
	// slow delays each write of frames (a send that takes a while, as a
	// full TX ring's): the other writers of kernel flows (followFlows,
	// every flowsEvery) run meanwhile.
	slow time.Duration
}

func (p *orderSpy) ReadBatch(ctx context.Context, f []link.Frame) (int, error) {
	n, err := p.flowPortSpy.ReadBatch(ctx, f)
	p.mu.Lock()
	p.read += n
	p.mu.Unlock()
	return n, err
}

func (p *orderSpy) WriteBatch(f []link.Frame) (int, error) {
	if p.slow > 0 {
		time.Sleep(p.slow)
	}
	n, err := p.flowPortSpy.WriteBatch(f)
	p.mu.Lock()
	for _, fr := range f[:max(n, 0)] {
		if isTCP(fr.Data) { // not the director's ARP
			p.sent++
		}
	}
	p.mu.Unlock()
	return n, err
}

// isTCP says whether an untagged frame carries IPv4 TCP.
func isTCP(f []byte) bool { return len(f) >= 34 && f[12] == 0x08 && f[13] == 0 && f[23] == 6 }

func (p *orderSpy) UpdateKernelFlows(add []link.KernelFlow, del []link.KernelFlowKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(add) > 0 {
		p.adds = append(p.adds, [2]int{p.read, p.sent})
	}
	if len(del) > 0 {
		p.dels = append(p.dels, [2]int{p.read, p.sent})
	}
	return nil
}

// TestKernelFlowsWrittenAroundFrames: a worker hands a flow to the
// kernel only once the frame that handed it out has gone (else the
// kernel forwards the flow's next frames ahead of it), and takes a flow
// back before the frame that took it back goes (else the kernel forwards
// frames behind drlb's back after a FIN).
func TestKernelFlowsWrittenAroundFrames(t *testing.T) { testKernelFlowsAroundFrames(t, 0) }

// TestKernelFlowsWrittenAroundSlowFrames: also when followFlows flushes
// while the worker still sends the batch that handed a flow out, the
// flow waits for the batch's frames.
func TestKernelFlowsWrittenAroundSlowFrames(t *testing.T) {
	testKernelFlowsAroundFrames(t, 3*flowsEvery)
}

func testKernelFlowsAroundFrames(t *testing.T, slow time.Duration) {
	dirPort, wire := link.Pipe()
	spy := &orderSpy{flowPortSpy: &flowPortSpy{Port: dirPort, on: make(chan bool, 16)}, slow: slow}
	d, err := New(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), spy, Options{IPv4: netip.MustParseAddr("198.18.0.2"), KernelFlows: true})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	spy.want(t, true, "at start")

	l2 := framegen.L2{Src: routerMAC, Dst: dirPort.HardwareAddr()}
	client := netip.MustParseAddrPort("198.19.0.1:40000")
	frames := link.NewFrames(16)
	// through sends one frame and waits for it on the wire, so that each
	// batch holds one frame.
	through := func(flags string, seq uint32) {
		t.Helper()
		send(t, wire, framegen.TCP(l2, client, netip.AddrPortFrom(vip, 80), flags, seq, 1, nil))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := wire.ReadBatch(ctx, frames); err != nil {
			t.Fatalf("the %s frame was not forwarded: %v", flags, err)
		}
	}
	through("S", 1)
	for i := range 4 {
		through("A", uint32(2+i))
	}
	through("FA", 6)
	time.Sleep(3 * flowsEvery) // any write still to come
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if len(spy.adds) == 0 || len(spy.dels) == 0 {
		t.Fatalf("flows handed out at %v and taken back at %v (read, sent): want both", spy.adds, spy.dels)
	}
	if testing.Verbose() {
		t.Logf("handed out at %v, taken back at %v (read, sent)", spy.adds, spy.dels)
	}
	for _, a := range spy.adds {
		if a[1] < a[0] {
			t.Errorf("a flow was handed to the kernel with %d of the %d frames read sent: before the frame that handed it out", a[1], a[0])
		}
	}
	for _, r := range spy.dels {
		if r[1] >= r[0] {
			t.Errorf("a flow was taken back from the kernel with all %d frames read sent: after the frame that took it back", r[0])
		}
	}
}

// kernelMap is a FlowPort whose kernel side keeps the flows written, as
// the kernel's map would (removals before additions, as link's update).
type kernelMap struct {
	*flowPortSpy
	flows map[link.KernelFlowKey]bool
}

func (p *kernelMap) UpdateKernelFlows(add []link.KernelFlow, del []link.KernelFlowKey) error {
	for _, k := range del {
		delete(p.flows, k)
	}
	for _, a := range add {
		p.flows[link.KernelFlowKey{Client: a.Client, VIP: a.VIP, Proto: a.Proto}] = true
	}
	return nil
}

// TestKernelFlowsHeldTakenBack: a flow a batch handed out and another
// flush (the idle sweep's, followFlows', sync's) takes back while the
// worker still sends the batch never reaches the kernel: the flush in
// between does not write the held flows, and must not leave that one
// for flushAfterFrames to write after its removal.
func TestKernelFlowsHeldTakenBack(t *testing.T) {
	dirPort, _ := link.Pipe()
	kmap := &kernelMap{flowPortSpy: &flowPortSpy{Port: dirPort, on: make(chan bool, 16)}, flows: map[link.KernelFlowKey]bool{}}
	d, err := New(configOf(service(vip, 80, "rr", realAt(1, 1, rs1MAC))), kmap, Options{IPv4: netip.MustParseAddr("198.18.0.2"), KernelFlows: true})
	if err != nil {
		t.Fatal(err)
	}
	w := d.workers[0]
	w.kflows = &kernelFlows{port: kmap}
	w.fw.EnableKernelFlows()
	l2 := framegen.L2{Src: routerMAC, Dst: dirPort.HardwareAddr()}
	client := netip.MustParseAddrPort("198.19.0.1:40000")
	out := make([]link.Frame, 0, 16)
	batch := func(flags string, seq uint32) bool { // a worker's batch up to its unlock
		fr := []link.Frame{{Data: framegen.TCP(l2, client, netip.AddrPortFrom(vip, 80), flags, seq, 1, nil)}}
		out = w.step.HandleAhead(time.Now().UnixNano(), fr, nil, out[:0])
		return d.flushKernelFlowsBefore(w, w.kflows, true)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	held := false
	for i, flags := range []string{"S", "A", "A", "A"} {
		if held = batch(flags, uint32(1+i)); held {
			break
		}
		d.flushAfterFrames(w, w.kflows)
	}
	if !held {
		t.Fatal("no flow handed out")
	}
	// Before flushAfterFrames: the entry leaves the table (a FIN here,
	// processed without a batch's flush; the idle sweep or sync in life),
	// and another flush takes it back.
	fr := []link.Frame{{Data: framegen.TCP(l2, client, netip.AddrPortFrom(vip, 80), "R", 9, 0, nil)}}
	out = w.step.HandleAhead(time.Now().UnixNano(), fr, nil, out[:0])
	d.flushKernelFlows(w, w.kflows)
	d.flushAfterFrames(w, w.kflows)
	if len(kmap.flows) != 0 || w.kflows.failed {
		t.Fatalf("the kernel forwards %v (failed %v) after the flow was taken back", kmap.flows, w.kflows.failed)
	}
}

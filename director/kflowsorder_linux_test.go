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
}

func (p *orderSpy) ReadBatch(ctx context.Context, f []link.Frame) (int, error) {
	n, err := p.flowPortSpy.ReadBatch(ctx, f)
	p.mu.Lock()
	p.read += n
	p.mu.Unlock()
	return n, err
}

func (p *orderSpy) WriteBatch(f []link.Frame) (int, error) {
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
func TestKernelFlowsWrittenAroundFrames(t *testing.T) {
	dirPort, wire := link.Pipe()
	spy := &orderSpy{flowPortSpy: &flowPortSpy{Port: dirPort, on: make(chan bool, 16)}}
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

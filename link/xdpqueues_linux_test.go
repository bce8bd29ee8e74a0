package link

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
)

// TestXDPQueues opens one AF_XDP port per receive queue of a veth with
// several queues (OpenXDPQueues) and sends VIP frames from many clients
// through the peer's queues: every frame must reach exactly the port of
// its client's worker (ClientHash.Index), whether the program redirected
// it on that port's queue or passed it from another queue to the ports'
// AF_PACKET fanout group; and the program must have taken frames through
// AF_XDP on every queue. Closing one port leaves the program attached for
// the others; closing the last detaches it.
func TestXDPQueues(t *testing.T) {
	testutil.NeedRoot(t)
	const queues = 2
	nsA, nsD := testutil.NewNS(t), testutil.NewNS(t)
	// In generic mode a veth frame sent on the peer's transmit queue k
	// runs XDP as received on queue k-1 (0 for k = 0: the queue mapping
	// read as a recorded receive queue): queues+1 transmit queues reach
	// every receive queue and no higher one (the kernel warns for those).
	testutil.Veth(t,
		testutil.End{NS: nsA, Name: "a0", MAC: macA0, Addr: netip.PrefixFrom(ipA0, 24), Queues: queues + 1},
		testutil.End{NS: nsD, Name: "d0", MAC: macD0, Addr: netip.PrefixFrom(ipD0, 24), Queues: queues})
	pa := openIn(t, nsA, "a0", Config{})
	h := ClientHash{Bits4: 24}
	filter, err := VIPFilter([]netip.Addr{vip4})
	if err != nil {
		t.Fatal(err)
	}
	var ports []Port
	err = testutil.Do(nsD, func() error {
		var err error
		ports, err = OpenXDPQueues("d0", Config{Filter: filter}, []netip.Addr{vip4}, queues, h)
		return err
	})
	if err != nil {
		t.Fatalf("OpenXDPQueues: %v", err)
	}
	for _, p := range ports {
		t.Cleanup(func() { p.Close() })
	}
	if len(ports) != queues {
		t.Fatalf("%d ports, want %d", len(ports), queues)
	}
	xp := []*xdpPort{ports[0].(*xdpPort), ports[1].(*xdpPort)}
	t.Logf("XDP in %s mode", xp[0].XDPMode())
	// What one map for every queue cannot do is refused, by name.
	if _, err := xp[1].SetStatelessSYNs(true, nil); !errors.Is(err, ErrQueuePorts) {
		t.Errorf("stateless SYNs on a queue's port: %v, want ErrQueuePorts", err)
	}
	err = testutil.Do(nsD, func() error {
		_, err := OpenXDPQueues("d0", Config{Filter: filter, KernelFlows: true}, []netip.Addr{vip4}, queues, h)
		return err
	})
	if !errors.Is(err, ErrQueuePorts) || !strings.Contains(err.Error(), "d0") {
		t.Errorf("OpenXDPQueues with kernel flows: %v, want ErrQueuePorts naming d0", err)
	}

	// Clients in many /24s (the hash's prefix), several flows each: the
	// peer's transmit queue follows the flow, so each client's frames
	// meet several of d0's receive queues.
	l2 := framegen.L2{Src: macA0, Dst: macD0}
	type sent struct {
		client netip.Addr
		seen   int
		port   int
	}
	want := map[string]*sent{}
	var frames []Frame
	for i := range 64 {
		c := netip.AddrFrom4([4]byte{198, 18, byte(10 + i), byte(1 + i%7)})
		for j := range 4 {
			marker := fmt.Sprintf("client-%d-flow-%d;", i, j)
			want[marker] = &sent{client: c, port: -1}
			frames = append(frames, Frame{Data: framegen.UDP(l2, netip.AddrPortFrom(c, uint16(20000+j*977+i)), netip.AddrPortFrom(vip4, 53), []byte(marker))})
		}
		// A bare SYN too: on its worker's queue it takes the SYN ring,
		// on another the SYN socket of the worker's split side.
		marker := fmt.Sprintf("client-%d-syn;", i)
		want[marker] = &sent{client: c, port: -1}
		frames = append(frames, Frame{Data: framegen.TCP(l2, netip.AddrPortFrom(c, uint16(30000+i)), netip.AddrPortFrom(vip4, 80), "S", 1, 0, []byte(marker))})
	}
	write(t, pa, frames...)

	deadline := time.Now().Add(10 * time.Second)
	got := 0
	fs := make([]Frame, 64)
	for got < len(frames) && time.Now().Before(deadline) {
		idle := true
		for q, p := range xp {
			n, err := p.TryReadBatch(fs)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs[:n] {
				for m, s := range want {
					if hasMarker(m)(f) {
						s.seen++
						s.port = q
						got++
						idle = false
					}
				}
			}
		}
		if idle {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for m, s := range want {
		switch wantPort := h.Index(s.client, queues); {
		case s.seen != 1:
			t.Errorf("%s from %v read %d times", m, s.client, s.seen)
		case s.port != wantPort:
			t.Errorf("%s from %v read by port %d, want %d (its client's worker)", m, s.client, s.port, wantPort)
		}
	}
	for q, p := range xp {
		t.Logf("port %d: %d frames through AF_XDP", q, p.rxXDP.Load())
		if p.rxXDP.Load() == 0 {
			t.Errorf("port %d read no frame through AF_XDP on queue %d", q, q)
		}
	}

	// One map of trusted clients for the program and the AF_PACKET
	// group's lane: a client trusted through any port is trusted on
	// every queue and in the group.
	lane := xp[1].ap.(*splitPort).lane
	if lane == nil || xp[0].objs.trusted != lane.trustedClients || !xp[0].objs.sharedTrusted {
		t.Fatalf("the program's trusted map is not the group lane's (lane %v)", lane)
	}
	c := netip.MustParseAddr("198.18.77.7")
	if err := ports[1].(ClientTruster).TrustClients([]netip.Addr{c}); err != nil {
		t.Fatal(err)
	}
	if !lane.trusted(c) {
		t.Error("a client trusted through a queue port is not in the group's map")
	}

	if err := ports[0].Close(); err != nil {
		t.Fatal(err)
	}
	if !xdpAttached(t, nsD, "d0") {
		t.Fatal("closing one port detached the program the other still uses")
	}
	if err := ports[1].Close(); err != nil {
		t.Fatal(err)
	}
	if xdpAttached(t, nsD, "d0") {
		t.Fatal("the program stayed attached after the last port closed")
	}
}

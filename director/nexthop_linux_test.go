package director

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// nextHops is a nextHopSetter that records what it is given.
type nextHops struct {
	mu     sync.Mutex
	v4, v6 netip.Addr
	set    int
}

func (n *nextHops) NextHops() (netip.Addr, netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.v4, n.v6
}

func (n *nextHops) SetNextHops(v4, v6 netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.set++
	if v4.IsValid() && !n.v4.IsValid() {
		n.v4 = v4
	}
	if v6.IsValid() && !n.v6.IsValid() {
		n.v6 = v6
	}
}

// TestWatchNextHops: the IPv6 address is tentative for the first looks
// (ifacePrefixes leaves it out); once it is not, it becomes the IPv6
// next hop, the one in the peer's prefix first, and the watch ends.
func TestWatchNextHops(t *testing.T) {
	an := &nextHops{v4: netip.MustParseAddr("198.18.0.2")}
	var mu sync.Mutex
	looks := 0
	prefixes := func(v4 bool) []netip.Prefix {
		if v4 {
			t.Error("looked for an IPv4 next hop the announcer has")
		}
		mu.Lock()
		defer mu.Unlock()
		if looks++; looks < 3 {
			return []netip.Prefix{netip.MustParsePrefix("fe80::1/64")} // link-local only: not a next hop
		}
		return []netip.Prefix{netip.MustParsePrefix("2001:2:9::2/64"), netip.MustParsePrefix("2001:2::2/64")}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchNextHops(context.Background(), an, prefixes, []netip.Addr{netip.MustParseAddr("2001:2::1")}, time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end once both families had a next hop")
	}
	if _, v6 := an.NextHops(); v6 != netip.MustParseAddr("2001:2::2") || an.set != 1 {
		t.Errorf("IPv6 next hop %v after %d sets, want 2001:2::2 (the peer's prefix) once", v6, an.set)
	}

	// Cancelled while nothing is found: it ends.
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		watchNextHops(ctx, &nextHops{}, func(bool) []netip.Prefix { return nil }, nil, time.Millisecond)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end with its context")
	}
}

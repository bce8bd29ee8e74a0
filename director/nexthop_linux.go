package director

import (
	"context"
	"net/netip"
	"time"
)

// nextHopEvery is how often watchNextHops looks at the interface's
// addresses while a family has no next hop.
const nextHopEvery = time.Second

// nextHopSetter is what watchNextHops feeds (bgp.Announcer).
type nextHopSetter interface {
	NextHops() (v4, v6 netip.Addr)
	SetNextHops(v4, v6 netip.Addr)
}

// watchNextHops gives the announcer the next hop of a family that had
// none at start, once the interface has one (prefixes: its addresses fit
// to be one, ifacePrefixes), and ends when both families have one or ctx
// ends. drlb started at boot can find its IPv6 address still tentative
// (duplicate address detection takes a second or more), or its IPv4
// address not yet given by DHCP: without this, that family's VIPs went
// unannounced until a restart.
func watchNextHops(ctx context.Context, an nextHopSetter, prefixes func(v4 bool) []netip.Prefix, peers []netip.Addr, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		v4, v6 := an.NextHops()
		if v4.IsValid() && v6.IsValid() {
			return
		}
		var n4, n6 netip.Addr
		if !v4.IsValid() {
			n4 = nextHopFor(prefixes(true), peers)
		}
		if !v6.IsValid() {
			n6 = nextHopFor(prefixes(false), peers)
		}
		if n4.IsValid() || n6.IsValid() {
			an.SetNextHops(n4, n6)
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

package director

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/arp"
)

// drainNeighbors applies what the resolver queued, as the neighbor
// goroutine Serve starts would (pipeDirector does not serve).
func drainNeighbors(d *Director) {
	for _, e := range d.neighbors.take(nil) {
		d.applyNeighbor(e)
	}
}

// macIn returns the MAC the forwarder has for real server ri of service
// svc (nil: none).
func macIn(d *Director, svc, ri int) net.HardwareAddr {
	return d.Forwarder().Stats()[svc].RealServers[ri].MAC
}

// TestNeighborEventAfterStaticMAC: a reload that gives a real server a
// static MAC wins over resolver events raised before it and applied
// after it. The operator pins the MAC because the server does not answer
// ARP (a "failed" is on its way) or because another station answers for
// it (a "changed" to that station's MAC is on its way); a static entry
// never raises another event, so the stale one stood for good: the
// server out of scheduling, or its traffic sent to the other station,
// with the config saying otherwise.
func TestNeighborEventAfterStaticMAC(t *testing.T) {
	rs := realAt(1, 1, nil)
	attacker := net.HardwareAddr{2, 0, 0, 0, 0, 0x66}
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		raise func(t *testing.T, d *Director) // leaves an event queued
	}{
		{"failed", func(t *testing.T, d *Director) {
			for i := range arp.DefaultMaxProbes + 1 { // unanswered requests
				if _, err := d.resolver.Tick(t0.Add(time.Duration(i) * arp.DefaultRetryInterval)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"changed", func(t *testing.T, d *Director) {
			dirMAC := d.port.HardwareAddr()
			if _, err := d.resolver.Tick(t0); err != nil {
				t.Fatal(err)
			}
			d.resolver.HandleAt(arpReply(rs2MAC, rs.Address, dirMAC, netip.IPv4Unspecified()), t0)
			drainNeighbors(d) // resolved, applied
			// The refresh is answered by another station first.
			refresh := t0.Add(arp.DefaultLifetime * 2 / 3)
			if _, err := d.resolver.Tick(refresh); err != nil {
				t.Fatal(err)
			}
			d.resolver.HandleAt(arpReply(attacker, rs.Address, dirMAC, netip.IPv4Unspecified()), refresh)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pipeDirector(t, configOf(service(vip, 80, "rr", rs)))
			tc.raise(t, d)
			var kinds []arp.EventKind
			for _, e := range d.neighbors.pending {
				kinds = append(kinds, e.Kind)
			}
			if len(kinds) == 0 {
				t.Fatal("no event queued")
			}
			pinned := rs
			pinned.MAC = rs1MAC
			if err := d.Apply(configOf(service(vip, 80, "rr", pinned))); err != nil {
				t.Fatal(err)
			}
			if got := macIn(d, 0, 0); !bytes.Equal(got, rs1MAC) {
				t.Fatalf("after the reload the MAC is %v, want the static %v", got, rs1MAC)
			}
			drainNeighbors(d) // the events queued before the reload
			if got := macIn(d, 0, 0); !bytes.Equal(got, rs1MAC) {
				t.Fatalf("queued events %v applied after the reload left the MAC %v, want the static %v", kinds, got, rs1MAC)
			}
			if m, ok := d.resolver.Lookup(rs.Address); !ok || !bytes.Equal(m[:], rs1MAC) {
				t.Fatalf("resolver has %v %v, want the static MAC", m, ok)
			}
		})
	}
}

// TestStaticMACSharedByServices: an address that is a real server of two
// services, with a static MAC in one of them only, has that MAC in both:
// the neighbor table holds one entry per address (config: "one address,
// one MAC"), and a static entry raises no event. The other service's
// server was never usable when both came at once (at start, or in one
// reload), and kept forwarding to the MAC it had resolved when the static
// one came later, which the resolver then never checked again.
func TestStaticMACSharedByServices(t *testing.T) {
	dynamic, static := realAt(1, 1, nil), realAt(1, 1, rs1MAC)
	both := configOf(service(vip, 80, "rr", static), service(vip, 443, "rr", dynamic))

	t.Run("start", func(t *testing.T) {
		d := pipeDirector(t, both)
		for svc := range 2 {
			if got := macIn(d, svc, 0); !bytes.Equal(got, rs1MAC) {
				t.Errorf("service %d: MAC %v, want the static %v", svc, got, rs1MAC)
			}
		}
	})
	t.Run("one reload", func(t *testing.T) {
		d := pipeDirector(t, configOf(service(vip, 80, "rr", realAt(2, 1, rs2MAC))))
		if err := d.Apply(both); err != nil {
			t.Fatal(err)
		}
		for svc := range 2 {
			if got := macIn(d, svc, 0); !bytes.Equal(got, rs1MAC) {
				t.Errorf("service %d: MAC %v, want the static %v", svc, got, rs1MAC)
			}
		}
	})
	t.Run("static later", func(t *testing.T) {
		d := pipeDirector(t, configOf(service(vip, 443, "rr", dynamic)))
		if err := d.fw.SetMAC(dynamic.Address, rs2MAC); err != nil { // resolved
			t.Fatal(err)
		}
		if err := d.Apply(configOf(service(vip, 443, "rr", dynamic), service(vip, 80, "rr", static))); err != nil {
			t.Fatal(err)
		}
		for svc := range 2 {
			if got := macIn(d, svc, 0); !bytes.Equal(got, rs1MAC) {
				t.Errorf("service %d: MAC %v, want the static %v", svc, got, rs1MAC)
			}
		}
	})
}

// TestNeighborEventForRemovedServer: a "resolved" raised for a real server
// before a reload removed it, applied after another reload added it back,
// does not make it usable with that MAC: the resolver asks for it afresh,
// and the forwarder follows what the resolver has now. (Nor is an event
// for an address no service has any more logged as an error.)
func TestNeighborEventForRemovedServer(t *testing.T) {
	rs := realAt(1, 1, nil)
	other := service(vip, 80, "rr", realAt(2, 1, rs2MAC))
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	d := pipeDirector(t, configOf(service(vip, 80, "rr", rs)))
	if _, err := d.resolver.Tick(t0); err != nil {
		t.Fatal(err)
	}
	d.resolver.HandleAt(arpReply(rs1MAC, rs.Address, d.port.HardwareAddr(), netip.IPv4Unspecified()), t0)
	if err := d.Apply(configOf(other)); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(configOf(service(vip, 80, "rr", rs))); err != nil {
		t.Fatal(err)
	}
	drainNeighbors(d)
	if got := macIn(d, 0, 0); got != nil {
		t.Fatalf("re-added server has MAC %v from an event before its removal; the resolver has not answered yet", got)
	}
}

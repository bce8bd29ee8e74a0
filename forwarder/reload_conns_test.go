package forwarder

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

// removedServiceConn returns a forwarder holding one established
// connection to :80, whose service the last reload (at t0+2s) removed
// while :443 stayed, and that connection's client.
func removedServiceConn(t *testing.T) (*Forwarder, netip.AddrPort) {
	t.Helper()
	cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)), svc(config.TCP, 443, "rr", rsAt(1, 1)))
	f := newForwarder(t, cfg, Options{})
	c := client(0, 40000)
	send(t, f, cfg, syn(c), t0)
	send(t, f, cfg, ack(c), t0+second)
	applyNow(t, f, cfgOf(svc(config.TCP, 443, "rr", rsAt(1, 1))), t0+2*second)
	return f, c
}

// TestRemovedServiceConnsEnd: a connection of a service a reload removed
// ends on its next packet as a removed server's does (server-gone: the
// client gets a reset), and its entry goes; it used to be dropped as
// no-service and left counted for the whole timeout.
func TestRemovedServiceConnsEnd(t *testing.T) {
	f, c := removedServiceConn(t)
	if res := f.Process(ack(c), &Meta{Time: t0 + 3*second}); res.Reason != ReasonServerGone {
		t.Fatalf("%v/%v, want server-gone", res.Verdict, res.Reason)
	}
	if res := f.Process(ack(c), &Meta{Time: t0 + 4*second}); res.Reason != ReasonNoService {
		t.Fatalf("the next packet: %v/%v, want no-service (the entry is gone)", res.Verdict, res.Reason)
	}
}

// TestReaddedServerKeepsConnections: a real server (or a whole service)
// removed by one reload and back in the next, before its connections
// expired, keeps them, as IPVS takes a destination back from its trash;
// they used to end as server-gone.
func TestReaddedServerKeepsConnections(t *testing.T) {
	for _, whole := range []bool{false, true} {
		name := map[bool]string{false: "server", true: "service"}[whole]
		t.Run(name, func(t *testing.T) {
			cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)), svc(config.TCP, 443, "rr", rsAt(3, 1)))
			f := newForwarder(t, cfg, Options{})
			c := client(0, 40000)
			res := send(t, f, cfg, syn(c), t0)
			send(t, f, cfg, ack(c), t0+second)
			addr := to(cfg, res)
			var without *config.Config
			if whole {
				without = cfgOf(svc(config.TCP, 443, "rr", rsAt(3, 1)))
			} else {
				var keep []config.RealServer
				for _, r := range cfg.Services[0].RealServers {
					if r.Address != addr {
						keep = append(keep, r)
					}
				}
				without = cfgOf(svc(config.TCP, 80, "rr", keep...), svc(config.TCP, 443, "rr", rsAt(3, 1)))
			}
			applyNow(t, f, without, t0+2*second)
			applyNow(t, f, cfg, t0+3*second)
			got := send(t, f, cfg, ack(c), t0+4*second)
			if got.Verdict != Forward || got.Reason != ReasonExisting || to(cfg, got) != addr {
				t.Fatalf("%v/%v to %v, want the open connection forwarded to %v", got.Verdict, got.Reason, to(cfg, got), addr)
			}
			st := statsOf(f, 0, addr)
			if st.Active != 1 {
				t.Fatalf("the server back counts %d active connections, want 1", st.Active)
			}
		})
	}
}

// TestSYNOnQuiescedServer: a new SYN on the ports of a connection still
// ESTABLISHED on a server quiesced since (weight 0) is scheduled afresh
// (IPVS with expire_nodest_conn): the old connection may have ended by a
// reset DR never sees.
func TestSYNOnQuiescedServer(t *testing.T) {
	cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, cfg, Options{})
	c := client(0, 40000)
	res := send(t, f, cfg, syn(c), t0)
	send(t, f, cfg, ack(c), t0+second)
	d := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	d.Services[0].RealServers[res.Real].Weight = 0
	d.Services[0].DrainTimeout = time.Hour
	applyNow(t, f, d, t0+2*second)
	if got := send(t, f, d, ack(c), t0+3*second); got.Reason != ReasonExisting || got.Real != res.Real {
		t.Fatalf("the open connection: %v/%v to %d, want it to go on on the drained server %d", got.Verdict, got.Reason, got.Real, res.Real)
	}
	if got := send(t, f, d, syn(c), t0+4*second); got.Real == res.Real || got.Reason != ReasonReused {
		t.Fatalf("a new SYN on its ports: %v/%v to %d, want it scheduled afresh (reused), away from %d", got.Verdict, got.Reason, got.Real, res.Real)
	}
}

// TestUnresolvedServerKeepsConnections: a real server whose MAC is lost
// (ARP unanswered) takes no new connections, and its open ones are
// dropped (no-mac) but kept, and go on once it answers again; they used
// to end with a reset at the first hiccup.
func TestUnresolvedServerKeepsConnections(t *testing.T) {
	cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, cfg, Options{})
	c := client(0, 40000)
	res := send(t, f, cfg, syn(c), t0)
	send(t, f, cfg, ack(c), t0+second)
	addr := to(cfg, res)
	mac := cfg.Services[0].RealServers[res.Real].MAC
	if err := f.SetMAC(addr, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.Process(ack(c), &Meta{Time: t0 + 2*second}); got.Verdict != Drop || got.Reason != ReasonNoMAC {
		t.Fatalf("while unresolved: %v/%v, want drop/no-mac", got.Verdict, got.Reason)
	}
	for i := 1; i < 5; i++ {
		if got := send(t, f, cfg, syn(client(i, 40000)), t0+2*second); to(cfg, got) == addr {
			t.Fatalf("a new connection went to the unresolved %v", addr)
		}
	}
	if err := f.SetMAC(addr, mac); err != nil {
		t.Fatal(err)
	}
	if got := send(t, f, cfg, ack(c), t0+3*second); got.Reason != ReasonExisting || to(cfg, got) != addr {
		t.Fatalf("once resolved again: %v/%v to %v, want the connection going on to %v", got.Verdict, got.Reason, to(cfg, got), addr)
	}
}

// TestReaddedServerTakesNewMAC: a server back after a removal takes the
// MAC its address has now (resolved for another service meanwhile), not
// the one it had when removed: SetMAC tells configured servers only.
func TestReaddedServerTakesNewMAC(t *testing.T) {
	x, y := rsAt(1, 1), rsAt(2, 1)
	x.MAC = nil // resolved
	full := cfgOf(svc(config.TCP, 80, "rr", x, y), svc(config.TCP, 443, "rr", x))
	f := newForwarder(t, full, Options{})
	macA, macB := net.HardwareAddr{2, 0, 0, 0, 0, 0xa}, net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
	if err := f.SetMAC(x.Address, macA); err != nil {
		t.Fatal(err)
	}
	c := client(0, 40000)
	for i := 0; ; i++ {
		c = client(i, 40000)
		if res := f.Process(syn(c), &Meta{Time: t0}); res.Verdict == Forward && res.Real == 0 { // x
			break
		}
	}
	f.Process(ack(c), &Meta{Time: t0 + second})
	applyNow(t, f, cfgOf(svc(config.TCP, 80, "rr", y), svc(config.TCP, 443, "rr", x)), t0+2*second)
	if err := f.SetMAC(x.Address, macB); err != nil {
		t.Fatal(err)
	}
	applyNow(t, f, full, t0+3*second)
	if got := statsOf(f, 0, x.Address).MAC; got.String() != macB.String() {
		t.Fatalf("the server back has MAC %v, want its address's current %v", got, macB)
	}
}

// TestRemovedServiceSYN: a bare SYN on the ports of a removed service's
// connection finds no service (the entry goes with it): no reset for
// what opens a connection.
func TestRemovedServiceSYN(t *testing.T) {
	f, c := removedServiceConn(t)
	if res := f.Process(syn(c), &Meta{Time: t0 + 3*second}); res.Reason != ReasonNoService {
		t.Fatalf("%v/%v, want no-service", res.Verdict, res.Reason)
	}
	if n := f.TableLen(); n != 0 {
		t.Fatalf("%d entries left, want the removed service's gone", n)
	}
}

// TestReaddedServerDrains: a server back after a removal with weight 0
// drains from then: its open connection goes on until the drain timeout,
// then ends as a removed server's.
func TestReaddedServerDrains(t *testing.T) {
	cfg := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, cfg, Options{})
	c := client(0, 40000)
	res := send(t, f, cfg, syn(c), t0)
	send(t, f, cfg, ack(c), t0+second)
	addr := to(cfg, res)
	var keep []config.RealServer
	for _, r := range cfg.Services[0].RealServers {
		if r.Address != addr {
			keep = append(keep, r)
		}
	}
	applyNow(t, f, cfgOf(svc(config.TCP, 80, "rr", keep...)), t0+2*second)
	back := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	back.Services[0].RealServers[res.Real].Weight = 0
	back.Services[0].DrainTimeout = 10 * time.Second
	applyNow(t, f, back, t0+3*second)
	if got := send(t, f, back, ack(c), t0+4*second); got.Reason != ReasonExisting || to(back, got) != addr {
		t.Fatalf("draining: %v/%v, want the connection going on", got.Verdict, got.Reason)
	}
	if got := f.Process(ack(c), &Meta{Time: t0 + 14*second}); got.Reason != ReasonServerGone {
		t.Fatalf("after the drain timeout: %v/%v, want server-gone", got.Verdict, got.Reason)
	}
}

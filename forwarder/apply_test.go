package forwarder

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/framegen"
)

// rsAt is real server n (1..): 198.18.0.(10+n), MAC 02:00:00:00:00:(0x10+n),
// so that a frame's destination MAC names the server it went to.
func rsAt(n, weight int) config.RealServer {
	return config.RealServer{Address: netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + n)}), Weight: weight,
		MAC: net.HardwareAddr{0x02, 0, 0, 0, 0, byte(0x10 + n)}}
}

// svc is a valid service on VIP:port.
func svc(proto config.Protocol, port uint16, sched string, reals ...config.RealServer) config.Service {
	return config.Service{VIP: vip, Port: port, Protocol: proto, Scheduler: sched, PersistenceBits: 32, RealServers: reals}
}

func cfgOf(services ...config.Service) *config.Config {
	return &config.Config{Timeouts: config.DefaultTimeouts, MaxConns: 1024, Services: services}
}

// applyNow applies cfg with a commit that checks it is called once.
func applyNow(t *testing.T, f *Forwarder, cfg *config.Config, now int64) []Change {
	t.Helper()
	calls := 0
	changes, err := f.Apply(cfg, now, func(swap func()) { calls++; swap() })
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if calls != 1 {
		t.Fatalf("commit called %d times, want 1", calls)
	}
	checkCounts(t, f)
	return changes
}

// send runs a copy of frame through f and checks, for a forwarded frame,
// that it went to the MAC of the real server the result names in cfg.
func send(t *testing.T, f *Forwarder, cfg *config.Config, frame []byte, now int64) Result {
	t.Helper()
	out := append([]byte(nil), frame...)
	res := f.Process(out, &Meta{Time: now})
	if res.Verdict == Forward {
		want := cfg.Services[res.Service].RealServers[res.Real].MAC
		if !bytes.Equal(out[0:6], want) || !bytes.Equal(out[12:], frame[12:]) {
			t.Fatalf("forwarded to %x for %v, want %x (service %d real %d) with the packet unchanged",
				out[0:6], res, want, res.Service, res.Real)
		}
	}
	checkCounts(t, f)
	return res
}

// to returns the address of the real server a result names in cfg.
func to(cfg *config.Config, res Result) netip.Addr {
	if res.Service < 0 || res.Real < 0 {
		return netip.Addr{}
	}
	return cfg.Services[res.Service].RealServers[res.Real].Address
}

// checkCounts recounts the connection table and requires every real
// server's active, inactive and persistent counts, removed servers'
// included, to match it exactly.
func checkCounts(t *testing.T, f *Forwarder) {
	t.Helper()
	type tally struct{ active, inactive, persistent int32 }
	got := map[*realServer]*tally{}
	st := f.cur.Load()
	for _, s := range st.slots {
		if s == nil {
			continue
		}
		for _, ref := range s.bySlot {
			if ref.r != nil {
				got[ref.r] = &tally{ref.r.active.Load(), ref.r.inactive.Load(), ref.r.persistent.Load()}
			}
		}
	}
	want := map[*realServer]*tally{}
	for _, w := range f.Workers() {
		w.table.Range(func(e *conntable.Entry) bool {
			_, r := st.owner(e.Service, e.Real)
			if r == nil {
				t.Fatalf("entry %+v names service slot %d real slot %d: nothing there", e.Key, e.Service, e.Real)
			}
			if want[r] == nil {
				want[r] = &tally{}
			}
			switch e.State {
			case stateEstablished, stateSynRecv:
				want[r].active++
			case stateTemplate:
				want[r].persistent++
			default:
				want[r].inactive++
			}
			return true
		})
	}
	for r, g := range got {
		w := want[r]
		if w == nil {
			w = &tally{}
		}
		if *g != *w {
			t.Fatalf("real server %s counts %+v, the table holds %+v", r.addr, *g, *w)
		}
	}
	for r := range want {
		if got[r] == nil {
			t.Fatalf("entries name real server %s, which no slot holds", r.addr)
		}
	}
}

func statsOf(f *Forwarder, svc int, addr netip.Addr) RealServerStats {
	for _, r := range f.Stats()[svc].RealServers {
		if r.Addr == addr {
			return r
		}
	}
	return RealServerStats{}
}

// TestApplyIndexShift: servers and a service added before the ones that
// stay, one removed, scheduler and weights changed. Open connections to
// the servers that stay keep going to them, under their new indexes; the
// removed server's connection ends on its next packet; counters carry over.
func TestApplyIndexShift(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	conns := map[netip.Addr]netip.AddrPort{} // server -> a client connected to it
	for i := 0; len(conns) < 2; i++ {
		c := client(i, 40000)
		res := send(t, f, a, syn(c), t0)
		expect(t, res, Forward, ReasonNew)
		send(t, f, a, ack(c), t0)
		conns[to(a, res)] = c
	}
	before := statsOf(f, 0, rsAt(2, 1).Address)

	b := cfgOf(
		svc(config.UDP, 53, "rr", rsAt(3, 1)),
		svc(config.TCP, 80, "wrr", rsAt(3, 2), rsAt(4, 1), rsAt(2, 5)),
	)
	changes := applyNow(t, f, b, t0+second)
	for _, want := range []string{
		"service added udp 198.18.0.100:53: scheduler rr",
		"service changed tcp 198.18.0.100:80: scheduler rr -> wrr",
		"real server added tcp 198.18.0.100:80 -> 198.18.0.13 weight 2",
		"real server removed tcp 198.18.0.100:80 -> 198.18.0.11",
		"weight changed tcp 198.18.0.100:80 -> 198.18.0.12 1 -> 5",
	} {
		found := false
		for _, c := range changes {
			found = found || c.String() == want
		}
		if !found {
			t.Errorf("changes lack %q: %v", want, changes)
		}
	}

	kept, gone := rsAt(2, 0).Address, rsAt(1, 0).Address
	for i := 0; i < 3; i++ {
		res := send(t, f, b, ack(conns[kept]), t0+2*second)
		expect(t, res, Forward, ReasonExisting)
		if res.Service != 1 || res.Real != 2 || to(b, res) != kept {
			t.Fatalf("kept connection: %+v, want service 1 real 2 (%s)", res, kept)
		}
	}
	after := statsOf(f, 1, kept)
	if after.Active != 1 || after.Connections != before.Connections || after.Packets != before.Packets+3 || after.Weight != 5 {
		t.Fatalf("kept server's stats %+v, want 1 active and the counters of before (%+v) plus 3 packets", after, before)
	}
	res := send(t, f, b, ack(conns[gone]), t0+2*second)
	expect(t, res, Drop, ReasonServerGone)
	if res.Service != 1 || res.Real != -1 {
		t.Fatalf("removed server's packet: %+v, want service 1, real -1 (no longer configured)", res)
	}
	// Its entry is gone: a retransmission is a packet without a connection.
	expect(t, send(t, f, b, ack(conns[gone]), t0+2*second), Drop, ReasonNoConn)
	// New connections follow wrr 2:1:5 over the new servers.
	got := map[netip.Addr]int{}
	for i := 0; i < 80; i++ {
		res := send(t, f, b, syn(client(i, 50000)), t0+3*second)
		expect(t, res, Forward, ReasonNew)
		got[to(b, res)]++
	}
	if got[rsAt(3, 0).Address] != 20 || got[rsAt(4, 0).Address] != 10 || got[kept] != 50 || got[gone] != 0 {
		t.Fatalf("new connections after Apply: %v, want wrr 2:1:5 = 20/10/50 and none to %s", got, gone)
	}
}

// TestApplyRemovedService: a removed service's connections end on their
// next packet, its VIP stops being ours when no service has it, and its
// slot is reused once its last entry is gone.
func TestApplyRemovedService(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)), svc(config.TCP, 8080, "rr", rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	c := client(0, 1000)
	alt := framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 8080), "S", 1, 0, nil)
	expect(t, send(t, f, a, alt, t0), Forward, ReasonNew)
	slot := f.cur.Load().services[1].slot

	b := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)))
	applyNow(t, f, b, t0)
	if f.TableLen() != 1 {
		t.Fatalf("%d entries, want the removed service's one until its next packet or expiry", f.TableLen())
	}
	// Its next packet ends it (expire_nodest_conn), as a removed server's.
	altAck := framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 8080), "A", 2, 1, nil)
	expect(t, send(t, f, b, altAck, t0), Drop, ReasonServerGone)
	if f.TableLen() != 0 {
		t.Fatalf("%d entries after the removed service's connection ended, want 0", f.TableLen())
	}
	// The next Apply reuses the slot for a new service.
	c2 := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)), svc(config.TCP, 9090, "rr", rsAt(3, 1)))
	applyNow(t, f, c2, t0+100*second)
	if got := f.cur.Load().services[1].slot; got != slot || len(f.cur.Load().slots) != 2 {
		t.Fatalf("new service got slot %d of %d, want the freed slot %d", got, len(f.cur.Load().slots), slot)
	}
}

// TestApplyDrain: weight 0 drains (the open connection continues, new ones
// go elsewhere, reused ports are scheduled afresh), and the drain timeout
// ends what is left.
func TestApplyDrain(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	var open, closing netip.AddrPort
	for i := 0; !open.IsValid() || !closing.IsValid(); i++ {
		c := client(i, 40000)
		res := send(t, f, a, syn(c), t0)
		send(t, f, a, ack(c), t0)
		if to(a, res) != rsAt(1, 0).Address {
			continue
		}
		if !open.IsValid() {
			open = c
		} else {
			closing = c
		}
	}
	send(t, f, a, fin(closing), t0)

	b := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 0), rsAt(2, 1)))
	b.Services[0].DrainTimeout = 10 * time.Second
	applyNow(t, f, b, t0)
	drained := rsAt(1, 0).Address
	for i := 0; i < 4; i++ {
		if res := send(t, f, b, ack(open), t0+int64(i)*second); res.Reason != ReasonExisting || to(b, res) != drained {
			t.Fatalf("draining connection: %+v", res)
		}
		if res := send(t, f, b, syn(client(100+i, 1)), t0); to(b, res) == drained {
			t.Fatal("a new connection went to the drained server")
		}
	}
	// The closed connection's ports come back: never to the drained server.
	res := send(t, f, b, syn(closing), t0+second)
	expect(t, res, Forward, ReasonReused)
	if to(b, res) == drained {
		t.Fatal("reused ports stuck to the drained server")
	}
	if st := statsOf(f, 0, drained); st.Active != 1 || st.Weight != 0 {
		t.Fatalf("drained server %+v, want weight 0 and the open connection counted", st)
	}
	// Applying again (nothing changed for it) keeps the deadline where it was.
	applyNow(t, f, b, t0+5*second)
	expect(t, send(t, f, b, ack(open), t0+9*second), Forward, ReasonExisting)
	expect(t, send(t, f, b, ack(open), t0+10*second), Drop, ReasonServerGone)
	if st := statsOf(f, 0, drained); st.Active != 0 {
		t.Fatalf("after the drain timeout: %+v, want no connection left", st)
	}

	// Weight back up cancels the deadline; draining again restarts it.
	c := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	c.Services[0].DrainTimeout = 10 * time.Second
	applyNow(t, f, c, t0+20*second)
	var again netip.AddrPort
	for i := 0; !again.IsValid(); i++ {
		cl := client(i, 60000)
		res := send(t, f, c, syn(cl), t0+20*second)
		send(t, f, c, ack(cl), t0+20*second)
		if to(c, res) == drained {
			again = cl
		}
	}
	expect(t, send(t, f, c, ack(again), t0+40*second), Forward, ReasonExisting)
	applyNow(t, f, b, t0+40*second)
	expect(t, send(t, f, b, ack(again), t0+49*second), Forward, ReasonExisting)
	expect(t, send(t, f, b, ack(again), t0+50*second), Drop, ReasonServerGone)
}

// TestApplyRefused: a configuration that does not validate, or that needs
// a restart, changes nothing at all.
func TestApplyRefused(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	c := client(0, 1)
	send(t, f, a, syn(c), t0)
	send(t, f, a, ack(c), t0)
	before := f.Stats()
	st := f.cur.Load()

	bad := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(3, -1)))
	dup := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)), svc(config.TCP, 80, "wrr", rsAt(2, 1)))
	sched := cfgOf(svc(config.TCP, 80, "fastest", rsAt(1, 1)))
	bigger := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)))
	bigger.MaxConns = 2048
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		want error
	}{
		{"weight -1", bad, config.ErrInvalid},
		{"service twice", dup, config.ErrInvalid},
		{"unknown scheduler", sched, config.ErrInvalid},
		{"max_conns", bigger, ErrRestartNeeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Apply(tc.cfg, t0, func(func()) { t.Fatal("commit called for a refused config") })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply: %v, want %v", err, tc.want)
			}
			if f.cur.Load() != st || !reflect.DeepEqual(f.Stats(), before) {
				t.Fatal("a refused Apply changed the running configuration")
			}
		})
	}
	expect(t, send(t, f, a, ack(c), t0), Forward, ReasonExisting)
}

// TestApplyMaxConnsNamesLine: another max_conns is refused naming its line
// in the file being loaded, as the other reload errors place a value,
// and no line for a max_conns the file leaves to its default.
func TestApplyMaxConnsNamesLine(t *testing.T) {
	const body = "# reloaded\nmax_conns: 2048\nservices:\n  - {vip: 198.18.0.100, port: 80, realservers: [{address: 198.18.0.11}]}\n"
	f := newForwarder(t, cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1))), Options{})
	for _, tc := range []struct {
		name, file, want string
	}{
		{"set", body, "max_conns 1024 -> 2048 (line 2) (the connection table is sized at start)"},
		{"defaulted", strings.Replace(body, "max_conns: 2048\n", "", 1), "max_conns 1024 -> 1048576 (the connection table is sized at start)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("drlb.yaml", []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Apply(cfg, t0, func(func()) { t.Fatal("commit called for a refused config") })
			if !errors.Is(err, ErrRestartNeeded) || !strings.HasSuffix(err.Error(), ": "+tc.want) {
				t.Fatalf("Apply: %v, want ErrRestartNeeded saying %q", err, tc.want)
			}
		})
	}
}

// TestApplyPersistence: templates of servers that stay keep pinning their
// clients when servers are added in front of them.
func TestApplyPersistence(t *testing.T) {
	s := svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1))
	s.Persistence, s.PersistenceBits = 300*time.Second, 24
	a := cfgOf(s)
	f := newForwarder(t, a, Options{})
	pinned := to(a, send(t, f, a, syn(client(0, 1000)), t0))

	s.RealServers = []config.RealServer{rsAt(3, 1), rsAt(4, 1), rsAt(2, 1), rsAt(1, 1)}
	b := cfgOf(s)
	applyNow(t, f, b, t0+second)
	for i := 1; i < 8; i++ {
		res := send(t, f, b, syn(client(i, uint16(1000+i))), t0+2*second)
		expect(t, res, Forward, ReasonPersistent)
		if to(b, res) != pinned {
			t.Fatalf("connection %d went to %s, want the pinned %s", i, to(b, res), pinned)
		}
	}
	if st := statsOf(f, 0, pinned); st.Persistent != 1 || st.Active != 8 {
		t.Fatalf("pinned server %+v, want its template and 8 connections", st)
	}
}

// TestApplySameConfig: applying what runs changes nothing, keeps every
// scheduler (rr keeps its place) and reports no change.
func TestApplySameConfig(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1), rsAt(2, 1), rsAt(3, 1)), svc(config.TCP, 443, "mh", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	r0 := to(a, send(t, f, a, syn(client(0, 1)), t0))
	sched := f.cur.Load().services[1].sched.Load()
	if changes := applyNow(t, f, a.Clone(), t0); len(changes) != 0 {
		t.Fatalf("changes %v for the running config", changes)
	}
	if f.cur.Load().services[1].sched.Load() != sched {
		t.Fatal("mh table rebuilt for an unchanged service")
	}
	if r1 := to(a, send(t, f, a, syn(client(1, 1)), t0)); r1 == r0 {
		t.Fatalf("rr went back to %s after an Apply that changed nothing", r1)
	}
}

// TestApplyMACs: a server added at an address another service already
// resolved is usable at once; a static MAC changes with the config.
func TestApplyMACs(t *testing.T) {
	dyn := rsAt(1, 1)
	dyn.MAC = nil
	a := cfgOf(svc(config.TCP, 80, "rr", dyn))
	f := newForwarder(t, a, Options{})
	if err := f.SetMAC(dyn.Address, rsAt(1, 0).MAC); err != nil {
		t.Fatal(err)
	}
	b := cfgOf(svc(config.TCP, 80, "rr", dyn), svc(config.TCP, 8080, "rr", dyn))
	applyNow(t, f, b, t0)
	if st := f.Stats()[1].RealServers[0]; st.MAC.String() != rsAt(1, 0).MAC.String() {
		t.Fatalf("added server at a resolved address: MAC %v, want %v", st.MAC, rsAt(1, 0).MAC)
	}
	static := rsAt(1, 1)
	static.MAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	c := cfgOf(svc(config.TCP, 80, "rr", static))
	applyNow(t, f, c, t0)
	if st := f.Stats()[0].RealServers[0]; st.MAC.String() != static.MAC.String() {
		t.Fatalf("static MAC %v, want %v", st.MAC, static.MAC)
	}
}

// TestApplyHealth: a server's health state stays across an Apply that
// keeps its check; a check that probes differently (here its timeout) or
// a removed one brings it up, and verdicts of the old check no longer
// count.
func TestApplyHealth(t *testing.T) {
	check := &config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
	r1, r2 := rsAt(1, 1), rsAt(2, 1)
	r1.Check, r2.Check = check, check
	a := cfgOf(svc(config.TCP, 80, "rr", r1, r2))
	f := newForwarder(t, a, Options{})
	id := func(r config.RealServer) RealID {
		return RealID{Protocol: config.TCP, VIP: vip, Port: 80, Addr: r.Address}
	}
	if err := f.SetHealth(id(r1), *check, false); err != nil {
		t.Fatal(err)
	}
	if err := f.SetHealth(id(r2), *check, false); err != nil {
		t.Fatal(err)
	}
	// r2 keeps its check, r1's changes; r3 is added in front of both.
	b := a.Clone()
	b.Services[0].RealServers = []config.RealServer{rsAt(3, 1), b.Services[0].RealServers[0], b.Services[0].RealServers[1]}
	b.Services[0].RealServers[1].Check.Timeout = 2 * time.Second
	applyNow(t, f, b, t0)
	if st := statsOf(f, 0, r1.Address); !st.Available {
		t.Fatal("a server whose check changed is still down")
	}
	if st := statsOf(f, 0, r2.Address); st.Available {
		t.Fatal("a server whose check stayed came back up by itself")
	}
	if err := f.SetHealth(id(r1), *check, false); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("verdict of a replaced check: %v, want ErrUnknownServer", err)
	}
	if err := f.SetHealth(id(r2), *check, true); err != nil {
		t.Fatal(err)
	}
	if st := statsOf(f, 0, r2.Address); !st.Available {
		t.Fatal("r2 not up after its check passed")
	}
}

// TestApplyRetunedCheckKeepsVerdict: a reload that changes only a check's
// timers (interval, retries, retry delay) or inhibit keeps the verdict, as
// keepalived's migrate_checkers does (compare_conn_opts ignores
// delay_loop, retry and delay_before_retry): a server its check took down
// stays down, takes no new connection and does not count for BGP; with
// inhibit changed it stays down the other way (removed or weight 0); one
// seen working stays up and checked. Verdicts of the new check count,
// those of the old one no longer do.
func TestApplyRetunedCheckKeepsVerdict(t *testing.T) {
	base := config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
	for _, tc := range []struct {
		name      string
		inhibit   bool // before
		up        bool // the verdict before the reload
		change    func(*config.Check)
		available bool // after
		inhibited bool
	}{
		{"removed, interval changed", false, false, func(c *config.Check) { c.Interval = 2 * time.Second }, false, false},
		{"removed, retries and retry delay changed", false, false, func(c *config.Check) { c.Retries, c.RetryDelay = 5, 3*time.Second }, false, false},
		{"inhibited, interval changed", true, false, func(c *config.Check) { c.Interval = 2 * time.Second }, true, true},
		{"removed, inhibit set: weight 0 now", false, false, func(c *config.Check) { c.Inhibit = true }, true, true},
		{"inhibited, inhibit unset: removed now", true, false, func(c *config.Check) { c.Inhibit = false }, false, false},
		{"up, interval and inhibit changed", false, true, func(c *config.Check) { c.Interval, c.Inhibit = 2*time.Second, true }, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := base
			check.Inhibit = tc.inhibit
			r1, r2 := rsAt(1, 1), rsAt(2, 1)
			r1.Check = &check
			a := cfgOf(svc(config.TCP, 80, "rr", r1, r2))
			f := newForwarder(t, a, Options{})
			id := RealID{Protocol: config.TCP, VIP: vip, Port: 80, Addr: r1.Address}
			if err := f.SetHealth(id, check, tc.up); err != nil {
				t.Fatal(err)
			}
			b := a.Clone()
			retuned := b.Services[0].RealServers[0].Check
			tc.change(retuned)
			applyNow(t, f, b, t0)
			st := statsOf(f, 0, r1.Address)
			if st.Available != tc.available || st.Inhibited != tc.inhibited || st.Unchecked {
				t.Fatalf("after the reload: Available=%v Inhibited=%v Unchecked=%v, want %v %v false",
					st.Available, st.Inhibited, st.Unchecked, tc.available, tc.inhibited)
			}
			for i := range 8 {
				res := send(t, f, b, syn(client(i, 40000)), t0)
				if got := to(b, res); !tc.up && got != r2.Address {
					t.Fatalf("new connection %d went to %v, want %s: the dead server is still down", i, got, r2.Address)
				}
			}
			if err := f.SetHealth(id, check, true); !errors.Is(err, ErrUnknownServer) {
				t.Fatalf("verdict of the replaced check: %v, want ErrUnknownServer", err)
			}
			if err := f.SetHealth(id, *retuned, true); err != nil {
				t.Fatal(err)
			}
			if st := statsOf(f, 0, r1.Address); !st.Available || st.Inhibited {
				t.Fatalf("not up after the new check passed: %+v", st)
			}
		})
	}
}

// TestUnchecked: a server with a check is unchecked until its check's
// first verdict, never without a check; an Apply that keeps or changes
// its check keeps its verdict (tuning a check must not withdraw the BGP
// routes of servers seen working), and a server removed and added back
// starts unchecked again.
func TestUnchecked(t *testing.T) {
	check := &config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
	r1, r2, plain := rsAt(1, 1), rsAt(2, 1), rsAt(3, 1)
	r1.Check, r2.Check = check, check
	a := cfgOf(svc(config.TCP, 80, "rr", r1, r2, plain))
	f := newForwarder(t, a, Options{})
	unchecked := func() (out [3]bool) {
		for i, r := range []config.RealServer{r1, r2, plain} {
			out[i] = statsOf(f, 0, r.Address).Unchecked
		}
		return out
	}
	if got := unchecked(); got != [3]bool{true, true, false} {
		t.Fatalf("at start: unchecked %v, want the two with a check", got)
	}
	for _, r := range []config.RealServer{r1, r2} {
		if err := f.SetHealth(RealID{Protocol: config.TCP, VIP: vip, Port: 80, Addr: r.Address}, *check, true); err != nil {
			t.Fatal(err)
		}
	}
	if got := unchecked(); got != [3]bool{} {
		t.Fatalf("after a pass each: unchecked %v", got)
	}
	b := a.Clone()
	b.Services[0].RealServers[0].Check.Timeout = 2 * time.Second // r1's check changes, r2's stays
	applyNow(t, f, b, t0)
	if got := unchecked(); got != [3]bool{} {
		t.Fatalf("after a reload changing r1's check: unchecked %v, want none", got)
	}
	// r2 removed while a connection names it, then back.
	c := client(0, 40000)
	for i := 0; ; i++ {
		c = client(i, 40000)
		if res := send(t, f, b, syn(c), t0); to(b, res) == r2.Address {
			break
		}
	}
	without := b.Clone()
	without.Services[0].RealServers = slices.Delete(without.Services[0].RealServers, 1, 2)
	applyNow(t, f, without, t0)
	applyNow(t, f, b, t0)
	if got := unchecked(); got != [3]bool{false, true, false} {
		t.Fatalf("r2 back after a removal: unchecked %v, want r2 only", got)
	}
}

// TestZeroCounters: the totals the listings show (Counters.Since(Zeroed))
// go to zero; the totals themselves stay, as Prometheus counters must, and
// so does what the table holds.
func TestZeroCounters(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)))
	f := newForwarder(t, a, Options{})
	c := client(0, 1)
	send(t, f, a, syn(c), t0)
	send(t, f, a, ack(c), t0)
	before := f.Stats()[0]
	f.ZeroCounters()
	st := f.Stats()[0]
	if l := st.Counters.Since(st.Zeroed); l != (Counters{}) {
		t.Fatalf("service listed %+v after ZeroCounters, want zero", l)
	}
	if st.Counters != before.Counters || st.Counters.Packets != 2 {
		t.Fatalf("service totals %+v after ZeroCounters, want %+v kept", st.Counters, before.Counters)
	}
	r := st.RealServers[0]
	if l := r.Counters.Since(r.Zeroed); l != (Counters{}) || r.Active != 1 {
		t.Fatalf("real server %+v after ZeroCounters, want zero listed totals and 1 active", r)
	}
	if r.Counters != before.RealServers[0].Counters {
		t.Fatalf("real server totals %+v after ZeroCounters, want %+v kept", r.Counters, before.RealServers[0].Counters)
	}
	if f.Count(ReasonNew) != 1 {
		t.Fatal("ZeroCounters zeroed the frame counters")
	}
}

// TestZeroService: ipvsadm -Z -t VIP:PORT zeroes that service's listed
// totals and its servers', not another's; a service not configured is
// false.
func TestZeroService(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)), svc(config.TCP, 443, "rr", rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	for _, port := range []uint16{80, 443} {
		c, v := client(int(port), 1), netip.AddrPortFrom(vip, port)
		send(t, f, a, framegen.TCP(toDir, c, v, "S", 1, 0, nil), t0)
		send(t, f, a, framegen.TCP(toDir, c, v, "A", 2, 1, []byte("x")), t0)
	}
	if f.ZeroService(config.UDP, netip.AddrPortFrom(vip, 80)) || f.ZeroService(config.TCP, netip.AddrPortFrom(vip, 8080)) {
		t.Fatal("ZeroService found a service that is not configured")
	}
	if !f.ZeroService(config.TCP, netip.AddrPortFrom(vip, 443)) {
		t.Fatal("ZeroService did not find TCP VIP:443")
	}
	for _, st := range f.Stats() {
		zeroed := st.Port == 443
		r := st.RealServers[0]
		if got := st.Counters.Since(st.Zeroed).Packets == 0 && r.Counters.Since(r.Zeroed).Packets == 0; got != zeroed {
			t.Errorf("port %d: service %+v, server %+v: zeroed %v, want %v", st.Port, st, r, got, zeroed)
		}
		if st.Packets != 2 || r.Packets != 2 {
			t.Errorf("port %d: totals %d and %d packets, want 2 each, -Z or not", st.Port, st.Packets, r.Packets)
		}
		if r.Active != 1 {
			t.Errorf("port %d: active %d, want 1 (what the table holds stays)", st.Port, r.Active)
		}
	}
}

// TestZeroKeptOnReload: a reload that keeps a service and a real server
// keeps their -Z mark, as it keeps their totals; traffic after it adds to
// the listed totals and the totals alike.
func TestZeroKeptOnReload(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "rr", rsAt(1, 1)))
	f := newForwarder(t, a, Options{})
	connect := func(cfg *config.Config, i int) {
		c := client(i, 1)
		send(t, f, cfg, syn(c), t0)
		send(t, f, cfg, ack(c), t0)
	}
	connect(a, 0)
	connect(a, 1)
	at := f.Stats()[0].Counters // 2 connections, 4 packets
	f.ZeroCounters()
	b := cfgOf(svc(config.TCP, 80, "wlc", rsAt(1, 2), rsAt(2, 1)), svc(config.UDP, 53, "rr", rsAt(3, 1)))
	applyNow(t, f, b, t0)
	st := f.Stats()
	if len(st) != 2 || st[0].Port != 80 {
		t.Fatalf("services %+v", st)
	}
	if at.Connections != 2 || at.Packets != 4 || st[0].Zeroed != at || st[0].Counters != at {
		t.Fatalf("service after the reload: totals %+v, zeroed at %+v, want both %+v", st[0].Counters, st[0].Zeroed, at)
	}
	if r := st[0].RealServers[0]; r.Addr != rsAt(1, 1).Address || r.Zeroed != r.Counters || r.Connections != 2 {
		t.Fatalf("kept real server after the reload: %+v, want its mark kept at its 2 connections", r)
	}
	if r := st[0].RealServers[1]; r.Zeroed != (Counters{}) {
		t.Fatalf("added real server zeroed at %+v, want nothing", r.Zeroed)
	}
	for i := 2; i < 6; i++ {
		connect(b, i)
	}
	st = f.Stats()
	listed, total := st[0].Counters.Since(st[0].Zeroed), st[0].Counters
	if want := (Counters{Connections: 4, Packets: 8, Bytes: 2 * at.Bytes}); listed != want || total != (Counters{Connections: 6, Packets: 12, Bytes: 3 * at.Bytes}) {
		t.Fatalf("after 4 more connections: listed %+v, want %+v; totals %+v, want half as much again", listed, want, total)
	}
	var sum Counters
	for _, r := range st[0].RealServers {
		l := r.Counters.Since(r.Zeroed)
		sum.Connections += l.Connections
		sum.Packets += l.Packets
	}
	if sum.Connections != 4 || sum.Packets != 8 {
		t.Fatalf("real servers listed %+v in all, want the service's 4 connections and 8 packets", sum)
	}
}

// TestApplyNoAllocations: Process still allocates nothing after Applies.
func TestApplyNoAllocations(t *testing.T) {
	a := cfgOf(svc(config.TCP, 80, "mh", rsAt(1, 1), rsAt(2, 1)))
	f := newForwarder(t, a, Options{})
	c := client(0, 1)
	send(t, f, a, syn(c), t0)
	send(t, f, a, ack(c), t0)
	applyNow(t, f, cfgOf(svc(config.UDP, 53, "rr", rsAt(3, 1)), svc(config.TCP, 80, "wlc", rsAt(3, 1), rsAt(1, 2), rsAt(2, 1))), t0)
	frame, m := ack(c), &Meta{Time: t0}
	buf := make([]byte, len(frame))
	if n := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		f.Process(buf, m)
	}); n != 0 {
		t.Errorf("existing flow after Apply: %v allocs per frame", n)
	}
	port := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		port++
		copy(buf, frame)
		buf[14+20], buf[14+21] = byte(port>>8), byte(port)
		buf[14+20+13] = 0x02 // SYN
		f.Process(buf, m)
	}); n != 0 {
		t.Errorf("new flow after Apply: %v allocs per frame", n)
	}
}

// TestApplyConcurrent runs Applies, control methods and readers beside a
// data path that holds a lock per batch, as the director does: run it
// with -race. Every frame of a connection to a server that stays in every
// configuration must be forwarded, to that server.
func TestApplyConcurrent(t *testing.T) {
	stay := rsAt(1, 1)
	cfgs := []*config.Config{
		cfgOf(svc(config.TCP, 80, "rr", stay, rsAt(2, 1))),
		cfgOf(svc(config.UDP, 53, "rr", rsAt(2, 1)), svc(config.TCP, 80, "mh", rsAt(3, 1), rsAt(2, 0), stay)),
		cfgOf(svc(config.TCP, 80, "wrr", rsAt(4, 3), stay)),
	}
	f := newForwarder(t, cfgs[0], Options{})
	var mu sync.Mutex // the loop's lock
	var running sync.Mutex
	cur := cfgs[0]
	c := client(0, 7)
	for i := 0; ; i++ {
		res := send(t, f, cur, syn(client(i, 7)), t0)
		if to(cur, res) == stay.Address {
			c = client(i, 7)
			send(t, f, cur, ack(c), t0)
			break
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // Applies
		defer wg.Done()
		for i := 0; i < 60; i++ {
			cfg := cfgs[(i+1)%len(cfgs)]
			if _, err := f.Apply(cfg, t0, func(swap func()) {
				mu.Lock()
				swap()
				running.Lock()
				cur = cfg
				running.Unlock()
				mu.Unlock()
			}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { // health, neighbors
		defer wg.Done()
		for i := 0; i < 200; i++ {
			_ = f.SetMAC(rsAt(2, 0).Address, rsAt(2, 0).MAC)
			_ = f.SetAvailable(0, 0, true)
		}
	}()
	go func() { // ctl list
		defer wg.Done()
		for i := 0; i < 200; i++ {
			_ = f.Stats()
			f.ZeroCounters()
		}
	}()
	go func() {
		wg.Wait()
		close(done)
	}()
	frame := ack(c)
	buf := make([]byte, len(frame))
	for n := 0; ; n++ {
		select {
		case <-done:
			if n == 0 {
				t.Fatal("no frame sent")
			}
			return
		default:
		}
		mu.Lock()
		copy(buf, frame)
		res := f.Process(buf, &Meta{Time: t0 + second})
		running.Lock()
		addr := to(cur, res)
		running.Unlock()
		mu.Unlock()
		if res.Reason != ReasonExisting || addr != stay.Address {
			t.Fatalf("frame %d of the kept connection: %+v (%s), want forwarded to %s", n, res, addr, stay.Address)
		}
		if !bytes.Equal(buf[0:6], stay.MAC) {
			t.Fatalf("frame %d sent to %x, want %x", n, buf[0:6], stay.MAC)
		}
	}
}

func ExampleChange() {
	c := Change{Kind: WeightChanged, Service: "tcp 198.18.0.100:80", Real: netip.MustParseAddr("198.18.0.12"), From: 1, To: 0}
	fmt.Println(c)
	// Output: weight changed tcp 198.18.0.100:80 -> 198.18.0.12 1 -> 0
}

// TestApplyChangedCheckOfDeadServer: a dead server whose check probes
// differently after a reload (its timeout) is brought up, as keepalived
// does, but unchecked until the new check passes: BGP's usableByVIP must
// not count a pool it saw dead, and announce its VIP again, before a
// probe says otherwise.
func TestApplyChangedCheckOfDeadServer(t *testing.T) {
	check := config.Check{Type: "tcp", Interval: time.Second, Timeout: time.Second, RetryDelay: time.Second, Retries: 3}
	r1 := rsAt(1, 1)
	r1.Check = &check
	a := cfgOf(svc(config.TCP, 80, "rr", r1))
	f := newForwarder(t, a, Options{})
	id := RealID{Protocol: config.TCP, VIP: vip, Port: 80, Addr: r1.Address}
	if err := f.SetHealth(id, check, false); err != nil {
		t.Fatal(err)
	}
	b := a.Clone()
	b.Services[0].RealServers[0].Check.Timeout = 2 * time.Second
	applyNow(t, f, b, t0)
	st := statsOf(f, 0, r1.Address)
	if st.Available && !st.Inhibited && !st.Unchecked {
		t.Fatalf("dead server, check identity changed: Available=%v Unchecked=%v: counted for BGP before any probe of the new check", st.Available, st.Unchecked)
	}
}

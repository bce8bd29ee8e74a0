package forwarder

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// xdpBucket is a SYN's bucket in t as a program outside Go computes it
// from the table alone (scheduler.BucketIPv4).
func xdpBucket(t *StatelessSYNTable, c netip.AddrPort) int {
	return scheduler.BucketIPv4(t.Seed, t.HashPort, len(t.MACs), c.Addr().As4(), c.Port())
}

// pressured floods f with spoofed SYNs until it places them statelessly.
func pressured(t *testing.T, f *Forwarder, rng *rand.Rand, now int64) {
	t.Helper()
	for range 10 * f.table.Cap() {
		if f.Process(syn(spoofed(rng)), &Meta{Time: now}).Reason == ReasonSynStateless {
			return
		}
	}
	t.Fatal("no pressure")
}

// tableFor returns the table of the TCP service vip:80.
func tableFor(t *testing.T, f *Forwarder) *StatelessSYNTable {
	t.Helper()
	tabs := f.StatelessSYNTables()
	for i := range tabs {
		if tabs[i].VIP == vip && tabs[i].Port == 80 {
			return &tabs[i]
		}
	}
	t.Fatalf("no table for %v:80 in %d tables", vip, len(tabs))
	return nil
}

// TestStatelessSYNTables: under pressure, a SYN whose bucket (computed from
// the table alone) has a MAC is forwarded statelessly by Process to that
// very MAC, for the consistent schedulers (their own hash) and the others
// (the sh with ports and fallback beside them), with servers down.
func TestStatelessSYNTables(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sched    string
		opts     scheduler.Options
		weights  []int
		down     []int
		hashPort bool
		zeros    bool // some buckets are drlb's to decide
	}{
		{"sh", "sh", scheduler.Options{}, []int{1, 2, 1}, nil, false, false},
		{"sh-down", "sh", scheduler.Options{}, []int{1, 1, 1}, []int{1}, false, true},
		{"sh-port-fallback-down", "sh", scheduler.Options{HashPort: true, Fallback: true}, []int{2, 1, 1}, []int{0}, true, false},
		{"mh", "mh", scheduler.Options{}, []int{1, 1, 1}, nil, false, false},
		{"mh-port-fallback-down", "mh", scheduler.Options{HashPort: true, Fallback: true, TableSize: 1009}, []int{1, 3, 1}, []int{2}, true, true},
		{"rr", "rr", scheduler.Options{}, []int{1, 1}, nil, true, false},
		{"wlc-down", "wlc", scheduler.Options{}, []int{1, 3, 2}, []int{0}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(tc.sched, len(tc.weights))
			for i := range cfg.Services {
				cfg.Services[i].SchedOptions = tc.opts
				for j, w := range tc.weights {
					cfg.Services[i].RealServers[j].Weight = w
				}
			}
			cfg.MaxConns = 64
			f := newForwarder(t, cfg, Options{})
			for _, i := range tc.down {
				if err := f.SetAvailable(0, i, false); err != nil {
					t.Fatal(err)
				}
			}
			if f.StatelessSYNsOn() {
				t.Fatal("stateless SYNs on without pressure")
			}
			rng := rand.New(rand.NewPCG(11, uint64(len(tc.name))))
			pressured(t, f, rng, t0)
			if !f.StatelessSYNsOn() {
				t.Fatal("stateless SYNs off under pressure")
			}
			if tabs := f.StatelessSYNTables(); len(tabs) != 2 {
				t.Fatalf("%d tables, want the two TCP services'", len(tabs))
			}
			tab := tableFor(t, f)
			if tab.HashPort != tc.hashPort || len(tab.MACs) == 0 {
				t.Fatalf("hash port %v, %d buckets", tab.HashPort, len(tab.MACs))
			}
			zeros := 0
			for _, m := range tab.MACs {
				if m == ([6]byte{}) {
					zeros++
				}
			}
			if (zeros > 0) != tc.zeros || zeros == len(tab.MACs) {
				t.Fatalf("%d of %d buckets without MAC", zeros, len(tab.MACs))
			}
			perMAC := map[[6]byte]int{}
			placed := 0
			buf := make([]byte, 0, 128)
			for range 20000 {
				v := rng.Uint64()
				c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)}), uint16(v>>24))
				b := xdpBucket(tab, c)
				frame := syn(c)
				buf = append(buf[:0], frame...)
				res := f.Process(buf, &Meta{Time: t0})
				mac := tab.MACs[b]
				if mac == ([6]byte{}) {
					continue
				}
				placed++
				perMAC[mac]++
				if res.Verdict != Forward || res.Reason != ReasonSynStateless {
					t.Fatalf("%v: bucket %d has %x, Process gives %v/%v", c, b, mac, res.Verdict, res.Reason)
				}
				if [6]byte(buf[0:6]) != mac {
					t.Fatalf("%v: bucket %d has %x, Process sent it to %x", c, b, mac, buf[0:6])
				}
			}
			if placed < 10000 || len(perMAC) != len(tc.weights)-len(tc.down) {
				t.Fatalf("%d SYNs placed by the table, over %d servers", placed, len(perMAC))
			}
		})
	}
}

// TestStatelessSYNTablesLeftOut: persistent and UDP services have no
// table; with stateful SYNs none has.
func TestStatelessSYNTablesLeftOut(t *testing.T) {
	cfg := testConfig("wrr", 2)
	cfg.Services[0].Persistence = 300 * time.Second
	f := newForwarder(t, cfg, Options{})
	tabs := f.StatelessSYNTables()
	if len(tabs) != 1 || tabs[0].VIP != vip6 || tabs[0].Port != 80 || !tabs[0].HashPort ||
		tabs[0].Seed != (scheduler.Placement{Port: true}).Seed() {
		t.Fatalf("tables %+v, want only %v:80's", tabs, vip6)
	}
	f.statefulSYN = true
	if tabs := f.StatelessSYNTables(); tabs != nil {
		t.Fatalf("stateful SYNs: %d tables", len(tabs))
	}
	// No server with a weight: a table without buckets.
	cfg = testConfig("mh", 2)
	for i := range cfg.Services[0].RealServers {
		cfg.Services[0].RealServers[i].Weight = 0
	}
	f = newForwarder(t, cfg, Options{})
	if tab := tableFor(t, f); tab.MACs != nil || tab.HashPort {
		t.Fatalf("without weights: %+v", tab)
	}
}

// TestNoteStatelessSYNs: SYNs forwarded outside Process count as
// syn-stateless, weigh in the pressure shadow as many notes would, and open
// the adoption window: a later ACK without entry is adopted and goes where
// the table sent its SYN; once the window has closed it is refused.
func TestNoteStatelessSYNs(t *testing.T) {
	cfg := testConfig("wlc", 3)
	f := newForwarder(t, cfg, Options{})
	tab := tableFor(t, f)
	c := client(1, 4000)
	res, _ := process(t, f, ack(c), t0)
	expect(t, res, Drop, ReasonNoConn)

	f.NoteStatelessSYNs(0, t0)
	if f.Count(ReasonSynStateless) != 0 || f.KernelSYNs() != 0 || f.stateless.open(t0) {
		t.Fatal("n = 0 counted or opened the window")
	}
	now := t0 + second/2
	f.NoteStatelessSYNs(7, now)
	f.NoteStatelessSYNs(5, now+second)
	if n := f.Count(ReasonSynStateless); n != 12 {
		t.Fatalf("syn-stateless %d, want 12", n)
	}
	if n := f.KernelSYNs(); n != 12 {
		t.Fatalf("KernelSYNs %d, want 12", n)
	}
	var ref statelessState
	for range 7 {
		ref.note(now)
	}
	for range 5 {
		ref.note(now + second)
	}
	for _, at := range []int64{now + second, now + 2*second, now + 4*second, now + 10*second} {
		if got, want := f.stateless.shadow(at), ref.shadow(at); got != want {
			t.Fatalf("shadow at +%v: %d, as notes %d", time.Duration(at-now), got, want)
		}
	}
	if f.stateless.until.Load() != ref.until.Load() {
		t.Fatalf("window until %d, as notes %d", f.stateless.until.Load(), ref.until.Load())
	}

	res, out := process(t, f, ack(c), now+second+int64(StatelessWindow)-1)
	expect(t, res, Forward, ReasonPressureAdopted)
	if want := tab.MACs[xdpBucket(tab, c)]; [6]byte(out[0:6]) != want {
		t.Fatalf("ACK to %x, the table sent its SYN to %x", out[0:6], want)
	}
	res, _ = process(t, f, ack(client(2, 4000)), now+second+int64(StatelessWindow))
	expect(t, res, Drop, ReasonNoConn)

	before := f.KernelSYNs()
	if n := testing.AllocsPerRun(1000, func() { f.NoteStatelessSYNs(3, now) }); n != 0 {
		t.Fatalf("NoteStatelessSYNs: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _ = f.KernelSYNs() }); n != 0 {
		t.Fatalf("KernelSYNs: %v allocations", n)
	}
	// AllocsPerRun runs the function once more than asked, to warm up.
	if got, want := f.KernelSYNs()-before, uint64(3*1001); got != want {
		t.Fatalf("KernelSYNs grew by %d over the runs, want %d", got, want)
	}
}

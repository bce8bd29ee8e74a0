package forwarder

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/framegen"
)

// twin is two forwarders built alike, one with the fast path, one without:
// whatever frames and events they are given, they must stay alike. The
// fast one also holds its counts around each frame, as the step does
// around each batch (heldcounts.go), the other counts them at once.
type twin struct {
	fast, full *Forwarder
	now        int64
	loose      bool // compare only verdicts and frames in step; call same
}

func newTwin(t testing.TB, cfg func() *twinConfig) *twin {
	t.Helper()
	a, b := cfg(), cfg()
	tw := &twin{fast: newForwarder(t, a.cfg, a.opts), full: newForwarder(t, b.cfg, b.opts), now: t0}
	tw.full.noFast = true
	if a.sync {
		tw.fast.EnableSync(1 << 16)
		tw.full.EnableSync(1 << 16)
	}
	return tw
}

type twinConfig struct {
	cfg  *config.Config
	opts Options
	sync bool
}

// step runs one frame through both and fails t at the first difference
// in verdict, output frame, counters, sync records or table.
func (tw *twin) step(t testing.TB, frame []byte, m Meta) Result {
	t.Helper()
	a, b := append([]byte(nil), frame...), append([]byte(nil), frame...)
	ma, mb := m, m
	ma.Time, mb.Time = tw.now, tw.now
	tw.fast.HoldCounts()
	ra := tw.fast.Process(a, &ma)
	tw.fast.PublishCounts()
	rb := tw.full.Process(b, &mb)
	if ra != rb || !bytes.Equal(a, b) {
		t.Fatalf("frame % x: fast path %+v, full path %+v (frames equal: %v)", frame, ra, rb, bytes.Equal(a, b))
	}
	if !tw.loose {
		tw.same(t)
	}
	return ra
}

// same fails t if the two forwarders' visible state differs.
func (tw *twin) same(t testing.TB) {
	t.Helper()
	for r := range numReasons {
		if a, b := tw.fast.counts[r].Load(), tw.full.counts[r].Load(); a != b {
			t.Fatalf("reason %v: %d with the fast path, %d without", Reason(r), a, b)
		}
	}
	if a, b := tw.fast.Stats(), tw.full.Stats(); !reflect.DeepEqual(a, b) {
		t.Fatalf("stats differ:\nfast %+v\nfull %+v", a, b)
	}
	if a, b := tw.fast.SyncEvents(), tw.full.SyncEvents(); !reflect.DeepEqual(a, b) {
		t.Fatalf("sync records differ:\nfast %+v\nfull %+v", a, b)
	}
	if a, b := tableDump(tw.fast.table), tableDump(tw.full.table); !reflect.DeepEqual(a, b) {
		t.Fatalf("tables differ:\nfast %v\nfull %v", a, b)
	}
	if a, b := tw.fast.pressure.Load(), tw.full.pressure.Load(); a != b {
		t.Fatalf("pressure: %v with the fast path, %v without", a, b)
	}
	if a, b := tw.fast.pressureEpisodes.Load(), tw.full.pressureEpisodes.Load(); a != b {
		t.Fatalf("pressure episodes: %d with the fast path, %d without", a, b)
	}
	if a, b := tw.fast.TakeHandshakes(nil), tw.full.TakeHandshakes(nil); !reflect.DeepEqual(a, b) {
		t.Fatalf("handshakes: %v with the fast path, %v without", a, b)
	}
}

// tableDump lists a table's entries with their expiry, in slot order.
func tableDump(tb *conntable.Table) []slotDump {
	var out []slotDump
	tb.Range(func(e *conntable.Entry) bool {
		out = append(out, slotDump{*e, tb.Expires(e)})
		return true
	})
	return out
}

type slotDump struct {
	Entry   conntable.Entry
	Expires int64
}

// TestFastPathMatchesSlow holds fastExisting to the full path: the seed
// frames (the replay scenario's included), then connections through
// their life while servers fail, drain, hand over to a sorry server and
// come back, frames arrive for other directors and the clock jumps past
// timeouts, with sync on and off and with persistence. It also checks
// that the fast path took the frames it is for.
func TestFastPathMatchesSlow(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		sync, persist, drain, removed bool
		long                          bool // tcp 7200 s, frames up to 2200 s apart
		sorry, inhibit                bool
		ourMAC, ownMAC, pressure      bool
	}{
		{name: "plain"},
		{name: "sync", sync: true},
		{name: "sync-persistence-long", sync: true, persist: true, long: true},
		{name: "persistence", persist: true},
		{name: "drain", drain: true},
		{name: "sorry", sorry: true},
		{name: "sorry-inhibit", sorry: true, inhibit: true},
		{name: "director-MAC", ourMAC: true},
		{name: "own-MAC", ownMAC: true},
		{name: "removed", removed: true},
		{name: "pressure", pressure: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			build := func() *config.Config {
				cfg := testConfig("wrr", 3)
				if tc.sorry {
					cfg = sorryConfig("rr", tc.inhibit)
				}
				if tc.persist {
					cfg.Services[0].Persistence = 300 * time.Second
					cfg.Services[0].PersistenceBits = 24 // a /24 of IPv4 clients
				}
				if tc.pressure {
					cfg.MaxConns = 150
				}
				if tc.long {
					cfg.Timeouts.TCPEstablished = 7200 * time.Second
				}
				if tc.drain {
					cfg.Services[0].DrainTimeout = 30 * time.Second
				}
				return cfg
			}
			tw := newTwin(t, func() *twinConfig {
				opts := Options{MTU: 1500}
				switch {
				case tc.ourMAC:
					opts.MAC = directorMAC
				case tc.ownMAC:
					opts.OwnMAC = ownMAC
				}
				return &twinConfig{cfg: build(), opts: opts, sync: tc.sync}
			})
			for _, fr := range seedFrames() {
				tw.step(t, fr, Meta{})
				tw.now += second / 10
			}
			const n = 40
			clients := make([]netip.AddrPort, n)
			for i := range clients {
				clients[i] = client(i%5, uint16(2000+i))
			}
			data := func(c netip.AddrPort) []byte {
				return framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "PA", 2, 1, make([]byte, 100))
			}
			udp := func(c netip.AddrPort) []byte {
				return framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
			}
			for _, c := range clients {
				tw.step(t, syn(c), Meta{})
				tw.step(t, ack(c), Meta{})
				tw.step(t, udp(c), Meta{})
			}
			before := tw.fast.fastHits
			for round := range 3 {
				for _, c := range clients {
					tw.step(t, data(c), Meta{})
					tw.step(t, udp(c), Meta{})
				}
				tw.now += int64(round+1) * second
			}
			if tc.long {
				// Sync records due: by the stamp (430 s, 470 s), by
				// the last frame's age where the stamp wrapped (2200
				// s), templates with them; the UDP entries expire.
				evs := len(tw.fast.SyncEvents())
				for _, gap := range []int64{430, 470, 2200, 300, 2200} {
					tw.now += gap * second
					for _, c := range clients {
						tw.step(t, data(c), Meta{})
						tw.step(t, udp(c), Meta{})
					}
				}
				if len(tw.fast.SyncEvents()) < evs+3*n {
					t.Fatalf("%d sync records over 5600 s, want at least %d", len(tw.fast.SyncEvents())-evs, 3*n)
				}
				before = tw.fast.fastHits
				for round := range 3 {
					for _, c := range clients {
						tw.step(t, data(c), Meta{})
						tw.step(t, udp(c), Meta{})
					}
					tw.now += int64(round+1) * second
				}
			}
			want := uint64(6 * n)
			// Under pressure some SYNs go statelessly and their
			// connections are adopted later: fewer frames qualify.
			if hits := tw.fast.fastHits - before; hits != want && !(tc.pressure && hits > want/2) {
				t.Fatalf("the fast path took %d established frames, want %d", hits, want)
			}
			if tw.full.fastHits != 0 {
				t.Fatalf("the forwarder without fast path took %d frames on it", tw.full.fastHits)
			}
			if tc.pressure {
				// The UDP entries expire and the sweep reclaims them
				// while only established TCP frames, all on the fast
				// path, arrive: the pressure must end on the same frame.
				if !tw.fast.pressure.Load() {
					t.Fatal("no pressure with the table full to the half")
				}
				tw.now += int64(350 * time.Second)
				for _, c := range clients {
					tw.step(t, data(c), Meta{})
				}
				if tw.fast.pressure.Load() {
					t.Fatalf("pressure still on with %d of %d entries", tw.fast.table.Len(), tw.fast.table.Cap())
				}
			}
			// Servers fail or drain, frames come for other directors or
			// from our own MAC, a big frame, a partial checksum, a
			// super-frame, FINs and RSTs.
			for _, f := range []*Forwarder{tw.fast, tw.full} {
				switch {
				case tc.sorry:
					for ri := range 2 {
						if err := f.SetAvailable(0, ri, false); err != nil {
							t.Fatal(err)
						}
					}
				case tc.drain:
					cfg := build()
					cfg.Services[0].RealServers[1].Weight = 0
					apply(t, f, cfg, tw.now)
				case tc.removed:
					// Server 1 leaves service 0; service 1 (UDP) leaves
					// and comes back with a new slot, its entries
					// still naming the old one.
					cfg := build()
					cfg.Services[0].RealServers = slices.Delete(cfg.Services[0].RealServers, 1, 2)
					udp := cfg.Services[1]
					cfg.Services = slices.Delete(cfg.Services, 1, 2)
					apply(t, f, cfg, tw.now)
					cfg = build()
					cfg.Services[0].RealServers = slices.Delete(cfg.Services[0].RealServers, 1, 2)
					cfg.Services[1] = udp
					apply(t, f, cfg, tw.now)
				default:
					if err := f.SetAvailable(0, 0, false); err != nil {
						t.Fatal(err)
					}
					if err := f.SetWeight(0, 1, 0); err != nil {
						t.Fatal(err)
					}
				}
			}
			big := framegen.TCP(toDir, clients[1], netip.AddrPortFrom(vip, 80), "PA", 2, 1, make([]byte, 1600))
			other := framegen.L2{Src: clientMAC, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 0xee}}
			own := framegen.L2{Src: ownMAC, Dst: directorMAC}
			if tc.ourMAC {
				own.Src = directorMAC
			}
			for i, c := range clients {
				tw.step(t, data(c), Meta{})
				tw.step(t, udp(c), Meta{})
				tw.step(t, framegen.TCP(other, c, netip.AddrPortFrom(vip, 80), "PA", 2, 1, nil), Meta{})
				tw.step(t, framegen.TCP(own, c, netip.AddrPortFrom(vip, 80), "PA", 2, 1, nil), Meta{})
				switch i % 5 {
				case 0:
					tw.step(t, big, Meta{})
					tw.step(t, big, Meta{Super: true})
				case 1:
					tw.step(t, data(c), Meta{CsumPartial: true})
				case 2:
					tw.step(t, fin(c), Meta{})
					tw.step(t, data(c), Meta{})
				case 3:
					tw.step(t, framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "R", 2, 0, nil), Meta{})
					tw.step(t, syn(c), Meta{})
				}
			}
			tw.now += int64(time.Minute) // past the drain timeout
			for _, c := range clients {
				tw.step(t, data(c), Meta{})
			}
			for _, f := range []*Forwarder{tw.fast, tw.full} {
				if err := f.SetAvailable(0, 1, true); err != nil {
					t.Fatal(err)
				}
			}
			for _, jump := range []time.Duration{0, time.Minute, 10 * time.Minute, time.Hour} {
				tw.now += int64(jump)
				for _, c := range clients {
					tw.step(t, data(c), Meta{})
					tw.step(t, udp(c), Meta{})
				}
			}
		})
	}
}

// FuzzFastPathMatchesSlow: after the seed frames set up connections in
// both forwarders, any frame gives the same verdict, output and state
// with and without the fast path.
func FuzzFastPathMatchesSlow(f *testing.F) {
	seeds := seedFrames()
	for _, fr := range seeds {
		f.Add(fr, false)
	}
	f.Add(ack(client(0, 1234)), true)
	f.Fuzz(func(t *testing.T, frame []byte, super bool) {
		tw := newTwin(t, func() *twinConfig {
			return &twinConfig{cfg: testConfig("wrr", 3), opts: Options{MTU: 1500}}
		})
		tw.loose = true
		for _, fr := range seeds {
			tw.step(t, fr, Meta{})
		}
		tw.step(t, frame, Meta{Super: super})
		tw.step(t, frame, Meta{Super: super})
		tw.same(t)
	})
}

// apply gives f cfg as a reload would, failing t if it is refused.
func apply(t *testing.T, f *Forwarder, cfg *config.Config, now int64) {
	t.Helper()
	for i := range cfg.Services { // as the config loader sets them
		if cfg.Services[i].PersistenceBits == 0 {
			cfg.Services[i].PersistenceBits = cfg.Services[i].VIP.BitLen()
		}
	}
	if _, err := f.Apply(cfg, now, func(swap func()) { swap() }); err != nil {
		t.Fatal(err)
	}
}

// ownMAC is the director's own sending MAC in TestFastPathMatchesSlow.
var ownMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0xd1}

// TestFastPathMatchesSlowChurn drives a small table (max_conns 100, one
// slot swept per frame, so expired entries linger on probe runs until a
// lookup reclaims them) with random clients opening, using, closing and
// abandoning connections while the clock jumps, in busy and quiet phases:
// the pressure turns on and off many times, with lookups reclaiming entries between the fast path's
// pressure update and the full path's. Both forwarders must agree on
// every frame.
func TestFastPathMatchesSlowChurn(t *testing.T) {
	tw := newTwin(t, func() *twinConfig {
		cfg := testConfig("wrr", 3)
		cfg.MaxConns = 100
		cfg.Timeouts = config.Timeouts{TCPEstablished: 30 * time.Second, TCPSynRecv: 10 * time.Second,
			TCPFinWait: 10 * time.Second, TCPClose: 5 * time.Second, UDP: 5 * time.Second}
		return &twinConfig{cfg: cfg, opts: Options{SweepBudget: 1}}
	})
	rng := rand.New(rand.NewPCG(7, 8))
	clients := make([]netip.AddrPort, 40)
	for i := range clients {
		clients[i] = client(i%7, uint16(3000+i))
	}
	flips, last := 0, false
	for i := range 20000 {
		if i%300 == 299 {
			tw.now += int64(45 * time.Second) // everything expires, unreclaimed
		}
		// Busy phases use every client and fill the table past half;
		// quiet ones send UDP from three clients and, now and then,
		// from a new port, whose lookup reclaims the expired entries on
		// its probe run: the table drains below 40% by lookups as well
		// as by the sweep.
		c := clients[rng.IntN(len(clients))]
		kind, step := rng.IntN(6), rng.IntN(100)
		if i/300%2 == 1 {
			c, kind, step = clients[rng.IntN(3)], 3, rng.IntN(1000)
			if rng.IntN(5) == 0 {
				c = client(rng.IntN(7), uint16(10000+rng.IntN(50000)))
			}
		}
		var fr []byte
		switch kind {
		case 0:
			fr = syn(c)
		case 1, 2:
			fr = ack(c)
		case 3:
			fr = framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
		case 4:
			fr = fin(c)
		default:
			fr = framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "PA", 2, 1, make([]byte, 10))
		}
		tw.step(t, fr, Meta{})
		tw.now += int64(step) * int64(time.Millisecond)
		if p := tw.fast.pressure.Load(); p != last {
			flips, last = flips+1, p
		}
	}
	if flips < 4 || tw.fast.fastHits == 0 {
		t.Fatalf("pressure changed %d times, %d frames on the fast path: the test did not exercise both", flips, tw.fast.fastHits)
	}
}

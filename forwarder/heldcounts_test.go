package forwarder

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
)

// heldCountsFrames is a mix of frames with every kind of count: new
// connections and existing ones on both TCP services and the UDP one,
// frames for no VIP and for no service, a malformed one, a FIN.
func heldCountsFrames() [][]byte {
	var frames [][]byte
	for i := range 6 {
		c := client(i, uint16(1000+i))
		frames = append(frames, syn(c), ack(c), ack(c))
		u := framegen.UDP(toDir, c, netip.AddrPortFrom(vip, 53), []byte("q"))
		frames = append(frames, u, u)
		c6 := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(0x50 + i)}), uint16(2000+i))
		frames = append(frames,
			framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "S", 1, 0, nil),
			framegen.TCP(toDir, c6, netip.AddrPortFrom(vip6, 80), "A", 2, 1, []byte("x")))
		frames = append(frames, fin(c))
	}
	other := framegen.TCP(toDir, client(0, 9), netip.AddrPortFrom(netip.MustParseAddr("198.18.0.200"), 80), "S", 1, 0, nil)
	noService := framegen.TCP(toDir, client(0, 9), netip.AddrPortFrom(vip, 81), "S", 1, 0, nil)
	malformed := append([]byte(nil), syn(client(0, 9))[:14+10]...)
	return append(frames, other, noService, malformed)
}

// TestHeldCountsPublish: a worker that holds its counts over batches
// (as the step does) ends each batch with the same counts and totals as
// one that publishes every frame's at once, whatever the batch size,
// and holds them back until then. With room for only two held totals,
// it publishes early and still counts everything once.
func TestHeldCountsPublish(t *testing.T) {
	for _, tc := range []struct {
		name     string
		batch    int
		maxHeld  int // 0: heldTotalsMax
		wantHeld bool
	}{
		{name: "one", batch: 1, wantHeld: true},
		{name: "seven", batch: 7, wantHeld: true},
		{name: "all", batch: 1000, wantHeld: true},
		{name: "two-totals", batch: 64, maxHeld: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := newForwarder(t, testConfig("rr", 3), Options{})
			direct := newForwarder(t, testConfig("rr", 3), Options{})
			if tc.maxHeld > 0 {
				held.held.totals = make([]*totals, 0, tc.maxHeld)
			}
			frames := heldCountsFrames()
			now := t0
			for start := 0; start < len(frames); start += tc.batch {
				batch := frames[start:min(start+tc.batch, len(frames))]
				before := countersOf(held)
				held.HoldCounts()
				for _, fr := range batch {
					m := Meta{Time: now}
					ra := held.Process(append([]byte(nil), fr...), &m)
					rb := direct.Process(append([]byte(nil), fr...), &m)
					if ra != rb {
						t.Fatalf("frame %d: %+v holding counts, %+v not", start, ra, rb)
					}
					now += int64(1e6)
				}
				if tc.wantHeld && !reflect.DeepEqual(countersOf(held), before) {
					t.Fatalf("batch at %d: the totals changed before PublishCounts", start)
				}
				held.PublishCounts()
				if a, b := held.Stats(), direct.Stats(); !reflect.DeepEqual(a, b) {
					t.Fatalf("batch at %d: stats\nheld   %+v\ndirect %+v", start, a, b)
				}
				for r := range numReasons {
					if a, b := held.Count(r), direct.Count(r); a != b {
						t.Fatalf("batch at %d: reason %v counted %d held, %d direct", start, r, a, b)
					}
				}
			}
			if held.Count(ReasonExisting) == 0 || held.Count(ReasonNew) == 0 || held.Count(ReasonMalformed) == 0 {
				t.Fatal("the frames did not give the counts the test is about")
			}
			if len(held.held.totals) != 0 {
				t.Fatalf("%d totals still listed after PublishCounts", len(held.held.totals))
			}
			if tc.maxHeld > 0 && cap(held.held.totals) != tc.maxHeld {
				t.Fatalf("the list of held totals grew to %d, past its bound %d", cap(held.held.totals), tc.maxHeld)
			}
		})
	}
}

// TestHeldCountsNoAllocations: a batch with its counts held allocates
// nothing once the worker held counts before.
func TestHeldCountsNoAllocations(t *testing.T) {
	f := newForwarder(t, testConfig("wrr", 3), Options{})
	frames := heldCountsFrames()
	bufs := make([][]byte, len(frames))
	for i := range frames {
		bufs[i] = make([]byte, len(frames[i]))
	}
	m := &Meta{Time: t0}
	f.HoldCounts()
	f.PublishCounts()
	if n := testing.AllocsPerRun(200, func() {
		f.HoldCounts()
		for i, fr := range frames {
			copy(bufs[i], fr)
			f.Process(bufs[i], m)
		}
		f.PublishCounts()
	}); n != 0 {
		t.Fatalf("%v allocs per batch", n)
	}
}

// countersOf is f's published counters: each service's and real
// server's totals, and the count of each reason.
func countersOf(f *Forwarder) []uint64 {
	var out []uint64
	add := func(c Counters) { out = append(out, c.Connections, c.Packets, c.Bytes) }
	for _, s := range f.Stats() {
		add(s.Counters)
		for _, r := range s.RealServers {
			add(r.Counters)
		}
	}
	for r := range numReasons {
		out = append(out, f.Count(r))
	}
	return out
}

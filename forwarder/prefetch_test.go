package forwarder

import (
	"bytes"
	"testing"

	"github.com/drlb/drlb/conntable"
)

// TestPrefetchChangesNothing runs every seed frame (the replay scenario's
// included) through two forwarders in batches of 8, one prefetching each
// batch first: verdicts, rewritten frames and counters must be identical.
func TestPrefetchChangesNothing(t *testing.T) {
	frames := seedFrames()
	if len(frames) < 20 {
		t.Fatalf("only %d seed frames", len(frames))
	}
	plain := newForwarder(t, testConfig("wrr", 3), Options{MTU: 1500})
	pre := newForwarder(t, testConfig("wrr", 3), Options{MTU: 1500})
	pre.preMin, pre.preMinBytes = 0, 0 // prefetch whatever the table's size
	if !pre.prefetches() {
		t.Fatal("the prefetching forwarder does not prefetch")
	}
	const batch = 8
	now := t0
	for start := 0; start < len(frames); start += batch {
		end := min(start+batch, len(frames))
		a := make([][]byte, 0, batch)
		b := make([][]byte, 0, batch)
		for _, fr := range frames[start:end] {
			a = append(a, append([]byte(nil), fr...))
			b = append(b, append([]byte(nil), fr...))
		}
		pre.Prefetch(b)
		for i := range a {
			ra := plain.Process(a[i], &Meta{Time: now})
			rb := pre.Process(b[i], &Meta{Time: now})
			if ra != rb || !bytes.Equal(a[i], b[i]) {
				t.Fatalf("frame %d: %+v without prefetch, %+v with", start+i, ra, rb)
			}
		}
		now += second / 10
	}
	sameTableAndCounts(t, plain, pre, "prefetch")
}

// sameTableAndCounts fails t unless plain and pre (the same frames, pre
// with prefetching of kind what) hold as many entries and counted the same
// frames for every reason: prefetching changes nothing.
func sameTableAndCounts(t *testing.T, plain, pre *Forwarder, what string) {
	t.Helper()
	if plain.table.Len() != pre.table.Len() {
		t.Fatalf("tables differ: %d entries without %s, %d with", plain.table.Len(), what, pre.table.Len())
	}
	for r := range numReasons {
		if a, b := plain.counts[r].Load(), pre.counts[r].Load(); a != b {
			t.Errorf("reason %v: %d without %s, %d with", Reason(r), a, what, b)
		}
	}
}

// TestPrefetchRule: Prefetch works for a table whose entries are too many
// and too scattered to stay in the CPU's caches: from PrefetchMinConns
// entries in a slot array of PrefetchMinTableBytes or more, whatever
// max_conns made it, and not for the same entries packed in a small array.
func TestPrefetchRule(t *testing.T) {
	for _, tc := range []struct {
		maxConns, conns int
		want            bool
	}{
		{maxConns: 1 << 20, conns: 0, want: false},
		{maxConns: 1 << 20, conns: PrefetchMinConns - 1, want: false},
		{maxConns: 1 << 20, conns: PrefetchMinConns, want: true},
		{maxConns: 4 * PrefetchMinConns, conns: PrefetchMinConns, want: false}, // 1 MiB of slots
		{maxConns: 1 << 16, conns: PrefetchMinConns, want: true},               // 4 MiB of slots
	} {
		cfg := testConfig("wrr", 3)
		cfg.MaxConns = tc.maxConns
		f := newForwarder(t, cfg, Options{})
		populate(t, f, tc.conns)
		if f.TableLen() != tc.conns {
			t.Fatalf("max_conns %d: %d entries after %d connections", tc.maxConns, f.TableLen(), tc.conns)
		}
		if got := f.prefetches(); got != tc.want {
			t.Errorf("max_conns %d, %d connections (%d bytes of slots): prefetches %v, want %v",
				tc.maxConns, tc.conns, f.table.Bytes(), got, tc.want)
		}
	}
}

func TestPrefetchZeroAllocs(t *testing.T) {
	f := newForwarder(t, testConfig("mh", 3), Options{})
	f.preMin, f.preMinBytes = 0, 0
	frames := seedFrames()
	if a := testing.AllocsPerRun(100, func() { f.Prefetch(frames) }); a != 0 {
		t.Fatalf("Prefetch: %v allocs/op, want 0", a)
	}
}

// TestQuickKey checks Prefetch's shortcut against the full decode: for
// every seed frame it takes, the key must be the one Process looks up.
func TestQuickKey(t *testing.T) {
	took := 0
	for i, fr := range seedFrames() {
		if checkQuickKey(t, fr) {
			took++
		} else if i < 3 {
			t.Errorf("seed %d (a plain TCP packet): quickKey declined it", i)
		}
	}
	if took == 0 {
		t.Fatal("quickKey took no seed frame")
	}
}

// checkQuickKey reports whether quickKey took frame, failing t if it made
// a key decode and setKey would not.
func checkQuickKey(t *testing.T, frame []byte) bool {
	t.Helper()
	var k conntable.Key
	if !quickKey(frame, &k) {
		return false
	}
	var p packet
	if err := decode(frame, &p); err != nil || !p.dst.IsValid() || p.frag || p.icmpErr ||
		p.proto != protoTCP && p.proto != protoUDP {
		t.Fatalf("quickKey took % x, which decodes to err %v proto %d frag %v", frame, err, p.proto, p.frag)
	}
	var want conntable.Key
	new(Forwarder).setKey(&want, &p.flow)
	if k != want {
		t.Fatalf("quickKey(% x) = %+v, decode gives %+v", frame, k, want)
	}
	return true
}

func FuzzQuickKey(f *testing.F) {
	for _, fr := range seedFrames() {
		f.Add(fr)
	}
	f.Fuzz(func(t *testing.T, frame []byte) { checkQuickKey(t, frame) })
}

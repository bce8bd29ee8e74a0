package forwarder

import (
	"bytes"
	"testing"
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
	pre.preMin = 0 // prefetch whatever the table's size
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
	if plain.table.Len() != pre.table.Len() {
		t.Fatalf("tables differ: %d entries without prefetch, %d with", plain.table.Len(), pre.table.Len())
	}
	for r := range numReasons {
		if a, b := plain.counts[r].Load(), pre.counts[r].Load(); a != b {
			t.Errorf("reason %v: %d without prefetch, %d with", Reason(r), a, b)
		}
	}
}

func TestPrefetchZeroAllocs(t *testing.T) {
	f := newForwarder(t, testConfig("mh", 3), Options{})
	f.preMin = 0
	frames := seedFrames()
	if a := testing.AllocsPerRun(100, func() { f.Prefetch(frames) }); a != 0 {
		t.Fatalf("Prefetch: %v allocs/op, want 0", a)
	}
}

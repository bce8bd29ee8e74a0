package forwarder

import (
	"bytes"
	"testing"
)

// aheadStream is a stream of batches for Ahead's tests: the seed frames
// over and over, in batches of the given sizes.
func aheadStream(sizes []int) [][][]byte {
	seeds := seedFrames()
	var batches [][][]byte
	k := 0
	for _, n := range sizes {
		b := make([][]byte, n)
		for i := range b {
			b[i] = append([]byte(nil), seeds[k%len(seeds)]...)
			k++
		}
		batches = append(batches, b)
	}
	return batches
}

// runAhead processes batches in turn as the director does when it reads
// ahead: each batch with the next one behind it in Begin's data (the
// last one alone). It returns the results in order.
func runAhead(f *Forwarder, a *Ahead, batches [][][]byte, now int64) []Result {
	var results []Result
	for k, b := range batches {
		data := append([][]byte(nil), b...)
		if k+1 < len(batches) {
			data = append(data, batches[k+1]...)
		}
		a.Begin(data, len(b))
		for i, frame := range b {
			a.Before(i)
			results = append(results, f.Process(frame, &Meta{Time: now}))
		}
		a.End()
		now += second / 10
	}
	return results
}

// TestAheadChangesNothing: the same stream through two forwarders, one
// prefetching ahead across batches, gives identical verdicts, rewritten
// frames, tables and counters.
func TestAheadChangesNothing(t *testing.T) {
	sizes := []int{8, 64, 3, 64, 64, 17, 1, 40}
	plainIn, aheadIn := aheadStream(sizes), aheadStream(sizes)
	plain := newForwarder(t, testConfig("wrr", 3), Options{MTU: 1500})
	pre := newForwarder(t, testConfig("wrr", 3), Options{MTU: 1500})
	pre.preMin, pre.preMinBytes = 0, 0 // prefetch whatever the table's size
	var want []Result
	now := t0
	for _, b := range plainIn {
		for _, frame := range b {
			want = append(want, plain.Process(frame, &Meta{Time: now}))
		}
		now += second / 10
	}
	a := pre.NewAhead()
	got := runAhead(pre, a, aheadIn, t0)
	if a.issued == 0 {
		t.Fatal("Ahead prefetched nothing")
	}
	k := 0
	for bi := range plainIn {
		for i := range plainIn[bi] {
			if want[k] != got[k] || !bytes.Equal(plainIn[bi][i], aheadIn[bi][i]) {
				t.Fatalf("batch %d frame %d: %+v without Ahead, %+v with", bi, i, want[k], got[k])
			}
			k++
		}
	}
	sameTableAndCounts(t, plain, pre, "Ahead")
}

// TestAheadPrefetchesEachFrameOnce: across batches of any sizes, every
// frame of the stream is handed to prefetching exactly once (the next
// batch's first frames during this one, not again in their own); and
// nothing while the table is too small for prefetching to pay.
func TestAheadPrefetchesEachFrameOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"full batches", []int{64, 64, 64}},
		{"short batches", []int{3, 5, 1, 2}},
		{"mixed", []int{64, 10, 64, 3, 64, 16, 17, 15}},
		{"one", []int{9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("wrr", 3), Options{})
			f.preMin, f.preMinBytes = 0, 0
			a := f.NewAhead()
			runAhead(f, a, aheadStream(tc.sizes), t0)
			total := 0
			for _, n := range tc.sizes {
				total += n
			}
			if a.issued != total {
				t.Errorf("%d frames prefetched over a stream of %d", a.issued, total)
			}
			if a.data != nil {
				t.Error("Ahead still holds the last batch after End")
			}
		})
	}
	f := newForwarder(t, testConfig("wrr", 3), Options{})
	a := f.NewAhead()
	runAhead(f, a, aheadStream([]int{64, 64}), t0)
	if a.issued != 0 {
		t.Errorf("an empty table: %d frames prefetched, want none", a.issued)
	}
}

func TestAheadZeroAllocs(t *testing.T) {
	f := newForwarder(t, testConfig("mh", 3), Options{})
	f.preMin, f.preMinBytes = 0, 0
	frames := seedFrames()
	data := append(append([][]byte(nil), frames...), frames...)
	a := f.NewAhead()
	allocs := testing.AllocsPerRun(100, func() {
		a.Begin(data, len(frames))
		for i := range frames {
			a.Before(i)
		}
		a.End()
	})
	if allocs != 0 {
		t.Fatalf("Ahead: %v allocs/op, want 0", allocs)
	}
}

// TestAheadParsesOnce: with Ahead prefetching, the fast path takes the
// parse and hash made for the prefetch instead of parsing the frame again
// (and TestAheadChangesNothing shows it changes no result).
func TestAheadParsesOnce(t *testing.T) {
	f := newForwarder(t, testConfig("wrr", 3), Options{})
	f.preMin, f.preMinBytes = 0, 0
	populate(t, f, 256)
	batch := newExistingBatch(256)
	a := f.NewAhead()
	next := batch.fill()
	for range 8 {
		bufs := next
		next = batch.fill()
		a.Begin(append(append([][]byte(nil), bufs...), next...), len(bufs))
		for i, frame := range bufs {
			a.Before(i)
			if r := f.Process(frame, &Meta{Time: t0 + second}); r.Reason != ReasonExisting {
				t.Fatalf("%v/%v", r.Verdict, r.Reason)
			}
		}
		a.End()
	}
	if f.fastPrepared != f.fastHits || f.fastHits != 8*PrefetchBatch {
		t.Errorf("%d of %d fast-path frames took Ahead's parse, want all %d", f.fastPrepared, f.fastHits, 8*PrefetchBatch)
	}
}

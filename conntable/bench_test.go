package conntable

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// benchN is the number of live connections the benchmarks run against.
const benchN = 1000000

// benchKey is connection i: client 10.x.y.z (16 ports per client) to one
// VIP:443, built directly the way the forwarder copies it from a packet.
func benchKey(i int) Key {
	k := Key{CPort: uint16(32768 + i&15), VPort: 443, Proto: 6}
	k.CIP[10], k.CIP[11] = 0xff, 0xff
	k.CIP[12], k.CIP[13], k.CIP[14], k.CIP[15] = 10, byte(i>>20), byte(i>>12), byte(i>>4)
	k.VIP[10], k.VIP[11] = 0xff, 0xff
	k.VIP[12], k.VIP[13], k.VIP[14], k.VIP[15] = 198, 18, 0, 100
	return k
}

// perm visits 0..benchN-1 in a scattered order (the multiplier is prime,
// so coprime with benchN), so consecutive lookups hit cold cache lines the
// way interleaved flows do.
func perm(i int) int { return int(uint64(i) * 2654435761 % benchN) }

// fill builds a table of max entries holding benchN live connections.
func fill(b *testing.B, max int, onExpire func(*Entry)) *Table {
	b.Helper()
	tb, err := New(Options{Max: max, OnExpire: onExpire})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchN {
		k := benchKey(i)
		e, err := tb.Insert(&k, t0)
		if err != nil {
			b.Fatalf("fill %d: %v", i, err)
		}
		tb.SetTimeout(e, t0, time.Duration(i+1)*time.Second)
		e.Real = uint16(i)
	}
	return tb
}

func reportSize(b *testing.B, tb *Table) {
	b.ReportMetric(float64(tb.Bytes())/float64(tb.Cap()), "bytes/conn")
}

// meanProbe is the mean number of slots a successful lookup touches.
func (t *Table) meanProbe() float64 {
	sum := 0
	for j := range t.slots {
		if t.slots[j].expires == expEmpty {
			continue
		}
		h := t.home(hashKey(&t.slots[j].Key, t.seed))
		d := j - h
		if d < 0 {
			d += len(t.slots)
		}
		sum += d + 1
	}
	return float64(sum) / float64(t.n)
}

func BenchmarkLookupHit(b *testing.B) {
	tb := fill(b, benchN, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := benchKey(perm(i))
		if tb.Lookup(&k, t0) == nil {
			b.Fatal("miss")
		}
		i++
		if i == benchN {
			i = 0
		}
	}
	reportSize(b, tb)
	b.ReportMetric(tb.meanProbe(), "slots/hit")
}

func BenchmarkLookupMiss(b *testing.B) {
	tb := fill(b, benchN, nil)
	b.ReportAllocs()
	i := benchN
	for b.Loop() {
		k := benchKey(i)
		if tb.Lookup(&k, t0) != nil {
			b.Fatal("hit")
		}
		i++
	}
	reportSize(b, tb)
}

// BenchmarkInsertDelete keeps 1M connections live: each op inserts a new
// flow with its timeout after deleting the oldest one (a Lookup plus Delete),
// so the table stays full at Max.
func BenchmarkInsertDelete(b *testing.B) {
	tb := fill(b, benchN, nil)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now := t0 + int64(i)
		old := benchKey(i)
		tb.Delete(tb.Lookup(&old, now))
		k := benchKey(benchN + i)
		e, err := tb.Insert(&k, now)
		if err != nil {
			b.Fatal(err)
		}
		tb.SetTimeout(e, now, 900*time.Second)
		i++
	}
	reportSize(b, tb)
}

// BenchmarkInsertExpire keeps 1M connections live by expiry instead: the
// fake clock moves one second per op and one flow times out per second.
// Each op is Insert + SetTimeout of a new flow plus Sweep(now, 8), which
// reclaims what Insert's probing does not. Max is 1.25M so the expired
// entries waiting for the hand (at most Slots/8) fit.
func BenchmarkInsertExpire(b *testing.B) {
	expired := 0
	tb := fill(b, benchN+benchN/4, func(*Entry) { expired++ })
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now := t0 + int64(i)*int64(time.Second)
		k := benchKey(benchN + i)
		e, err := tb.Insert(&k, now)
		if err != nil {
			b.Fatalf("op %d: %v (Len %d)", i, err, tb.Len())
		}
		tb.SetTimeout(e, now, (benchN+1)*time.Second)
		tb.Sweep(now, 8)
		i++
	}
	reportSize(b, tb)
	b.ReportMetric(float64(tb.Len()), "len")
	_ = expired
}

// BenchmarkSweepLive is the cost of one Sweep(now, 1) call over 1M live
// connections (nothing to remove: the common case), after a first turn
// of the hand, as in a director that has run a while: it passes over a
// whole run of 256 slots whose entries cannot have expired, unread
// (Table.due). BenchmarkSweepRead is the cost of reading slots.
func BenchmarkSweepLive(b *testing.B) {
	tb := fill(b, benchN, nil)
	tb.Sweep(t0, 2*tb.Slots())
	b.ReportAllocs()
	for b.Loop() {
		if tb.Sweep(t0, 1) != 0 {
			b.Fatal("swept a live entry")
		}
	}
	reportSize(b, tb)
}

// BenchmarkSweepBatch is the same per slot passed, amortized over
// Sweep(now, 1024).
func BenchmarkSweepBatch(b *testing.B) {
	tb := fill(b, benchN, nil)
	tb.Sweep(t0, 2*tb.Slots())
	b.ReportAllocs()
	for b.Loop() {
		tb.Sweep(t0, 1024)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/1024, "ns/slot")
	reportSize(b, tb)
}

// BenchmarkSweepRead is a turn of the hand over the same table with every
// run's bound saying it may hold an expired entry, as where connections
// come and go: every slot is read (nothing has expired: nothing is
// removed). Per slot read.
func BenchmarkSweepRead(b *testing.B) {
	tb := fill(b, benchN, nil)
	for i := range tb.due {
		tb.due[i] = expPending
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range tb.due {
			tb.due[i] = expPending // read again on the next turn
		}
		tb.Sweep(t0, tb.Slots())
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/float64(tb.Slots()), "ns/slot")
	reportSize(b, tb)
}

// BenchmarkSweepExpired is the cost per removed entry (backward shift
// included) when the hand meets a table of 1M entries that all expired.
func BenchmarkSweepExpired(b *testing.B) {
	tb := fill(b, benchN, nil)
	later := t0 + int64(2*benchN)*int64(time.Second)
	removed, round := 0, 0
	b.ReportAllocs()
	for b.Loop() {
		if tb.Len() == 0 {
			b.StopTimer()
			round++
			for i := range benchN {
				k := benchKey(round*benchN + i)
				e, err := tb.Insert(&k, t0)
				if err != nil && !errors.Is(err, ErrExists) {
					b.Fatal(err)
				}
				tb.SetTimeout(e, t0, time.Second)
			}
			b.StartTimer()
		}
		removed += tb.Sweep(later, 1)
	}
	if removed > 0 {
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(removed), "ns/removed")
	}
	reportSize(b, tb)
}

// BenchmarkLookupBatch looks up 64 scattered keys per op, as the forwarder
// does with a batch of frames: without prefetching, with the whole batch
// prefetched first (the forwarder's way), and with each key prefetched
// `ahead` lookups before its own; ns/key compares with BenchmarkLookupHit.
// A lookup does almost no work here, so the pipelined row shows how many
// misses overlap, not how well they hide behind work.
func BenchmarkLookupBatch(b *testing.B) {
	tb := fill(b, benchN, nil)
	const batch = 64
	for _, ahead := range []int{0, batch, 8} {
		b.Run(fmt.Sprintf("ahead=%d", ahead), func(b *testing.B) {
			var keys [batch]Key
			b.ReportAllocs()
			i, keysDone := 0, 0
			for b.Loop() {
				for j := range keys {
					keys[j] = benchKey(perm(i))
					i++
					if i == benchN {
						i = 0
					}
				}
				for j := range min(ahead, batch) {
					tb.PrefetchKey(&keys[j])
				}
				for j := range keys {
					if ahead > 0 && j+ahead < batch {
						tb.PrefetchKey(&keys[j+ahead])
					}
					if tb.Lookup(&keys[j], t0) == nil {
						b.Fatal("miss")
					}
				}
				keysDone += len(keys)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(keysDone), "ns/key")
		})
	}
}

// BenchmarkSweepSparse is Sweep(now, 4096) over a table sized for 1M
// entries that holds 256 (the rest in the kernel's flows, or a quiet
// hour): the idle sweeper's cost per call, beside BenchmarkSweepBatch's
// full table. Runs without an entry are skipped unread.
func BenchmarkSweepSparse(b *testing.B) {
	tb, err := New(Options{Max: benchN})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 256 {
		k := benchKey(i)
		e, err := tb.Insert(&k, t0)
		if err != nil {
			b.Fatal(err)
		}
		tb.SetTimeout(e, t0, time.Hour)
	}
	b.ReportAllocs()
	for b.Loop() {
		tb.Sweep(t0, 4096)
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/4096, "ns/slot")
}

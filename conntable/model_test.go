package conntable

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// opReader hands out the bytes that drive a model run; it returns 0 once
// exhausted and reports so, which ends the run.
type opReader struct {
	b []byte
	i int
}

func (r *opReader) done() bool { return r.i >= len(r.b) }

func (r *opReader) next() byte {
	if r.i >= len(r.b) {
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// modelEntry is what the Go-map model knows about a key in the table.
type modelEntry struct {
	expires uint32 // same units as Entry.expires
	service uint16
}

// model runs a byte-driven op sequence against both a Table and a map and
// reports the first disagreement. The map holds every entry the table should
// still contain (live or expired but not yet reclaimed); OnExpire removes
// from it, so exactly-once is checked at every call.
type model struct {
	tb       *Table
	entries  map[Key]modelEntry
	keys     []Key
	now      int64
	deleting *Key // the key Delete may remove while live
	inserted int
	expired  int
	err      error // first failure seen inside OnExpire
	// With evict, entries of an odd service are Evictable: Insert may
	// remove them live (only Insert, only them), and Evicted counts them.
	evict     bool
	inserting bool
	evicted   int
}

// evictable is the model's Options.Evictable.
func evictable(e *Entry) bool { return e.Service%2 == 1 }

// newModel makes a model over a table for max entries whose ops pick
// among nkeys keys: 37 addresses in both kinds and protocols (at most 148
// distinct keys), or with wide that many distinct addresses, so that
// tables of a few hundred entries fill too.
func newModel(max int, seed uint64, nkeys int, wide bool) (*model, error) {
	m := &model{entries: map[Key]modelEntry{}, now: t0, evict: seed%2 == 1}
	opts := Options{Max: max, Seed: seed, OnExpire: m.onExpire}
	if m.evict {
		opts.Evictable = evictable
	}
	tb, err := New(opts)
	if err != nil {
		return nil, err
	}
	// Runs of 1 to 8 slots: Sweep's skipping and the per-run counts
	// see many boundaries even in a table of a few dozen slots.
	tb.setLiveShift(uint8(seed % 4))
	m.tb = tb
	for i := range nkeys {
		k := testKey(i % 37)
		k.Kind = uint8(i/37) & 1
		k.Proto = 6 + 11*uint8(i/74&1)
		if wide {
			k = testKey(i * 7919)
			k.Kind = uint8(i & 1)
		}
		m.keys = append(m.keys, k)
	}
	return m, nil
}

func (m *model) failf(format string, args ...any) {
	if m.err == nil {
		m.err = fmt.Errorf(format, args...)
	}
}

func (m *model) onExpire(e *Entry) {
	me, ok := m.entries[e.Key]
	switch {
	case !ok:
		m.failf("OnExpire for %v: not in table (twice, or never inserted)", e.Key)
	case m.deleting == nil || *m.deleting != e.Key:
		if !e.expiredAt(nowSeconds(m.now)) && m.evict && m.inserting && evictable(e) {
			m.evicted++
		} else if !e.expiredAt(nowSeconds(m.now)) {
			m.failf("OnExpire for live %v (expires %d, now %d): evicted", e.Key, e.expires, m.now)
		}
		if me.expires != e.expires || me.service != e.Service {
			m.failf("OnExpire entry %+v, model %+v", *e, me)
		}
	}
	delete(m.entries, e.Key)
	m.expired++
}

func (m *model) live(k Key) (modelEntry, bool) {
	me, ok := m.entries[k]
	return me, ok && uint64(me.expires) > nowSeconds(m.now)
}

func (m *model) liveCount() int {
	n := 0
	for k := range m.entries {
		if _, ok := m.live(k); ok {
			n++
		}
	}
	return n
}

// step performs one op read from r.
func (m *model) step(r *opReader) error {
	op := r.next()
	k := m.keys[int(r.next())%len(m.keys)]
	arg := r.next()
	switch op % 8 {
	case 0, 1: // lookup, maybe refresh
		e := m.tb.Lookup(&k, m.now)
		me, live := m.live(k)
		if live != (e != nil) {
			return fmt.Errorf("Lookup %v: found %v, model live %v", k, e != nil, live)
		}
		if _, still := m.entries[k]; !live && still {
			return fmt.Errorf("Lookup %v: expired entry not removed", k)
		}
		if e != nil {
			if e.Key != k || e.Service != me.service {
				return fmt.Errorf("Lookup %v: got %+v, model %+v", k, *e, me)
			}
			if op%8 == 1 {
				// Down to -4 s: a timeout brought forward, to the past too.
				d := time.Duration(int(arg%16)-4) * time.Second
				m.tb.SetTimeout(e, m.now, d)
				m.entries[k] = modelEntry{expirySeconds(m.now, d), me.service}
			}
		}
	case 2, 3: // insert with timeout; pending (no SetTimeout) sometimes
		me, live := m.live(k)
		m.inserting = true
		e, err := m.tb.Insert(&k, m.now)
		m.inserting = false
		if uint64(m.evicted) != m.tb.Evicted() {
			return fmt.Errorf("Insert %v: Evicted %d, model %d", k, m.tb.Evicted(), m.evicted)
		}
		switch {
		case live:
			if !errors.Is(err, ErrExists) || e == nil || e.Service != me.service {
				return fmt.Errorf("Insert of live %v: %v, %v", k, e, err)
			}
		case errors.Is(err, ErrFull):
			if m.tb.Len() != m.tb.Cap() || len(m.entries) != m.tb.Cap() {
				return fmt.Errorf("ErrFull with Len %d, model %d, Max %d", m.tb.Len(), len(m.entries), m.tb.Cap())
			}
			// A table no larger than the eviction scan is examined
			// whole: ErrFull then means nothing in it had expired and
			// nothing was evictable (drop_entry refused a new entry
			// while it could have made room).
			if m.evict && m.tb.Slots() <= evictScanMax {
				for mk, me := range m.entries {
					if _, live := m.live(mk); !live || me.service%2 == 1 {
						return fmt.Errorf("ErrFull for %v while %v (expires %d, service %d, now %d) could go", k, mk, me.expires, me.service, m.now)
					}
				}
			}
		case err != nil:
			return fmt.Errorf("Insert %v: %v", k, err)
		default:
			if _, still := m.entries[k]; still {
				return fmt.Errorf("Insert %v: expired old entry not removed", k)
			}
			if *e != (Entry{Key: k, expires: expPending}) {
				return fmt.Errorf("Insert %v: new entry not zeroed: %+v", k, *e)
			}
			m.inserted++
			me := modelEntry{expires: expPending, service: uint16(arg) * 7}
			e.Service = me.service
			if op%8 == 2 || arg&0x80 == 0 {
				d := time.Duration(arg%32) * time.Second
				m.tb.SetTimeout(e, m.now, d)
				me.expires = expirySeconds(m.now, d)
			}
			m.entries[k] = me
		}
	case 4: // delete
		if e := m.tb.Lookup(&k, m.now); e != nil {
			m.deleting = &k
			m.tb.Delete(e)
			m.deleting = nil
			if _, still := m.entries[k]; still {
				return fmt.Errorf("Delete %v: still in model (OnExpire not called)", k)
			}
		}
		if m.tb.Lookup(&k, m.now) != nil {
			return fmt.Errorf("Lookup %v after Delete: found", k)
		}
	case 5: // sweep a few slots
		m.tb.Sweep(m.now, int(arg%8))
	case 6: // time passes; now and then the clock steps back
		if arg&0xc0 == 0xc0 {
			m.now -= int64(arg&0x3f) * int64(time.Second) / 8
		} else {
			m.now += int64(arg) * int64(time.Second) / 8
		}
	case 7: // full turn of the hand: exactly the live entries remain
		m.tb.Sweep(m.now, 2*m.tb.Slots()+int(arg))
		if want := m.liveCount(); m.tb.Len() != want || len(m.entries) != want {
			return fmt.Errorf("after full sweep: Len %d, model %d, live %d", m.tb.Len(), len(m.entries), want)
		}
	}
	if m.err != nil {
		return m.err
	}
	if m.tb.Len() != len(m.entries) {
		return fmt.Errorf("op %d: Len %d, model %d", op%8, m.tb.Len(), len(m.entries))
	}
	return m.tb.check()
}

// modelEvictions totals the evictions of every model run, so TestModel can
// tell that eviction was exercised.
var modelEvictions int

// finish expires everything and checks each inserted entry left exactly
// once. It does so at the latest clock there is, far past what an
// entry's uint32 of seconds holds: such a clock expires everything and
// must break nothing (nowSeconds).
func (m *model) finish() error {
	modelEvictions += m.evicted
	m.now = math.MaxInt64
	m.tb.Sweep(m.now, 2*m.tb.Slots())
	if m.err != nil {
		return m.err
	}
	if m.tb.Len() != 0 || len(m.entries) != 0 {
		return fmt.Errorf("after final sweep: Len %d, model %d", m.tb.Len(), len(m.entries))
	}
	if m.inserted != m.expired {
		return fmt.Errorf("inserted %d entries, OnExpire called %d times", m.inserted, m.expired)
	}
	return nil
}

// runModel drives a model from b: the first two bytes pick Max (1..64,
// or with large 1..400 over 256 keys) and the hash seed, the rest are
// ops.
func runModel(b []byte, large bool) error {
	r := &opReader{b: b}
	max := 1 + int(r.next())%64
	nkeys := 2 * 37 * 2
	if large {
		max, nkeys = 1+int(b[0])*400/256, 256
	}
	seed := uint64(r.next())
	m, err := newModel(max, seed, nkeys, large)
	if err != nil {
		return err
	}
	for n := 0; !r.done(); n++ {
		if err := m.step(r); err != nil {
			return fmt.Errorf("Max %d seed %d step %d: %w", max, seed, n, err)
		}
	}
	return m.finish()
}

// TestModel runs random op sequences against the model: many short runs
// over small tables (runs of slots, wrap-around and ErrFull on every
// few ops), then a few longer ones over tables of up to 400 entries and
// 256 keys (many runs of slots, long probe sequences; each op checks the
// whole table, so these cost the most per op).
func TestModel(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seeds, ops int
		large      bool
	}{
		{"small", 300, 3000, false},
		{"large", 24, 10000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds := tc.seeds
			if testing.Short() {
				seeds = max(1, seeds/10)
			}
			for s := range seeds {
				rng := rand.New(rand.NewPCG(uint64(s), 0x636f6e6e))
				b := make([]byte, 3*tc.ops)
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				// Vary the op mix per seed: some runs insert far more
				// than they expire, to sit at ErrFull; some advance
				// time often.
				if s%3 == 0 {
					for i := 2; i < len(b); i += 3 {
						if b[i]%8 == 6 || b[i]%8 == 7 {
							b[i] = 2
						}
					}
				}
				if err := runModel(b, tc.large); err != nil {
					t.Fatalf("seed %d: %v", s, err)
				}
			}
		})
	}
	if modelEvictions == 0 {
		t.Fatal("no model run evicted an entry: Evictable untested")
	}
	t.Logf("%d evictions", modelEvictions)
}

func FuzzModel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 2, 1, 5, 0, 1, 0})
	f.Add([]byte{3, 7, 2, 1, 5, 2, 2, 5, 2, 3, 5, 2, 4, 5, 6, 0, 255, 7, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 0, 2, 0, 9, 2, 1, 9, 2, 2, 9, 6, 0, 200, 5, 0, 3, 2, 3, 9})
	f.Add([]byte("\x10\x01\x02\x00\x0a\x02\x25\x0a\x02\x4a\x0a\x04\x00\x00\x06\x00\x80\x07\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 3*4096 {
			b = b[:3*4096]
		}
		if err := runModel(b, false); err != nil {
			t.Fatal(err)
		}
	})
}

package conntable

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrFull is returned by Insert when the table already holds Options.Max
// entries, none on the new key's probe run (nor within a short extra
// sweep) had expired, and no entry near the eviction hand was one
// Options.Evictable allows to evict. Other live entries are never evicted.
var ErrFull = errors.New("conntable: table full")

// ErrExists is returned by Insert when a live entry with the same key is
// already in the table; Insert also returns that entry. Callers normally
// Lookup first, so this signals a logic error or a race they lost.
var ErrExists = errors.New("conntable: key exists")

// ErrNilKey is returned by Insert for a nil key.
var ErrNilKey = errors.New("conntable: nil key")

// ErrBadOptions is returned by New for options it cannot build a table from.
var ErrBadOptions = errors.New("conntable: bad options")

// MaxEntries is the largest Options.Max New accepts (about 17 GB of slots).
const MaxEntries = 1 << 28

// fullSweepBudget is how many extra slots Insert sweeps when the table is
// full before giving up with ErrFull (a run of slots where nothing can
// have expired counts whole, unread: see Sweep): enough to find stale entries a
// lagging periodic Sweep left behind, small enough that a SYN flood against
// a table full of live flows stays cheap per dropped packet.
const fullSweepBudget = 32

// evictScan is how many slots Insert examines from the eviction hand when
// the table is full and nothing expired: it evicts the approved entry with
// the earliest expiry among them (about evictScan*3/4 entries), so
// eviction is bounded work and roughly oldest first.
const evictScan = 32

// evictScanMax bounds the eviction scan when the first evictScan slots
// hold nothing to evict (a table mostly of entries Evictable refuses): it
// goes on until it finds one, up to this many slots (12 KiB).
const evictScanMax = 256

// Options configure a Table.
type Options struct {
	// Max is the most entries (connections plus templates) the table holds;
	// Insert beyond it fails with ErrFull. The slot array is sized for it at
	// New and never grows.
	Max int
	// Seed seeds the key hash. 0 is fine and deterministic: replay uses it
	// for repeatable output. A random seed per director makes hash flooding
	// harder for clients who choose their ports.
	Seed uint64
	// OnExpire, if set, is called exactly once for every entry that leaves
	// the table, by expiry (Lookup, Insert probing, Sweep) or by Delete,
	// just before its slot is reused. The entry is still intact. It must not
	// call back into the Table nor keep the pointer.
	OnExpire func(e *Entry)
	// Evictable, if set, lets Insert make room in a full table (drop_entry
	// in IPVS): it is asked about live entries near a rotating eviction
	// hand, and Insert removes the approved one with the earliest expiry
	// (OnExpire is called, and Evicted counts it). An entry it rejects is
	// never evicted. It must not call back into the Table nor keep the
	// pointer. Nil: a full table refuses new keys (ErrFull).
	Evictable func(e *Entry) bool
}

// Table is a bounded open-addressing hash table of Entries. See the package
// documentation for the layout and for how long returned pointers stay valid.
type Table struct {
	slots    []Entry
	nslots   uint64 // len(slots), for the range reduction
	seed     uint64 // seedMix(Options.Seed)
	max      int
	n        int // occupied slots, expired-but-unreclaimed included
	hand     int // Sweep's clock hand
	onExpire func(e *Entry)
	evictOK  func(e *Entry) bool
	ehand    int    // the eviction hand
	evicted  uint64 // entries evicted to make room
	// live counts the occupied slots of each run of 1<<liveShift slots,
	// so that Sweep skips the empty ones without reading them: a table
	// sized for a million connections that holds a few hundred (the
	// rest in the kernel's flows, or a quiet hour) is otherwise read
	// whole, 64 MB, every idle pass.
	live      []uint16
	liveShift uint8 // runs of 1<<liveShift slots: liveRunShift (tests make them smaller)
	// due is, for each run of slots (as live), a bound no later than the
	// expiry of any of its entries (unix seconds), so that Sweep skips,
	// unread, a run where nothing can have expired yet: with a million
	// long-lived flows it otherwise reads 8 slots (6 cache lines) for
	// every packet to find nothing, more memory traffic than the
	// lookups (BenchmarkExistingFlowBatch). Starting at 0, every run is
	// read on the first turn. Kept by: Insert (expPending: a new entry
	// may stay pending, and pending is expired), SetTimeout (when it
	// brings an entry's expiry forward), remove (an entry moved into
	// another slot), and Sweep, which rebuilds a run's bound from the
	// entries it reads there (sweepLeast) and what changed meanwhile.
	due []uint32
	// inRun: the hand is inside a run Sweep began to read (its due
	// was reset, to be rebuilt when the hand leaves it); sweepLeast is
	// the least expires-1 of the entries read there so far.
	inRun      bool
	sweepLeast uint32
}

// liveRunShift sizes Table.live's runs: 256 slots (12 KiB). Small enough
// that a few hundred entries scattered over a table for a million leave
// most runs empty (with 4096-slot runs, 256 entries left half of them
// occupied: the sweep read half the table still).
const liveRunShift = 8

// New returns an empty table for opts.Max entries. It allocates the whole
// slot array up front (Slots()*48 bytes); nothing allocates afterwards.
func New(opts Options) (*Table, error) {
	if opts.Max <= 0 || opts.Max > MaxEntries {
		return nil, fmt.Errorf("%w: Max = %d, want 1..%d", ErrBadOptions, opts.Max, MaxEntries)
	}
	slots := allocSlots(slotCount(opts.Max))
	return &Table{
		slots:     slots,
		live:      make([]uint16, (len(slots)+1<<liveRunShift-1)>>liveRunShift),
		due:       make([]uint32, (len(slots)+1<<liveRunShift-1)>>liveRunShift),
		liveShift: liveRunShift,
		nslots:    uint64(len(slots)),
		seed:      seedMix(opts.Seed),
		max:       opts.Max,
		onExpire:  opts.OnExpire,
		evictOK:   opts.Evictable,
	}, nil
}

// slotCount sizes the slot array so that at max entries the load factor is
// 0.75 (48-byte slots: 64 bytes per entry). Rounding down keeps the bytes
// per entry at or under 64; at least one slot always stays empty so every
// probe run ends.
func slotCount(max int) int {
	n := max + max/3
	if n <= max {
		n = max + 1
	}
	return n
}

// Len returns the number of entries in the table, including expired entries
// not yet reclaimed (they still occupy a slot and count against Max).
func (t *Table) Len() int { return t.n }

// Cap returns Options.Max, the most entries the table holds.
func (t *Table) Cap() int { return t.max }

// Evicted returns how many live entries Insert evicted (Options.Evictable)
// to make room since New.
func (t *Table) Evicted() uint64 { return t.evicted }

// Slots returns the size of the slot array (about Cap*4/3).
func (t *Table) Slots() int { return len(t.slots) }

// Bytes returns the memory the table occupies: slot array plus header
// (the runs' counts and expiry bounds, 6 bytes per 256 slots, left out).
func (t *Table) Bytes() int {
	return len(t.slots)*int(unsafe.Sizeof(Entry{})) + int(unsafe.Sizeof(*t))
}

// SetTimeout sets e to expire at ceil((now+d)/1s) unix seconds, now in unix
// nanoseconds. d <= 0 still leaves e live until the next whole second. It
// does nothing for a nil e or a pointer to a slot that has since been emptied.
func (t *Table) SetTimeout(e *Entry, now int64, d time.Duration) {
	if e == nil || e.expires == expEmpty {
		return
	}
	old := e.expires
	e.expires = expirySeconds(now, d)
	if e.expires < old { // sooner: the run's bound may be later (a refresh never is)
		if i := t.index(e); i >= 0 {
			t.due[i>>t.liveShift] = min(t.due[i>>t.liveShift], e.expires)
		}
	}
}

// Expires returns when e expires, in unix nanoseconds (a whole second).
// It is 0 for nil or an emptied slot. An entry that was inserted but never
// given a timeout reports 1s after the epoch: already expired.
func (t *Table) Expires(e *Entry) int64 {
	if e == nil {
		return 0
	}
	return int64(e.expires) * int64(time.Second)
}

// Expired reports whether e has expired at now (unix nanoseconds): Lookup
// would treat it as absent. Useful with Range, which yields expired entries
// not yet reclaimed.
func (t *Table) Expired(e *Entry, now int64) bool {
	if e == nil || e.expires == expEmpty {
		return true
	}
	return e.expiredAt(nowSeconds(now))
}

// Range calls fn for every entry in the table, in slot order, until fn
// returns false. It yields expired entries not yet reclaimed too (see
// Expired). For listings, not the hot path: fn must not mutate the table.
func (t *Table) Range(fn func(e *Entry) bool) {
	for i := range t.slots {
		e := &t.slots[i]
		if e.expires == expEmpty {
			continue
		}
		if !fn(e) {
			return
		}
	}
}

// index returns the slot number e points at, or -1 if e does not point at
// the start of one of this table's slots.
func (t *Table) index(e *Entry) int {
	if e == nil || len(t.slots) == 0 {
		return -1
	}
	const size = unsafe.Sizeof(Entry{})
	off := uintptr(unsafe.Pointer(e)) - uintptr(unsafe.Pointer(&t.slots[0]))
	if off%size != 0 || off/size >= uintptr(len(t.slots)) {
		return -1
	}
	return int(off / size)
}

// RangeSlots calls fn for each occupied slot among at least n slots from
// slot from, and returns the slot to continue from (-1 once the end of the
// slot array is reached). It lets a caller walk the table in bounded
// chunks, releasing its lock in between (sync's bulk answer, the
// connection listing). Expired entries not yet reclaimed are yielded too
// (see Expired).
//
// A chunk ends only after an empty slot: past the n slots it goes on to
// the end of the probe run it is in. An entry that was present when the
// walk began and is still there when it ends is then yielded, whatever
// the table did between chunks: entries only ever move backwards
// (remove's backward shift), within their run, never before their home
// slot; the entries after the cursor have their homes after the empty
// slot that ended the chunk before it (no empty slot lies between an
// entry and its home), so no deletion or insertion meanwhile can shift
// one of them behind the cursor. With a fixed n (a walk of 256 slots
// whose last slot held an entry that a deletion then refilled from
// after the cursor) an entry the walk had not reached was shifted
// behind it and never yielded: a bulk copy lacked it
// (TestRangeSlotsChunkBoundaryShift). Entries the walk has yielded may be
// yielded again (a run that wraps from the end of the array to its start
// shifts back across the end), and entries inserted meanwhile may or may
// not be. The extension is a probe run's length, short at the loads the
// table is sized for (0.75 at most: a few slots, tens in the worst runs
// of a million-entry table), so a chunk stays about n slots.
func (t *Table) RangeSlots(from, n int, fn func(e *Entry)) int {
	if from < 0 {
		from = 0
	}
	end := min(from+max(n, 0), len(t.slots))
	for i := from; i < end; i++ {
		if e := &t.slots[i]; e.expires != expEmpty {
			fn(e)
		}
	}
	// To the end of the run the n slots stop in: the last slot read
	// must be empty.
	for end > from && end < len(t.slots) && t.slots[end-1].expires != expEmpty {
		if e := &t.slots[end]; e.expires != expEmpty {
			fn(e)
		}
		end++
	}
	if end >= len(t.slots) {
		return -1
	}
	return end
}

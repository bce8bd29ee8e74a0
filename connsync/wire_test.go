package connsync

import (
	"encoding/hex"
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func sampleEntry() Entry {
	return Entry{Op: OpUpsert, Proto: 6, Kind: 0, State: 2,
		CIP: netip.MustParseAddr("198.18.1.10"), VIP: netip.MustParseAddr("198.18.0.100"), CPort: 40000, VPort: 80,
		SvcPort: 80, Real: netip.MustParseAddr("198.18.0.11"), Timeout: 900 * time.Second}
}

func sampleHeader() Header {
	return Header{Type: TypeUpdate, Sender: netip.MustParseAddr("198.18.0.2"), Epoch: 1, Seq: 2, Time: 3}
}

func seal(t testing.TB, c *Codec, h Header, es ...Entry) []byte {
	b := AppendHeader(make([]byte, 0, MaxDatagram), &h)
	for i := range es {
		var ok bool
		if b, ok = AppendEntry(b, &es[i]); !ok {
			t.Fatal("datagram full")
		}
	}
	return c.Seal(b)
}

// The bytes on the wire, fixed: a change of the format must change
// Version.
func TestGolden(t *testing.T) {
	c, _ := NewCodec(testKey)
	b := seal(t, c, sampleHeader(), sampleEntry())
	const want = "64727379" + "01" + "01" + "0001" + "00000000000000000000ffffc6120002" +
		"0000000000000001" + "0000000000000002" + "0000000000000003" +
		"01060002" + "9c40" + "0050" + "00000000000000000000ffffc612010a" + "00000000000000000000ffffc6120064" +
		"0050" + "00000000000000000000ffffc612000b" + "000dbba0" + "0000"
	got := hex.EncodeToString(b[:len(b)-MACLen])
	if got != want {
		t.Fatalf("wire bytes\n got %s\nwant %s", got, want)
	}
	if len(b) != HeaderLen+EntryLen+MACLen {
		t.Fatalf("length %d", len(b))
	}
	const wantMAC = "491c3439b8decfa30e7d3cfcc9755ad2a4e7861d4c540d045b894a9919784566" // HMAC-SHA256(testKey, the bytes above)
	if m := hex.EncodeToString(b[len(b)-MACLen:]); m != wantMAC {
		t.Fatalf("MAC %s, want %s", m, wantMAC)
	}
}

func TestRoundTrip(t *testing.T) {
	c, _ := NewCodec(testKey)
	e := sampleEntry()
	e6 := e
	e6.CIP, e6.VIP, e6.Real, e6.Op = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::11"), OpEnd
	b := seal(t, c, sampleHeader(), e, e6)
	h, p, err := c.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleHeader()
	want.Count = 2
	if h != want {
		t.Fatalf("header %+v, want %+v", h, want)
	}
	for i, w := range []Entry{e, e6} {
		got, ok := EntryAt(p, i)
		if !ok || got != w {
			t.Fatalf("entry %d: %+v %v, want %+v", i, got, ok, w)
		}
	}
}

// TestRequest: a BulkRequest or BulkDone carries its request's number in
// one record that no connection parser takes for a connection. The
// format is Version 1's: a drlb without it ignores the payload of these
// two types, so it needs no new version.
func TestRequest(t *testing.T) {
	c, _ := NewCodec(testKey)
	for _, typ := range []uint8{TypeBulkRequest, TypeBulkDone} {
		h := sampleHeader()
		h.Type = typ
		b := AppendHeader(make([]byte, 0, MaxDatagram), &h)
		b, ok := AppendRequest(b, 0x0102030405060708)
		if !ok {
			t.Fatal("AppendRequest refused an empty message")
		}
		got, p, err := c.Open(c.Seal(b))
		if err != nil || got.Count != 1 {
			t.Fatalf("type %d: %+v, %v", typ, got, err)
		}
		if want := "03000000" + "0102030405060708" + strings.Repeat("00", EntryLen-12); hex.EncodeToString(p) != want {
			t.Fatalf("record %x, want %s", p, want)
		}
		if id, ok := RequestOf(p); !ok || id != 0x0102030405060708 {
			t.Fatalf("RequestOf: %x %t", id, ok)
		}
		if _, ok := EntryAt(p, 0); ok {
			t.Fatal("EntryAt took the request record for a connection")
		}
	}
	// No record (a peer without it), or a connection: no number.
	if _, ok := RequestOf(nil); ok {
		t.Error("RequestOf(nil) found a number")
	}
	_, conn, _ := c.Open(seal(t, c, sampleHeader(), sampleEntry()))
	if _, ok := RequestOf(conn); ok {
		t.Error("RequestOf took a connection for a request number")
	}
	// A message already full takes no record.
	h := sampleHeader()
	full := AppendHeader(make([]byte, 0, MaxDatagram), &h)
	for e := sampleEntry(); ; {
		var ok bool
		if full, ok = AppendEntry(full, &e); !ok {
			break
		}
	}
	if _, ok := AppendRequest(full, 1); ok {
		t.Error("AppendRequest went past MaxDatagram")
	}
}

// TestBulkDoneCount: a BulkDone says how many entries its answer
// carried, in its request record's spare bytes, so that the requester
// can tell an answer that lost a datagram from a complete one. Version 1
// still: a drlb without the count reads the request number alone, and
// one's BulkDone (no count) reads as such, not as a count of 0.
func TestBulkDoneCount(t *testing.T) {
	c, _ := NewCodec(testKey)
	h := sampleHeader()
	h.Type = TypeBulkDone
	b, ok := AppendBulkDone(AppendHeader(make([]byte, 0, MaxDatagram), &h), 0x0102030405060708, 0x1122334455)
	if !ok {
		t.Fatal("AppendBulkDone refused an empty message")
	}
	got, p, err := c.Open(c.Seal(b))
	if err != nil || got.Count != 1 || got.Type != TypeBulkDone {
		t.Fatalf("%+v, %v", got, err)
	}
	if want := "03010000" + "0102030405060708" + "0000001122334455" + strings.Repeat("00", EntryLen-20); hex.EncodeToString(p) != want {
		t.Fatalf("record %x, want %s", p, want)
	}
	if e := BulkEndOf(p); e != (BulkEnd{Request: 0x0102030405060708, HasRequest: true, Entries: 0x1122334455, HasEntries: true}) {
		t.Fatalf("BulkEndOf: %+v", e)
	}
	// What a drlb without the count reads of it: the number, as before.
	if id, ok := RequestOf(p); !ok || id != 0x0102030405060708 {
		t.Fatalf("RequestOf: %x %t", id, ok)
	}
	if _, ok := EntryAt(p, 0); ok {
		t.Fatal("EntryAt took the BulkDone record for a connection")
	}
	// A BulkDone of a drlb without the count, even of 0 entries.
	old, _ := AppendRequest(AppendHeader(make([]byte, 0, MaxDatagram), &h), 9)
	_, p, _ = c.Open(c.Seal(old))
	if e := BulkEndOf(p); e != (BulkEnd{Request: 9, HasRequest: true}) {
		t.Fatalf("BulkEndOf an old BulkDone: %+v", e)
	}
	if e := BulkEndOf(nil); e != (BulkEnd{}) {
		t.Fatalf("BulkEndOf an empty BulkDone: %+v", e)
	}
	if _, ok := AppendBulkDone(make([]byte, MaxDatagram), 1, 1); ok {
		t.Error("AppendBulkDone went past MaxDatagram")
	}
}

// TestRestamp: a message's sequence number and time set after its
// entries are what the receiver reads, and nothing else changes.
func TestRestamp(t *testing.T) {
	c, _ := NewCodec(testKey)
	h := sampleHeader()
	b := AppendHeader(nil, &h)
	b, _ = AppendEntry(b, ptr(sampleEntry()))
	Restamp(b, 4242, 1_700_000_000_123)
	got, p, err := c.Open(c.Seal(b))
	if err != nil {
		t.Fatal(err)
	}
	want := h
	want.Seq, want.Time, want.Count = 4242, 1_700_000_000_123, 1
	if got != want {
		t.Errorf("header %+v, want %+v", got, want)
	}
	if e, ok := EntryAt(p, 0); !ok || e != sampleEntry() {
		t.Errorf("entry %+v %v", e, ok)
	}
	Restamp(b[:HeaderLen-1], 1, 1) // too short: left alone, no panic
}

func ptr[T any](v T) *T { return &v }

func TestFull(t *testing.T) {
	h := sampleHeader()
	b := AppendHeader(nil, &h)
	e := sampleEntry()
	n := 0
	for ok := true; ok; n++ {
		b, ok = AppendEntry(b, &e)
	}
	if n-1 != MaxEntries || MaxEntries < 20 {
		t.Fatalf("%d entries fit, MaxEntries %d", n-1, MaxEntries)
	}
	c, _ := NewCodec(testKey)
	if b = c.Seal(b); len(b) > MaxDatagram {
		t.Fatalf("datagram of %d bytes", len(b))
	}
}

// A message signed with another key is refused, as is any change to a
// signed one.
func TestOtherKey(t *testing.T) {
	c, _ := NewCodec(testKey)
	other, _ := NewCodec([]byte("another key, long enough for it"))
	b := seal(t, other, sampleHeader(), sampleEntry())
	if _, _, err := c.Open(b); !errors.Is(err, ErrMAC) {
		t.Fatalf("other key: %v", err)
	}
	b = seal(t, c, sampleHeader(), sampleEntry())
	for i := range b {
		if i == 4 {
			continue // version: ErrVersion
		}
		b[i] ^= 0x01
		if _, _, err := c.Open(b); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
		b[i] ^= 0x01
	}
	if _, err := NewCodec([]byte("short")); !errors.Is(err, ErrKey) {
		t.Fatalf("short key: %v", err)
	}
}

func TestWindow(t *testing.T) {
	now := time.Now().UnixNano()
	var w Window
	h := Header{Epoch: 10, Seq: 100, Time: now}
	check := func(epoch, seq uint64, at int64, want bool) {
		t.Helper()
		h.Epoch, h.Seq, h.Time = epoch, seq, at
		if got := w.Check(&h, now); got != want {
			t.Fatalf("epoch %d seq %d time %d: %v, want %v", epoch, seq, at-now, got, want)
		}
	}
	check(10, 100, now, true)
	check(10, 100, now, false) // duplicate
	check(10, 102, now, true)
	check(10, 101, now, true) // reordered, within the window
	check(10, 101, now, false)
	check(10, 102-windowBits+1, now, true)
	check(10, 102-windowBits, now, false) // below the window
	check(10, 500, now, true)
	check(10, 499, now, true)
	check(10, 102, now, false)
	check(9, 1000, now, false)                // an older epoch: the sender restarted since
	check(11, 1, now, true)                   // restarted: sequence afresh
	check(11, 2, now-int64(2*MaxSkew), false) // stale
	check(11, 3, now+int64(2*MaxSkew), false) // from the future
	check(11, 4, now-int64(MaxSkew)/2, true)
}

func TestOpenAllocs(t *testing.T) {
	c, _ := NewCodec(testKey)
	b := seal(t, c, sampleHeader(), sampleEntry())
	var w Window
	n := testing.AllocsPerRun(100, func() {
		h, p, err := c.Open(b)
		if err != nil {
			t.Fatal(err)
		}
		_ = w.Check(&h, 3)
		_, _ = EntryAt(p, 0)
	})
	if n != 0 {
		t.Fatalf("Open allocates %v times", n)
	}
}

func FuzzOpen(f *testing.F) {
	c, _ := NewCodec(testKey)
	f.Add(seal(f, c, sampleHeader(), sampleEntry()))
	f.Add([]byte("drsy"))
	f.Add(make([]byte, HeaderLen+MACLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := c.Open(b)
		if err != nil {
			return
		}
		for i := 0; i < h.Count+1; i++ {
			_, _ = EntryAt(p, i)
		}
		_, _ = RequestOf(p)
		_ = BulkEndOf(p)
	})
}

// TestEntryAtOutOfRange: an index past the payload's last entry is
// refused, however large; (i+1)*EntryLen wrapped for i near MaxInt/64
// and passed the bounds check into a panic.
func TestEntryAtOutOfRange(t *testing.T) {
	// Two valid entries: an index that wrapped must not read them.
	c, _ := NewCodec(testKey)
	_, two, err := c.Open(seal(t, c, sampleHeader(), sampleEntry(), sampleEntry()))
	if err != nil || len(two) != 2*EntryLen {
		t.Fatalf("Open: %d bytes, %v", len(two), err)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		i       int
	}{
		{"negative", two, -1},
		{"one past the end", two, 2},
		{"partial entry", two[:EntryLen+EntryLen/2], 1},
		{"empty payload", nil, 0},
		{"(i+1)*EntryLen wraps to negative", two, 1 << 57},
		{"(i+1)*EntryLen wraps to zero", two, 1<<58 - 1},
		{"(i+1)*EntryLen wraps to the first entry's end", two, 1 << 58},
		{"MaxInt", two, math.MaxInt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("EntryAt(%d bytes, %d) panics: %v", len(tc.payload), tc.i, r)
				}
			}()
			if e, ok := EntryAt(tc.payload, tc.i); ok || e != (Entry{}) {
				t.Errorf("EntryAt(%d bytes, %d) = %+v, %v; want nothing, false", len(tc.payload), tc.i, e, ok)
			}
		})
	}
}

// FuzzEntries parses payloads that passed the MAC (the parser behind it
// must hold for anything a key holder sends).
func FuzzEntries(f *testing.F) {
	f.Add(make([]byte, EntryLen), 0)
	// Indexes whose (i+1)*EntryLen wraps: the seeds reach them in every
	// go test run, not only when the fuzzer happens on them.
	f.Add(make([]byte, EntryLen), 1<<57)
	f.Add(make([]byte, EntryLen), math.MaxInt)
	f.Add(make([]byte, EntryLen), -1)
	f.Fuzz(func(t *testing.T, p []byte, i int) {
		_, _ = EntryAt(p, i)
		_, _ = RequestOf(p)
		if e := BulkEndOf(p); e.HasEntries && !e.HasRequest {
			t.Fatalf("a count without a request number: %+v", e)
		}
	})
}

// TestWindowAfterClockStep: a peer restarted with its clock behind its
// previous start (an older epoch) is taken as restarted once the newest
// epoch has been silent for longer than MaxSkew; before that, an older
// epoch is still a replay.
func TestWindowAfterClockStep(t *testing.T) {
	var w Window
	t0 := time.Now().UnixNano()
	if !w.Check(&Header{Epoch: uint64(t0), Seq: 7, Time: t0}, t0) {
		t.Fatal("first message refused")
	}
	soon := t0 + int64(time.Second)
	earlier := uint64(t0 - int64(time.Hour))
	if w.Check(&Header{Epoch: earlier, Seq: 1, Time: soon}, soon) {
		t.Error("an older epoch accepted while the newest is alive")
	}
	// Ten minutes later: the peer restarted with its clock an hour
	// behind, then its clock was set right.
	now := t0 + int64(10*time.Minute)
	for seq := uint64(1); seq <= 3; seq++ {
		if !w.Check(&Header{Epoch: earlier, Seq: seq, Time: now}, now) {
			t.Fatalf("message %d of the restarted peer refused as a replay", seq)
		}
		now += int64(time.Second)
	}
	if w.Check(&Header{Epoch: earlier, Seq: 2, Time: now}, now) {
		t.Error("a replay of the restarted peer's message accepted")
	}
}

// FuzzOpenSealed: FuzzOpen's inputs almost never pass the MAC, so what
// Open, EntryAt and BulkEndOf read after it went unfuzzed. Here the
// fuzzer's bytes are sealed first: nothing may panic, an accepted
// message's payload is exactly its count's entries, and an entry
// EntryAt accepts encodes back to the same bytes (reserved ones aside).
func FuzzOpenSealed(f *testing.F) {
	c, _ := NewCodec(testKey)
	one := seal(f, c, sampleHeader(), sampleEntry())
	f.Add(one[:len(one)-MACLen])
	done, _ := AppendBulkDone(AppendHeader(nil, &Header{Type: TypeBulkDone}), 7, 20)
	f.Add(done)
	f.Add(make([]byte, HeaderLen))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, p, err := c.Open(c.Seal(append([]byte(nil), body...)))
		if err != nil {
			return
		}
		if len(p) != h.Count*EntryLen {
			t.Fatalf("count %d, %d payload bytes", h.Count, len(p))
		}
		for i := -1; i <= h.Count; i++ {
			e, ok := EntryAt(p, i)
			if !ok {
				continue
			}
			if i < 0 || i >= h.Count {
				t.Fatalf("entry %d of %d accepted", i, h.Count)
			}
			b, _ := AppendEntry(AppendHeader(nil, &h), &e)
			raw := p[i*EntryLen : (i+1)*EntryLen]
			// Addresses are unmapped on the way in and mapped again on
			// the way out: the same 16 bytes either way.
			if got := b[HeaderLen:]; string(got[:EntryLen-2]) != string(raw[:EntryLen-2]) {
				t.Fatalf("entry %d: %x encodes back as %x", i, raw, got)
			}
		}
		if e := BulkEndOf(p); e.HasEntries && !e.HasRequest {
			t.Fatalf("a count without a request number: %+v", e)
		}
	})
}

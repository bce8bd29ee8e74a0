package link

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// testReadAheadPorts writes frames to the VIP through pa and reads them
// from pd, a batch at a time, each next batch with ra while the last is
// held.
func testReadAheadPorts(t *testing.T, pa, pd Port, ra ReadAheader) {
	const batch, total = 4, 12
	var out []Frame
	for i := range total {
		udp := binary.BigEndian.AppendUint16(nil, 40000)
		udp = append(udp, 0, 9, 0, 16, 0, 0)
		udp = fmt.Appendf(udp, "ahead-%02d", i)
		src := netip.MustParseAddr("198.18.0.1")
		out = append(out, Frame{Data: ether(-1, etherTypeIPv4, ipv4(17, src, vip4, udp))})
	}
	if n, err := pa.WriteBatch(out); n != len(out) || err != nil {
		t.Fatalf("WriteBatch = %d, %v; want %d", n, err, len(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, next := make([]Frame, batch), make([]Frame, batch)
	n, err := pd.ReadBatch(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	check := func(fs []Frame, what string) {
		t.Helper()
		for _, f := range fs {
			if want := fmt.Sprintf("ahead-%02d", seen); !bytes.Contains(f.Data, []byte(want)) {
				t.Fatalf("%s: frame % x, want marker %s", what, f.Data, want)
			}
			seen++
		}
	}
	check(cur[:n], "first ReadBatch")
	for seen < total {
		held := make([][]byte, n)
		for i := range held {
			held[i] = bytes.Clone(cur[i].Data)
		}
		m := 0
		// The writer's frames are queued by now (veth delivers in the
		// sending call); a few tries only guard a slow queue.
		for try := 0; m == 0 && try < 1000; try++ {
			if m, err = ra.TryReadBatch(next); err != nil {
				t.Fatal(err)
			}
			if m == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if m == 0 {
			t.Fatalf("TryReadBatch found nothing after %d of %d frames", seen, total)
		}
		for i := range held {
			if !bytes.Equal(cur[i].Data, held[i]) {
				t.Fatalf("frame %d of the held batch changed while the next was read: % x, was % x", i, cur[i].Data, held[i])
			}
		}
		check(next[:m], "TryReadBatch")
		cur, next, n = next, cur, m
	}
	start := time.Now()
	if m, err := ra.TryReadBatch(next); m != 0 || err != nil {
		t.Fatalf("TryReadBatch with nothing queued = %d, %v; want 0, nil", m, err)
	}
	if d := time.Since(start); d > 20*time.Millisecond {
		t.Logf("TryReadBatch with nothing queued took %v (a busy host?)", d)
	}
}

// TestPipeReadAhead: a Pipe is a ReadAheader, as the director's tests
// need it to be for the read-ahead loop to run.
func TestPipeReadAhead(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	ra, ok := b.(ReadAheader)
	if !ok {
		t.Fatal("a Pipe end is no ReadAheader")
	}
	testReadAheadPorts(t, a, b, ra)

	// The writer reuses the buffers of released slots: frames written
	// while the reader holds two batches must not land in the first.
	write := func(marker byte) {
		out := make([]Frame, 4)
		for i := range out {
			out[i].Data = bytes.Repeat([]byte{marker}, 60)
		}
		if n, err := a.WriteBatch(out); n != len(out) || err != nil {
			t.Fatalf("WriteBatch = %d, %v", n, err)
		}
	}
	write('x')
	first, second := make([]Frame, 2), make([]Frame, 2)
	if n, err := b.ReadBatch(context.Background(), first); n != 2 || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if n, err := ra.TryReadBatch(second); n != 2 || err != nil {
		t.Fatalf("TryReadBatch = %d, %v", n, err)
	}
	write('y')
	write('z')
	for i, f := range first {
		if !bytes.Equal(f.Data, bytes.Repeat([]byte{'x'}, 60)) {
			t.Fatalf("held frame %d was overwritten while the next batch was out: %q", i, f.Data)
		}
	}
}

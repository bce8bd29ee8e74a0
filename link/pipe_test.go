package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// testFrames returns n distinct frames (marked with their index) and offloads.
func testFrames(n int) []Frame {
	fs := NewFrames(n)
	for i := range fs {
		fs[i].Data = append(fs[i].Data[:0], ether(-1, etherTypeIPv4, ipv4(17, cip4, vip4, []byte(fmt.Sprintf("frame %d", i))))...)
		if i%2 == 1 {
			fs[i].Offload = Offload{CsumPartial: true, CsumStart: 34, CsumOffset: 6, GSOType: GSOUDPL4, GSOSize: uint16(i), HdrLen: 42}
		}
	}
	return fs
}

func TestPipeRoundTrip(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	ctx := context.Background()
	for _, dir := range []struct {
		name     string
		from, to Port
	}{{"a to b", a, b}, {"b to a", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			want := testFrames(70)
			if n, err := dir.from.WriteBatch(want); n != len(want) || err != nil {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			got := NewFrames(32)
			for i := 0; i < len(want); {
				n, err := dir.to.ReadBatch(ctx, got)
				if err != nil || n == 0 {
					t.Fatalf("ReadBatch = %d, %v", n, err)
				}
				for _, f := range got[:n] {
					if !bytes.Equal(f.Data, want[i].Data) || f.Offload != want[i].Offload {
						t.Fatalf("frame %d: got %q %+v, want %q %+v", i, f.Data, f.Offload, want[i].Data, want[i].Offload)
					}
					if cap(f.Data) < MaxFrame {
						t.Fatalf("frame %d: capacity %d < MaxFrame", i, cap(f.Data))
					}
					i++
				}
			}
		})
	}
	if a.HardwareAddr().String() != "02:00:00:00:00:01" || b.HardwareAddr().String() != "02:00:00:00:00:02" {
		t.Fatalf("MACs %v %v", a.HardwareAddr(), b.HardwareAddr())
	}
}

func TestPipeFullDropsAndHeldFramesStay(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	in := testFrames(PipeCapacity + 5)
	n, err := a.WriteBatch(in)
	if n != PipeCapacity || err != nil {
		t.Fatalf("WriteBatch into a %d-frame queue = %d, %v", PipeCapacity, n, err)
	}
	st, _ := b.(StatsReporter).Stats()
	if st.RxDropped != 5 {
		t.Fatalf("RxDropped = %d, want 5", st.RxDropped)
	}
	got := NewFrames(PipeCapacity)
	if n, err := b.ReadBatch(context.Background(), got); n != PipeCapacity || err != nil {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	// The reader holds every slot until its next ReadBatch: writes drop.
	if n, _ := a.WriteBatch(in[:1]); n != 0 {
		t.Fatalf("wrote %d frames over frames the reader still holds", n)
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, in[i].Data) {
			t.Fatalf("held frame %d changed", i)
		}
	}
}

func TestPipeCloseAndContext(t *testing.T) {
	a, b := Pipe()
	frames := NewFrames(4)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.ReadBatch(ctx, frames); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadBatch after cancel = %v, want context.Canceled", err)
	}

	if _, err := a.WriteBatch(testFrames(2)); err != nil {
		t.Fatal(err)
	}
	go func() { _, err := a.ReadBatch(context.Background(), NewFrames(1)); done <- err }()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked ReadBatch after Close = %v, want ErrClosed", err)
	}
	// Frames queued before Close are still delivered, then ErrClosed.
	if n, err := b.ReadBatch(context.Background(), frames); n != 2 || err != nil {
		t.Fatalf("draining after Close = %d, %v", n, err)
	}
	if _, err := b.ReadBatch(context.Background(), frames); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadBatch after drain = %v, want ErrClosed", err)
	}
	if _, err := a.WriteBatch(testFrames(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteBatch after Close = %v, want ErrClosed", err)
	}
	if n, err := a.ReadBatch(context.Background(), nil); n != 0 || err != nil {
		t.Fatalf("empty ReadBatch = %d, %v", n, err)
	}
}

func TestPipeBadFrame(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	fs := testFrames(3)
	fs[1].Data = make([]byte, MaxFrame+1)
	n, err := a.WriteBatch(fs)
	if n != 2 || !errors.Is(err, ErrBadFrame) {
		t.Fatalf("WriteBatch = %d, %v; want 2, ErrBadFrame", n, err)
	}
	got := NewFrames(4)
	if n, _ := b.ReadBatch(context.Background(), got); n != 2 || !bytes.Equal(got[1].Data, fs[2].Data) {
		t.Fatalf("read %d frames; the bad one must be skipped", n)
	}
}

func TestPipeReadWaitsForWriter(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan int, 1)
	go func() {
		n, _ := b.ReadBatch(ctx, NewFrames(8))
		got <- n
	}()
	if _, err := a.WriteBatch(testFrames(3)); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n < 1 {
		t.Fatalf("blocked reader got %d frames", n)
	}
}

// The forwarding loop's steady state over a Pipe allocates nothing.
func TestPipeZeroAlloc(t *testing.T) {
	a, b := Pipe()
	defer a.Close()
	in, out := testFrames(32), NewFrames(32)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := func() {
		n, _ := a.WriteBatch(in)
		for n > 0 {
			m, err := b.ReadBatch(ctx, out)
			if err != nil {
				t.Fatal(err)
			}
			n -= m
		}
	}
	for range PipeCapacity / len(in) * 2 {
		step() // warm up: every slot gets its buffer
	}
	if allocs := testing.AllocsPerRun(200, step); allocs != 0 {
		t.Fatalf("%v allocations per batch, want 0", allocs)
	}
}

// BenchmarkPipeRoundTrip moves a batch of 32 64-byte frames from a to b and
// back, as a forwarding loop between two pipes would.
func BenchmarkPipeRoundTrip(b *testing.B) {
	x, y := Pipe()
	defer x.Close()
	fs := NewFrames(32)
	for i := range fs {
		fs[i].Data = fs[i].Data[:64]
	}
	bufX, bufY := NewFrames(32), NewFrames(32)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		x.WriteBatch(fs)
		n, _ := y.ReadBatch(ctx, bufY)
		y.WriteBatch(bufY[:n])
		x.ReadBatch(ctx, bufX)
	}
	b.ReportMetric(float64(b.N*len(fs)*2)/b.Elapsed().Seconds(), "frames/s")
}

func ExamplePipe() {
	client, director := Pipe()
	defer client.Close()

	out := NewFrames(1)
	out[0].Data = append(out[0].Data, ether(-1, etherTypeARP, arpRequest(cip4, vip4))...)
	client.WriteBatch(out)

	in := make([]Frame, 8)
	n, err := director.ReadBatch(context.Background(), in)
	fmt.Println(n, err, len(in[0].Data))
	// Output: 1 <nil> 42
}

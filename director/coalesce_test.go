package director

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
)

// TestRxCoalesce: with RxCoalesce a worker waits after a small batch, and
// every frame is still forwarded, those that arrived during the wait
// included; out of range, New refuses it.
func TestRxCoalesce(t *testing.T) {
	cfg := rs2Config()
	for _, bad := range []time.Duration{-time.Microsecond, MaxRxCoalesce + time.Nanosecond} {
		dirPort, wire := link.Pipe()
		_, err := New(cfg, dirPort, Options{RxCoalesce: bad})
		if !errors.Is(err, ErrBadOptions) {
			t.Errorf("RxCoalesce %v: %v, want ErrBadOptions", bad, err)
		}
		dirPort.Close()
		wire.Close()
	}
	dirPort, wire := link.Pipe()
	d, err := New(cfg, dirPort, Options{IPv4: netip.MustParseAddr("198.18.0.2"), AnnounceCount: 1, AnnounceInterval: time.Millisecond, RxCoalesce: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, d, wire)
	dirMAC := d.port.HardwareAddr()
	const n = 40
	for i := range n {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 40000)
		send(t, wire, framegen.TCP(framegen.L2{Src: routerMAC, Dst: dirMAC}, c, netip.AddrPortFrom(vip, 80), "S", 1, 0, nil))
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // some alone, some during a wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frames := link.NewFrames(16)
	got := 0
	for got < n {
		k, err := wire.ReadBatch(ctx, frames)
		if err != nil {
			t.Fatalf("%d of %d SYNs forwarded: %v", got, n, err)
		}
		for _, f := range frames[:k] {
			if len(f.Data) > 14 && bytes.Equal(f.Data[0:6], rs2MAC) {
				got++
			}
		}
	}
}

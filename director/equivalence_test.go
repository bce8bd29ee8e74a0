package director

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/internal/wire"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/replay"
	"github.com/drlb/drlb/step"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestLiveMatchesReplay feeds the replay scenario capture through the live
// director (an in-memory port, the capture's clock) and through drlb
// replay, and requires the very same frames out, in the same order:
// forwarded frames, ARP replies, neighbor advertisements, too-big replies.
func TestLiveMatchesReplay(t *testing.T) {
	const mtu = 1500
	dir := filepath.Join("..", "testdata", "replay")
	for _, sched := range []string{"rr", "wlc", "mh"} {
		t.Run(sched, func(t *testing.T) {
			cfg := loadReplayConfig(t, filepath.Join(dir, "services.yaml"), sched)
			capture, err := os.ReadFile(filepath.Join(dir, "mixed.pcap"))
			if err != nil {
				t.Fatal(err)
			}

			// Replay, as `drlb replay -mac 02:00:00:00:00:02 -mtu 1500` does.
			var out bytes.Buffer
			wire, dirPort := link.Pipe() // the director's end has 02:00:00:00:00:02, the capture's director
			if _, err := replay.Run(cfg, bytes.NewReader(capture), &out, replay.Options{MAC: dirPort.HardwareAddr(), MTU: mtu}); err != nil {
				t.Fatal(err)
			}
			want := testutil.PcapFrames(t, out.Bytes())

			// Live: one frame at a time, the clock at its capture time.
			var clock atomic.Int64
			seen := make(chan struct{}, 1)
			d, err := New(loadReplayConfig(t, filepath.Join(dir, "services.yaml"), sched), dirPort, Options{
				MTU: mtu, AnnounceCount: 1, AnnounceInterval: time.Hour,
				Clock: func() time.Time { return time.Unix(0, clock.Load()) },
				Trace: frameSeen(seen),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Serve(ctx) }()
			defer func() { cancel(); <-done; wire.Close() }()

			r, err := pcapgo.NewReader(bytes.NewReader(capture))
			if err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			frames := link.NewFrames(8)
			collect := func() {
				for {
					rctx, rcancel := context.WithTimeout(ctx, 20*time.Millisecond)
					n, err := wire.ReadBatch(rctx, frames)
					rcancel()
					if err != nil {
						return
					}
					for _, f := range frames[:n] {
						if isAnnouncement(f.Data) {
							continue // sent at start by the announcer, not by the step
						}
						got = append(got, completeOffloadedChecksum(t, f))
					}
				}
			}
			for i := 1; ; i++ {
				data, ci, err := r.ReadPacketData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				clock.Store(ci.Timestamp.UnixNano())
				f := link.Frame{Data: data}
				if forwarder.HasPartialChecksum(data) {
					// As the kernel reports a local sender's partial checksum.
					f.Offload = link.Offload{CsumPartial: true, CsumStart: uint16(l4Offset(data)), CsumOffset: 16}
				}
				if _, err := wire.WriteBatch([]link.Frame{f}); err != nil {
					t.Fatal(err)
				}
				select {
				case <-seen:
				case <-time.After(5 * time.Second):
					t.Fatalf("frame %d: the director did not handle it", i)
				}
			}
			collect()

			if len(got) != len(want) {
				t.Fatalf("live director sent %d frames, replay %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("frame %d of the output differs:\nlive   %x\nreplay %x", i+1, got[i], want[i])
				}
			}
		})
	}
}

// frameSeen is an Observer that signals every frame the step handled.
type frameSeen chan struct{}

func (frameSeen) Wants(int64) bool        { return true }
func (c frameSeen) Observe(e *step.Event) { c <- struct{}{} }

func loadReplayConfig(t *testing.T, path, sched string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Services {
		cfg.Services[i].Scheduler = sched
	}
	return cfg
}

// isAnnouncement reports a gratuitous ARP (sender IP = target IP) or an
// unsolicited neighbor advertisement to all nodes: the announcer's frames.
func isAnnouncement(b []byte) bool {
	switch {
	case len(b) >= 42 && binary.BigEndian.Uint16(b[12:]) == 0x0806:
		return bytes.Equal(b[28:32], b[38:42])
	case len(b) >= 58 && binary.BigEndian.Uint16(b[12:]) == 0x86dd:
		return b[20] == 58 && b[54] == 136 && bytes.Equal(b[0:6], []byte{0x33, 0x33, 0, 0, 0, 1})
	}
	return false
}

// l4Offset is where an untagged IPv4 frame's TCP header starts.
func l4Offset(b []byte) int { return 14 + int(b[14]&0x0f)*4 }

// completeOffloadedChecksum does what the kernel does with a frame the
// director writes with a partial-checksum offload header: it completes the
// checksum at CsumStart+CsumOffset over the rest of the frame.
func completeOffloadedChecksum(t *testing.T, f link.Frame) []byte {
	b := append([]byte(nil), f.Data...)
	if !f.Offload.CsumPartial {
		return b
	}
	start, at := int(f.Offload.CsumStart), int(f.Offload.CsumStart+f.Offload.CsumOffset)
	if at+2 > len(b) {
		t.Fatalf("offload header points past the frame: %+v", f.Offload)
	}
	// The field holds the folded pseudo-header sum; sum it with the rest.
	binary.BigEndian.PutUint16(b[at:], wire.Fold(wire.Sum(b[start:], 0)))
	return b
}

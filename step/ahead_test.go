package step_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
)

// TestHandleAheadMatchesHandle: a stream of batches handled with the next
// batch behind each (HandleAhead) sends the same frames as Handle alone,
// and only the current batch's: the next one is read, not processed.
func TestHandleAheadMatchesHandle(t *testing.T) {
	var stream [][]byte
	for i := range 12 {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)}), 40000)
		stream = append(stream,
			framegen.TCP(toDirector, c, web, framegen.SYN, 1, 0, nil),
			framegen.TCP(toDirector, c, web, framegen.ACK, 2, 1, nil))
	}
	batches := func() [][]link.Frame {
		var out [][]link.Frame
		for i := 0; i < len(stream); i += 4 {
			out = append(out, frames(stream[i:min(i+4, len(stream))]...))
		}
		return out
	}
	plain, ahead := newStep(t, nil), newStep(t, nil)
	a, b := batches(), batches()
	for k := range a {
		want := plain.Handle(t0, a[k], nil)
		var next []link.Frame
		if k+1 < len(b) {
			next = b[k+1]
		}
		got := ahead.HandleAhead(t0, b[k], next, nil)
		if len(got) != len(want) {
			t.Fatalf("batch %d: %d frames sent with the next batch behind, %d without", k, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("batch %d frame %d: % x with the next batch behind, % x without", k, i, got[i].Data, want[i].Data)
			}
		}
		if k+1 < len(b) && !bytes.Equal(b[k+1][0].Data, stream[4*(k+1)]) {
			t.Fatalf("batch %d: the next batch was changed", k)
		}
	}
}

// A director that reads ahead under load hands each batch to HandleAhead
// with the next one behind it: the next batch's table lookups start
// during this one (with a large table), and the next call takes it as in.
func ExampleStep_HandleAhead() {
	fw, _ := forwarder.New(testConfig(), forwarder.Options{MAC: directorMAC})
	s, _ := step.New(step.Config{Forwarder: fw, Prefetch: true})
	syn := func(port uint16) []byte {
		return framegen.TCP(toDirector, netip.AddrPortFrom(client.Addr(), port), web, framegen.SYN, 1, 0, nil)
	}
	batches := [][]link.Frame{
		{{Data: syn(40000)}, {Data: syn(40001)}},
		{{Data: syn(40002)}},
	}
	for k, in := range batches {
		var next []link.Frame
		if k+1 < len(batches) {
			next = batches[k+1]
		}
		out := s.HandleAhead(t0, in, next, nil)
		fmt.Println("batch", k, "sends", len(out), "frames")
	}
	// Output:
	// batch 0 sends 2 frames
	// batch 1 sends 1 frames
}

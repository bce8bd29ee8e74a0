package link

import (
	"errors"
	"net/netip"
	"testing"
)

// TestReadAhead checks ReadAheader on every port that has it: a batch
// read with ReadBatch stays intact while the next one is read with
// TryReadBatch (the director handles one while it holds the other), each
// frame comes once and in order, and TryReadBatch returns at once, with
// 0, when nothing waits.
func TestReadAhead(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T, l pairLab) Port
	}{
		{"afpacket", func(t *testing.T, l pairLab) Port {
			return openIn(t, l.nsD, "d0", Config{Filter: mustFilter(t, vip4)})
		}},
		{"split", func(t *testing.T, l pairLab) Port {
			return openSplitIn(t, l.nsD, "d0", Config{Filter: mustFilter(t, vip4)}, 1, ClientHash{})[0]
		}},
		{"afxdp", func(t *testing.T, l pairLab) Port { return openXDPIn(t, l.nsD, "d0", []netip.Addr{vip4}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newPairLab(t)
			pa := openIn(t, l.nsA, "a0", Config{})
			pd := tc.open(t, l)
			ra, ok := pd.(ReadAheader)
			if !ok {
				t.Fatalf("%T is no ReadAheader", pd)
			}
			testReadAheadPorts(t, pa, pd, ra)
		})
	}
}

// TestTryReadBatchAfterClose: a closed port's TryReadBatch says
// ErrClosed, whichever side of its closed check Close came (the director
// returns quietly on ErrClosed at shutdown, and reads ahead until then).
func TestTryReadBatchAfterClose(t *testing.T) {
	l := newPairLab(t)
	p := openIn(t, l.nsD, "d0", Config{}).(*afpacket)
	p.Close()
	if _, err := p.TryReadBatch(make([]Frame, 4)); !errors.Is(err, ErrClosed) {
		t.Errorf("TryReadBatch after Close: %v, want ErrClosed", err)
	}
	// Close between the check and the read: tryRead is what is left.
	if _, err := p.tryRead(make([]Frame, 4)); !errors.Is(err, ErrClosed) {
		t.Errorf("the read after Close: %v, want ErrClosed", err)
	}
}

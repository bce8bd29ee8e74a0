package director

import (
	"strings"
	"testing"
)

func TestChooseIO(t *testing.T) {
	for _, tc := range []struct {
		virtual bool
		queues  int
		want    string
	}{
		{true, 1, IOAFPacket},
		{true, 4, IOAFPacket},
		{false, 4, IOAFPacket},
		{false, 1, IOAFXDP},
		{false, 0, IOAFXDP}, // no queues directory: one queue
	} {
		if got, why := chooseIO(tc.virtual, tc.queues); got != tc.want || why == "" {
			t.Errorf("chooseIO(virtual %v, %d queues) = %q (%q), want %q with a reason", tc.virtual, tc.queues, got, why, tc.want)
		}
	}
}

// TestXDPQueuesWarning: AF_XDP on one receive queue is said nothing about;
// on several, the warning names the interface, the queues and the fix.
func TestXDPQueuesWarning(t *testing.T) {
	for _, q := range []int{0, 1} {
		if w := xdpQueuesWarning("eth0", q); w != "" {
			t.Errorf("%d queues: warned %q", q, w)
		}
	}
	w := xdpQueuesWarning("eth0", 8)
	for _, part := range []string{"eth0", "8 receive queues", "ethtool -L eth0 combined 1", "-io afpacket"} {
		if !strings.Contains(w, part) {
			t.Errorf("8 queues: the warning %q does not say %q", w, part)
		}
	}
}

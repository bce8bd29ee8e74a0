package director

import "testing"

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

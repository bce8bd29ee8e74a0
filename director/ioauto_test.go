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

// TestPlanXDPQueues: one AF_XDP worker per receive queue up to the
// workers asked for, one on queue 0 with -kernel-flows or -xdp-syn; a
// queue no worker serves is warned about, naming the interface, the
// queues and the fix, and nothing is said when every queue has its worker.
func TestPlanXDPQueues(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		queues, workers      int
		kernelFlows, xdpSYNs bool
		ports                int
		note                 bool
		warn                 []string
	}{
		{name: "one queue", queues: 1, workers: 2, ports: 1, note: true},
		{name: "one of each", queues: 1, workers: 1, ports: 1},
		{name: "no answer", queues: 0, workers: 2, ports: 1, note: true},
		{name: "queue per worker", queues: 2, workers: 2, ports: 2},
		{name: "more workers", queues: 2, workers: 8, ports: 2, note: true},
		{name: "more queues", queues: 8, workers: 2, ports: 2, warn: []string{"eth0", "8 receive queues", "queues 2-7", "ethtool -L eth0 combined 2", "-io afpacket"}},
		{name: "kernel flows", queues: 4, workers: 4, kernelFlows: true, ports: 1, note: true, warn: []string{"queues 1-3", "combined 1"}},
		{name: "xdp syn", queues: 2, workers: 2, xdpSYNs: true, ports: 1, note: true, warn: []string{"queues 1-1"}},
		{name: "kernel flows, one queue", queues: 1, workers: 2, kernelFlows: true, ports: 1, note: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planXDPQueues(tc.queues, tc.workers, tc.kernelFlows, tc.xdpSYNs)
			if p.ports != tc.ports || (p.note != "") != tc.note {
				t.Errorf("planXDPQueues(%d, %d, %v, %v) = %+v, want %d ports, a note %v", tc.queues, tc.workers, tc.kernelFlows, tc.xdpSYNs, p, tc.ports, tc.note)
			}
			w := p.warning("eth0")
			if (w != "") != (tc.warn != nil) {
				t.Errorf("warning %q, want one: %v", w, tc.warn != nil)
			}
			for _, part := range tc.warn {
				if !strings.Contains(w, part) {
					t.Errorf("the warning %q does not say %q", w, part)
				}
			}
		})
	}
}

// TestAFXDPRefusesVLANTrunks: AF_XDP carries no VLAN tags, so a director
// on a trunk (vlan:) refuses -io afxdp (and -io auto keeps AF_PACKET).
func TestAFXDPRefusesVLANTrunks(t *testing.T) {
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	if err := afxdpRefusal(cfg); err != nil {
		t.Errorf("untagged LAN: %v", err)
	}
	cfg.VLAN = 100
	if err := afxdpRefusal(cfg); err == nil || !strings.Contains(err.Error(), "vlan 100") {
		t.Errorf("vlan 100: %v, want a refusal naming it", err)
	}
}

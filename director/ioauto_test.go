package director

import (
	"errors"
	"strings"
	"testing"
)

func TestChooseIO(t *testing.T) {
	for _, tc := range []struct {
		virtual bool
		queues  rxQueueCount
		want    string
	}{
		{true, rxQueueCount{1, true}, IOAFPacket},
		{true, rxQueueCount{4, true}, IOAFPacket},
		{false, rxQueueCount{4, true}, IOAFPacket},
		{false, rxQueueCount{1, true}, IOAFXDP},
		{false, rxQueueCount{4, false}, IOAFPacket}, // no channels, 4 allocated: maybe 4 in use
		{false, rxQueueCount{0, false}, IOAFPacket}, // nothing known: maybe several
	} {
		if got, why := chooseIO(tc.virtual, tc.queues); got != tc.want || why == "" {
			t.Errorf("chooseIO(virtual %v, %+v queues) = %q (%q), want %q with a reason", tc.virtual, tc.queues, got, why, tc.want)
		}
	}
}

// TestRxQueuesUnknown: where ethtool cannot tell the receive queues in
// use (a driver without get_channels: an error, or 0), netlink's count
// of allocated queues stands as an upper bound, and -io auto does not
// take a NIC that may have several for one (AF_XDP would miss the frames
// on queues other than 0); -io afxdp then plans its sockets on queue 0
// alone, and says why. A device that allocated one queue has one.
func TestRxQueuesUnknown(t *testing.T) {
	noChannels := errors.New("ethtool: eth0: get channels: operation not supported")
	for _, tc := range []struct {
		name               string
		channels           int
		err                error
		allocated          int
		want               rxQueueCount
		io                 string
		sockets            int
		warn               bool
		logged, warnedWith string
	}{
		{name: "channels", channels: 4, allocated: 8, want: rxQueueCount{4, true}, io: IOAFPacket, sockets: 4, logged: "4"},
		{name: "one channel", channels: 1, allocated: 8, want: rxQueueCount{1, true}, io: IOAFXDP, sockets: 1, logged: "1"},
		{name: "no get_channels, 8 allocated", err: noChannels, allocated: 8, want: rxQueueCount{8, false}, io: IOAFPacket, sockets: 1, warn: true, logged: "up to 8", warnedWith: "up to 8 receive queues"},
		{name: "0 channels, 4 allocated", allocated: 4, want: rxQueueCount{4, false}, io: IOAFPacket, sockets: 1, warn: true, logged: "up to 4", warnedWith: "up to 4 receive queues"},
		{name: "no get_channels, 1 allocated", err: noChannels, allocated: 1, want: rxQueueCount{1, true}, io: IOAFXDP, sockets: 1, logged: "1"},
		{name: "nothing known", err: noChannels, want: rxQueueCount{0, false}, io: IOAFPacket, sockets: 1, warn: true, logged: "unknown", warnedWith: "an unknown number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := countRxQueues(tc.channels, tc.err, tc.allocated)
			if q != tc.want {
				t.Fatalf("countRxQueues(%d, %v, %d) = %+v, want %+v", tc.channels, tc.err, tc.allocated, q, tc.want)
			}
			if io, why := chooseIO(false, q); io != tc.io {
				t.Errorf("-io auto on a physical NIC with %v queues picks %s (%s), want %s", q, io, why, tc.io)
			}
			if got := q.forSockets(); got != tc.sockets {
				t.Errorf("-io afxdp plans sockets on %d queue(s), want %d", got, tc.sockets)
			}
			if !strings.Contains(q.String(), tc.logged) {
				t.Errorf("logged as %q, want %q in it", q.String(), tc.logged)
			}
			w := q.xdpWarning("eth0")
			if (w != "") != tc.warn || !strings.Contains(w, tc.warnedWith) {
				t.Errorf("-io afxdp warns %q, want a warning %v saying %q", w, tc.warn, tc.warnedWith)
			}
		})
	}
}

// TestAutoKeepsOnlyDriverXDP: -io auto keeps AF_XDP where no frame can
// reach it with a partial checksum: driver mode on a NIC, or generic mode
// on a NIC off a wire (pci: r8169, e1000e have no native XDP, and are the
// one-queue NICs auto picks AF_XDP for). Not generic mode on a VM's NIC
// (virtio-net refuses native XDP with the host's guest offloads on, which
// generic mode leaves on) or on a NIC drlb cannot place. A VLAN trunk
// keeps auto on AF_PACKET before it opens anything.
func TestAutoKeepsOnlyDriverXDP(t *testing.T) {
	for _, tc := range []struct {
		bus, mode string
		keep      bool
	}{
		{"pci", "driver", true}, {"virtio", "driver", true}, {"pci", "generic", true},
		{"virtio", "generic", false}, {"xen", "generic", false}, {"", "generic", false},
	} {
		keep, why := autoKeepsXDP(xdpChecksumWarning("eth0", "device", tc.bus, tc.mode))
		if keep != tc.keep || !keep && !strings.Contains(why, "partial checksums") {
			t.Errorf("bus %q, %s mode: keep %v (%q), want %v", tc.bus, tc.mode, keep, why, tc.keep)
		}
	}
	cfg := configOf(service(vip, 80, "rr", resolvedReals()...))
	if veto := autoVeto(cfg); veto != "" {
		t.Errorf("plain: vetoed (%q)", veto)
	}
	cfg.VLAN = 100
	if veto := autoVeto(cfg); !strings.Contains(veto, "vlan 100") {
		t.Errorf("vlan 100: veto %q, want one naming it", veto)
	}
}

// TestXDPChecksumWarning: -io afxdp warns where frames may reach AF_XDP
// with partial checksums: a virtual interface in any mode, a VM's NIC in
// generic mode, a device drlb cannot place in generic mode; not a NIC in
// driver mode, nor one on a bus of physical NICs in generic mode.
func TestXDPChecksumWarning(t *testing.T) {
	for _, tc := range []struct {
		linkType, bus, mode string
		want                string // "": no warning
	}{
		{"veth", "", "driver", "virtual interface (veth)"},
		{"veth", "", "generic", "virtual interface (veth)"},
		{"device", "virtio", "generic", "VM's NIC (bus virtio)"},
		{"device", "xen", "generic", "VM's NIC (bus xen)"},
		{"device", "", "generic", "cannot tell"},
		{"device", "virtio", "driver", ""},
		{"device", "pci", "driver", ""},
		{"device", "pci", "generic", ""},
	} {
		w := xdpChecksumWarning("eth0", tc.linkType, tc.bus, tc.mode)
		if (w == "") != (tc.want == "") || !strings.Contains(w, tc.want) || (w != "" && !strings.Contains(w, "-io afpacket")) {
			t.Errorf("%s on bus %q in %s mode: %q, want %q", tc.linkType, tc.bus, tc.mode, w, tc.want)
		}
	}
}

// TestPlanXDPQueues: one AF_XDP worker per receive queue up to the
// workers asked for, one on queue 0 with -kernel-flows or -kernel-syns; a
// queue no worker serves is warned about, naming the interface, the
// queues and the fix, and nothing is said when every queue has its worker.
func TestPlanXDPQueues(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		queues, workers         int
		kernelFlows, kernelSYNs bool
		ports                   int
		note                    bool
		warn                    []string
	}{
		{name: "one queue", queues: 1, workers: 2, ports: 1, note: true},
		{name: "one of each", queues: 1, workers: 1, ports: 1},
		{name: "no answer", queues: 0, workers: 2, ports: 1, note: true},
		{name: "queue per worker", queues: 2, workers: 2, ports: 2},
		{name: "more workers", queues: 2, workers: 8, ports: 2, note: true},
		{name: "more queues", queues: 8, workers: 2, ports: 2, warn: []string{"eth0", "8 receive queues", "queues 2-7", "ethtool -L eth0 combined 2", "-io afpacket"}},
		{name: "kernel flows", queues: 4, workers: 4, kernelFlows: true, ports: 1, note: true, warn: []string{"queues 1-3", "combined 1"}},
		{name: "xdp syn", queues: 2, workers: 2, kernelSYNs: true, ports: 1, note: true, warn: []string{"queues 1-1"}},
		{name: "kernel flows, one queue", queues: 1, workers: 2, kernelFlows: true, ports: 1, note: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planXDPQueues(tc.queues, tc.workers, tc.kernelFlows, tc.kernelSYNs)
			if p.ports != tc.ports || (p.note != "") != tc.note {
				t.Errorf("planXDPQueues(%d, %d, %v, %v) = %+v, want %d ports, a note %v", tc.queues, tc.workers, tc.kernelFlows, tc.kernelSYNs, p, tc.ports, tc.note)
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

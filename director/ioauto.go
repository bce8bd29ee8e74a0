package director

import (
	"fmt"

	"github.com/drlb/drlb/config"
)

// IO backends of Options.IO.
const (
	IOAFPacket = "afpacket"
	IOAFXDP    = "afxdp"
	IOAuto     = "auto"
)

// chooseIO is -io auto's choice for an interface: virtual (veth, bridge,
// ...: netlink's link type is not "device") or not, with rxQueues receive queues. AF_XDP won
// the side-by-side benchmark (BenchmarkFastPath/Flows65536, 64-byte UDP,
// 65536 flows, quiet 2-core machine: 137-168k frames/s against 98-115k
// for the in-kernel forwarder and 77-98k for AF_PACKET), but it is picked
// only where it carries everything: frames off a wire have complete
// checksums, and one receive queue means its one socket (queue 0) sees
// them all.
func chooseIO(virtual bool, rxQueues int) (io, why string) {
	switch {
	case virtual:
		return IOAFPacket, "a virtual interface (veth, bridge, ...): local senders' partial checksums and GSO super-frames reach it, and XDP frames carry neither, so AF_XDP would forward them with unfinished checksums"
	case rxQueues > 1:
		return IOAFPacket, fmt.Sprintf("%d receive queues: an AF_XDP worker takes only its own clients' frames off its own queue, and the NIC's RSS does not know which worker a client has, so about %d in %d frames would reach their worker through AF_PACKET anyway (-io afxdp does that)", rxQueues, rxQueues-1, rxQueues)
	default:
		return IOAFXDP, "one receive queue on a physical NIC: AF_XDP measured 1.4-1.5x the in-kernel forwarder and 1.8x AF_PACKET (64-byte UDP, 65536 flows)"
	}
}

// xdpQueuePlan is how -io afxdp covers an interface's receive queues:
// ports AF_XDP ports (one worker each) on queues 0..ports-1, of queues.
type xdpQueuePlan struct {
	ports, queues int
	// note says why there are not as many ports as workers asked for
	// ("" when there are).
	note string
}

// planXDPQueues plans -io afxdp on an interface with queues receive
// queues for workers workers (Options.Workers, or one per CPU): one
// port per queue up to workers. -kernel-flows and -xdp-syn keep one
// port on queue 0: the XDP program's flow and SYN maps serve one
// worker's table.
func planXDPQueues(queues, workers int, kernelFlows, xdpSYNs bool) xdpQueuePlan {
	queues, workers = max(queues, 1), max(workers, 1)
	p := xdpQueuePlan{ports: min(queues, workers), queues: queues}
	switch {
	case queues > 1 && (kernelFlows || xdpSYNs):
		p.ports = 1
		p.note = "one worker, on queue 0: with -kernel-flows or -xdp-syn the XDP program forwards for one worker's table"
	case workers > queues:
		p.note = fmt.Sprintf("%d worker(s), one per receive queue (%d asked for): a worker reads its queue's AF_XDP sockets", queues, workers)
	}
	return p
}

// warning is what drlb says about frames that take AF_PACKET because a
// plan has fewer ports than queues: those the NIC puts on queues no port
// serves reach drlb through AF_PACKET, slower. "" when every queue has
// its port.
func (p xdpQueuePlan) warning(ifname string) string {
	if p.ports >= p.queues {
		return ""
	}
	return fmt.Sprintf("io afxdp on %s with %d receive queues and %d AF_XDP worker(s): the frames the NIC puts on queues %d-%d reach drlb through AF_PACKET, slower; `ethtool -L %s combined %d` puts every frame on a queue a worker serves, or use -io afpacket",
		ifname, p.queues, p.ports, p.ports, p.queues-1, ifname, p.ports)
}

// afxdpRefusal says why AF_XDP cannot carry cfg's VIP frames, or nil. On
// a VLAN trunk (vlan:) every VIP frame is tagged, and AF_XDP carries no
// tag: the XDP program passes frames tagged in the frame to the AF_PACKET
// side (so AF_XDP would carry nothing), and a NIC that strips tags on
// receive (rx-vlan-offload, on by default on most) shows XDP the frame
// untagged, its tag out of band, where the program would redirect it and
// drlb read it untagged: not its VLAN's.
func afxdpRefusal(cfg *config.Config) error {
	if cfg.VLAN != 0 {
		return fmt.Errorf("vlan %d: AF_XDP carries no VLAN tags, and every VIP frame on a trunk has one (a NIC that strips tags on receive would hand AF_XDP frames without theirs)", cfg.VLAN)
	}
	return nil
}

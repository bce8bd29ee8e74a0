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

// rxQueueCount is how many receive queues an interface has, as far as
// drlb can tell (countRxQueues).
type rxQueueCount struct {
	// n is the number of queues: those in use when exact (ethtool's
	// channels, or a device that allocated one); otherwise those the
	// device allocated (netlink), an upper bound; 0 when neither said.
	n     int
	exact bool
}

// countRxQueues makes an rxQueueCount from ethtool's channels (channels
// in use, or err: a driver without get_channels, which also may report
// 0) and netlink's count of the receive queues the device allocated
// (allocated; 0: not known). Where ethtool cannot tell, netlink's count
// is only an upper bound: a NIC allocates more queues than it may use,
// and a driver without get_channels may still spread frames over several.
func countRxQueues(channels int, err error, allocated int) rxQueueCount {
	switch {
	case err == nil && channels > 0:
		return rxQueueCount{n: channels, exact: true}
	case allocated == 1: // one allocated: one in use
		return rxQueueCount{n: 1, exact: true}
	default:
		return rxQueueCount{n: max(allocated, 0)}
	}
}

// String is for the log: "4", "up to 8 (netlink; no ethtool channels)",
// "unknown".
func (q rxQueueCount) String() string {
	switch {
	case q.exact:
		return fmt.Sprint(q.n)
	case q.n > 0:
		return fmt.Sprintf("up to %d (netlink; no ethtool channels)", q.n)
	default:
		return "unknown"
	}
}

// forSockets is how many queues -io afxdp may plan AF_XDP sockets on
// (planXDPQueues): the queues in use, or queue 0 alone where drlb cannot
// tell which are (an AF_XDP socket does not bind to a queue not in use).
func (q rxQueueCount) forSockets() int {
	if q.exact {
		return q.n
	}
	return 1
}

// xdpWarning is what -io afxdp says about a count it could not read
// exactly: its sockets are on queue 0 only, and the frames the NIC puts
// on other queues, if it uses any, take AF_PACKET. "" for an exact count
// (planXDPQueues' warning covers queues no worker serves) or a device
// with one queue.
func (q rxQueueCount) xdpWarning(ifname string) string {
	if q.exact || q.n == 1 {
		return ""
	}
	has := "an unknown number of receive queues"
	if q.n > 1 {
		has = fmt.Sprintf("up to %d receive queues (netlink)", q.n)
	}
	return fmt.Sprintf("io afxdp on %s: the driver does not report the receive queues in use (ethtool -l) and the device has %s: AF_XDP serves queue 0 only, and the frames the NIC puts on other queues reach drlb through AF_PACKET, slower; -io afpacket if it spreads frames over several", ifname, has)
}

// chooseIO is -io auto's choice for an interface: virtual (veth, bridge,
// ...: netlink's link type is not "device") or not, with queues receive
// queues. AF_XDP won
// the side-by-side benchmark (BenchmarkFastPath/Flows65536, 64-byte UDP,
// 65536 flows, quiet 2-core machine: 137-168k frames/s against 98-115k
// for the in-kernel forwarder and 77-98k for AF_PACKET), but it is picked
// only where it carries everything: frames off a wire have complete
// checksums, and one receive queue means its one socket (queue 0) sees
// them all. A count drlb could not read exactly counts as several queues
// unless the device allocated only one. Opened, AF_XDP is kept only where
// no frame can reach it with a partial checksum (autoKeepsXDP).
func chooseIO(virtual bool, queues rxQueueCount) (io, why string) {
	switch {
	case virtual:
		return IOAFPacket, "a virtual interface (veth, bridge, ...): local senders' partial checksums and GSO super-frames reach it, and XDP frames carry neither, so AF_XDP would forward them with unfinished checksums"
	case !queues.exact && queues.n > 1:
		return IOAFPacket, fmt.Sprintf("the driver does not report its receive queues in use (ethtool -l) and the device has %d (netlink): with more than one in use, the frames the NIC puts on queues other than 0 would miss AF_XDP (-io afxdp serves queue 0 then, the others through AF_PACKET)", queues.n)
	case !queues.exact:
		return IOAFPacket, "neither ethtool (-l) nor netlink says how many receive queues the interface has: with more than one, the frames the NIC puts on queues other than 0 would miss AF_XDP (-io afxdp serves queue 0 then, the others through AF_PACKET)"
	case queues.n > 1:
		return IOAFPacket, fmt.Sprintf("%d receive queues: an AF_XDP worker takes only its own clients' frames off its own queue, and the NIC's RSS does not know which worker a client has, so about %d in %d frames would reach their worker through AF_PACKET anyway (-io afxdp does that)", queues.n, queues.n-1, queues.n)
	default:
		return IOAFXDP, "one receive queue on a physical NIC: AF_XDP measured 1.4-1.5x the in-kernel forwarder and 1.8x AF_PACKET (64-byte UDP, 65536 flows)"
	}
}

// autoKeepsXDP says whether -io auto keeps the AF_XDP ports it opened,
// given risk, what xdpChecksumWarning says of the interface with the mode
// its XDP program came out in, and why not. link.OpenXDP falls back to
// generic mode where the driver refuses the native program: on a NIC off
// a wire (r8169, e1000e: one queue, the case auto picks AF_XDP for)
// frames still come with their checksums complete, but virtio-net
// refuses it with the host's guest offloads on (a NIC in a VM is a
// "device" link too), which generic mode leaves on: frames may then
// arrive with partial checksums (CHECKSUM_PARTIAL), which AF_XDP, whose
// frames carry no checksum state, would forward unfinished, and
// AF_PACKET reads and completes.
func autoKeepsXDP(risk string) (keep bool, why string) {
	if risk == "" {
		return true, ""
	}
	return false, risk + " (-io afxdp keeps AF_XDP anyway)"
}

// xdpChecksumWarning is what -io afxdp says on ifname (netlink's link
// type linkType and parent device bus bus; "" where the kernel does not
// name it) with its XDP program in mode, where frames may reach it with
// partial checksums, which AF_XDP forwards unfinished: on a virtual
// interface (local senders' checksums: ARCHITECTURE.md, "AF_XDP: what
// XDP cannot carry"), and in generic mode on a VM's NIC (virtio, xen:
// the host's guest offloads, which native XDP turns off, stay on) or on
// a device drlb cannot place. "" where no risk is known: driver mode on
// a device, generic mode on a NIC on another bus (pci, ...), whose
// frames come off a wire with their checksums complete.
func xdpChecksumWarning(ifname, linkType, bus, mode string) string {
	const fix = "AF_XDP frames carry no checksum state and would be forwarded unfinished (their connections time out); -io afpacket completes them"
	switch {
	case linkType != "device":
		return fmt.Sprintf("io afxdp on %s, a virtual interface (%s): local senders' partial checksums reach it unless they turn tx-checksumming off; %s", ifname, linkType, fix)
	case mode == "driver":
		return ""
	case bus == "virtio" || bus == "xen":
		return fmt.Sprintf("io afxdp on %s, a VM's NIC (bus %s), with XDP in %s mode: the host's guest offloads stay on (native XDP turns them off), so frames may arrive with partial checksums; %s", ifname, bus, mode, fix)
	case bus == "":
		return fmt.Sprintf("io afxdp on %s with XDP in %s mode: drlb cannot tell whether it is a VM's NIC (netlink names no parent bus); on one (virtio-net with the host's guest offloads on) frames may arrive with partial checksums; %s", ifname, mode, fix)
	default:
		return ""
	}
}

// autoVeto says why -io auto takes AF_PACKET for cfg and opts where the
// interface alone would have it pick AF_XDP, or "": on a VLAN trunk
// (afxdpRefusal).
func autoVeto(cfg *config.Config) string {
	if err := afxdpRefusal(cfg); err != nil {
		return err.Error()
	}
	return ""
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
// port per queue up to workers. -kernel-flows and -kernel-syns keep one
// port on queue 0: the XDP program's flow and SYN maps serve one
// worker's table.
func planXDPQueues(queues, workers int, kernelFlows, kernelSYNs bool) xdpQueuePlan {
	queues, workers = max(queues, 1), max(workers, 1)
	p := xdpQueuePlan{ports: min(queues, workers), queues: queues}
	switch {
	case queues > 1 && (kernelFlows || kernelSYNs):
		p.ports = 1
		p.note = "one worker, on queue 0: with -kernel-flows or -kernel-syns the XDP program forwards for one worker's table"
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

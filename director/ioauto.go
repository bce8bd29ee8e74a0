package director

import "fmt"

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
		return IOAFPacket, fmt.Sprintf("%d receive queues: drlb's AF_XDP socket serves queue 0 only, AF_PACKET workers share all queues", rxQueues)
	default:
		return IOAFXDP, "one receive queue on a physical NIC: AF_XDP measured 1.4-1.5x the in-kernel forwarder and 1.8x AF_PACKET (64-byte UDP, 65536 flows)"
	}
}

// xdpQueuesWarning is what drlb says when it runs AF_XDP, asked for, on
// ifname with rxQueues receive queues: its socket serves queue 0, and the
// frames a NIC's RSS puts on the others reach drlb through AF_PACKET
// (slower) and the kernel's IP stack too. "" for one queue.
func xdpQueuesWarning(ifname string, rxQueues int) string {
	if rxQueues <= 1 {
		return ""
	}
	return fmt.Sprintf("io afxdp on %s with %d receive queues: drlb's AF_XDP socket serves queue 0, and the frames the NIC puts on the other queues reach drlb through AF_PACKET, slower, and the kernel's IP stack sees them too; `ethtool -L %s combined 1` puts every frame on queue 0, or use -io afpacket",
		ifname, rxQueues, ifname)
}

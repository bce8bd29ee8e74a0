package link

import "sync/atomic"

// Stats counts frames a Port dropped instead of returning or sending them.
// Ports from Open and Pipe implement StatsReporter.
type Stats struct {
	// Truncated: received frames larger than MaxFrame (BIG TCP beyond
	// 64 KiB, for example), dropped because they cannot be forwarded whole.
	Truncated uint64
	// Unrepresentable: frames the kernel dropped because their offload
	// state has no virtio-net header form (tunnel GSO, for example).
	Unrepresentable uint64
	// RxDropped: frames dropped before we read them (AF_PACKET: the
	// socket's receive queue was full, PACKET_STATISTICS; Pipe: the peer
	// wrote into a full queue). On an OpenSplit Port: the main socket's
	// drops, every kind of frame but bare TCP SYNs.
	RxDropped uint64
	// SYNRxDropped: on an OpenSplit Port, the bare TCP SYNs its SYN socket
	// dropped because its receive queue was full (a SYN flood's cost;
	// legitimate clients retransmit); on an AF_XDP Port, those its AF_XDP
	// SYN socket dropped (XDP_STATISTICS), with, for a port of
	// OpenXDPQueues, those of its AF_PACKET side's SYN socket. Not
	// included in RxDropped or XDPRxDropped.
	SYNRxDropped uint64
	// TrustedSYNRxDropped: the bare SYNs from trusted clients (the
	// trusted lane: they completed a handshake before) that their queue
	// dropped: a flood from addresses that got trusted, or more new
	// connections from known clients than the director reads. Not
	// included in SYNRxDropped.
	TrustedSYNRxDropped uint64
	// XDPRxDropped: on an AF_XDP Port, frames the XDP program redirected
	// that the main AF_XDP socket dropped (XDP_STATISTICS: rx_dropped and
	// rx_ring_full): every kind of VIP frame but the bare SYNs of
	// SYNRxDropped. Not included in RxDropped, which counts the AF_PACKET
	// side.
	XDPRxDropped uint64
	// XDPReceived: on an AF_XDP Port, the frames read from its AF_XDP
	// sockets; the port's other frames came through its AF_PACKET
	// socket (ARP, NDP, tagged frames, and with a port per queue the
	// frames of its clients that the NIC put on another queue).
	XDPReceived uint64
	// KernelFlowsFull: on an AF_XDP Port, the kernel flows
	// (FlowPort.UpdateKernelFlows) its XDP program's map had no room for:
	// their frames go on through drlb. Not frames: flows.
	KernelFlowsFull uint64
	// TxDropped: frames dropped on the way out (AF_PACKET: the queueing
	// discipline or driver queue was full, ENOBUFS).
	TxDropped uint64
	// TxFailed: frames the kernel refused on the way out for any other
	// reason (EMSGSIZE, ENETDOWN, a virtio-net header it would not take)
	// or that WriteBatch refused itself (a length outside 14..MaxFrame),
	// skipped and not retried. The forwarder counted them forwarded, and
	// WriteBatch reports only the first error of a batch: this is where
	// the rest show.
	TxFailed uint64
}

// StatsReporter is implemented by the Ports of this package.
type StatsReporter interface {
	Stats() (Stats, error)
}

// counters are the live, concurrently updated Stats.
type counters struct {
	truncated, unrepresentable, rxDropped, txDropped, txFailed atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Truncated:       c.truncated.Load(),
		Unrepresentable: c.unrepresentable.Load(),
		RxDropped:       c.rxDropped.Load(),
		TxDropped:       c.txDropped.Load(),
		TxFailed:        c.txFailed.Load(),
	}
}

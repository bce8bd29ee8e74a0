package link

import "net/netip"

// XDPMode is implemented by the AF_XDP port (OpenXDP): how its program is
// attached, "driver" (native XDP) or "generic" (the kernel's SKB path, for
// drivers without native XDP).
type XDPMode interface{ XDPMode() string }

// VIPSetter is a Port whose kernel-side VIP set can change while it runs
// (the AF_XDP port's BPF map): a reload that adds or removes VIPs calls it.
type VIPSetter interface {
	SetVIPs(vips []netip.Addr) error
}

// SYNTable says where one service's bare TCP SYNs go while the director's
// connection table is under pressure: the forwarder's stateless choice
// (forwarder.StatelessSYNTable), for the XDP program to make it itself.
// The bucket of an IPv4 client A (big-endian) and port P is
// reduce(mix64(Seed ^ x)), x = A<<16 ^ P with HashPort, A without, over
// len(MACs) buckets (scheduler.Placement); an all-zero MAC leaves the SYN
// to drlb.
type SYNTable struct {
	VIP      netip.Addr
	Port     uint16
	Seed     uint64
	HashPort bool
	MACs     [][6]byte
}

// StatelessSYNPort is a Port whose kernel side can forward bare IPv4 SYNs
// itself (the AF_XDP port's XDP program, XDP_TX) while the director's
// table is under pressure.
//
// Why: under a SYN flood at the generator's top rate the SYNs queue for
// drlb's one worker, and a never-seen client's SYN is dropped at random
// with the flood's. Forwarded in the XDP hook, the flood costs a few
// hundred nanoseconds per SYN in the softirq of whoever sent it, as it
// does the in-kernel forwarders; the client's ACK reaches drlb, which
// adopts the connection by the same hash (forwarder, stateless SYNs).
type StatelessSYNPort interface {
	// SetStatelessSYNs turns the forwarding on or off and sets the
	// tables (with on false they are kept but unused).
	SetStatelessSYNs(on bool, tables []SYNTable) error
	// StatelessSYNsSent is how many SYNs the kernel side forwarded since
	// the port opened.
	StatelessSYNsSent() (uint64, error)
}

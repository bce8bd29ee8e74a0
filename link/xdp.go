package link

import (
	"errors"
	"net/netip"
	"time"
)

// XDPMode is implemented by the AF_XDP port (OpenXDP): how its program is
// attached, "driver" (native XDP) or "generic" (the kernel's SKB path, for
// drivers without native XDP).
type XDPMode interface{ XDPMode() string }

// XSKMode is implemented by the AF_XDP port: how the kernel bound its
// AF_XDP sockets, "zero-copy" (the driver receives into drlb's UMEM) or
// "copy" (the kernel copies each frame into it: veth, drivers without
// zero-copy, generic mode, Config.XDPCopy).
type XSKMode interface{ XSKMode() string }

// XDPAttachment is implemented by the AF_XDP port: whether its XDP
// program is still attached to the interface. A BPF link holds it, which
// only Close releases, and no other program can replace it; but an
// operator can detach the link from outside ("bpftool link detach"), and
// then the port's AF_PACKET side sees every frame (drlb goes on
// forwarding them there) and so does the kernel's IP stack. A detached
// link never comes back: drlb attaches again only when it restarts.
type XDPAttachment interface {
	XDPAttached() (bool, error)
}

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
// len(MACs) buckets (scheduler.Placement, scheduler.BucketIPv4); an IPv6
// client's (16 bytes, IPv4-mapped ones too) is scheduler.BucketIPv6's. An
// all-zero MAC leaves the SYN to drlb. A VIP is taken unmapped: an
// IPv4-mapped VIP's table is its IPv4 VIP's.
type SYNTable struct {
	VIP      netip.Addr
	Port     uint16
	Seed     uint64
	HashPort bool
	MACs     [][6]byte
}

// StatelessSYNPort is a Port whose kernel side can forward bare TCP SYNs
// (IPv4 and IPv6) itself while the director's table is under pressure:
// the AF_XDP port's XDP program (XDP_TX), or an AF_PACKET split worker
// opened with Config.KernelSYNs (its socket filter leaves them to the tc
// program that forwards kernel flows).
//
// Why: under a SYN flood at the generator's top rate the SYNs queue for
// drlb's one worker, and a never-seen client's SYN is dropped at random
// with the flood's. Forwarded in the XDP hook, the flood costs a few
// hundred nanoseconds per SYN in the softirq of whoever sent it, as it
// does the in-kernel forwarders; the client's ACK reaches drlb, which
// adopts the connection by the same hash (forwarder, stateless SYNs).
type StatelessSYNPort interface {
	// SetStatelessSYNs turns the forwarding on or off and sets the
	// tables (with on false they are kept but unused). left is how many
	// tables did not fit the kernel's maps: their SYNs stay drlb's.
	SetStatelessSYNs(on bool, tables []SYNTable) (left int, err error)
	// StatelessSYNsSent is how many SYNs the kernel side forwarded since
	// the port opened.
	StatelessSYNsSent() (uint64, error)
}

// ErrNoKernelFlows is returned by the FlowPort methods of a port (AF_XDP,
// or an AF_PACKET split worker) opened without Config.KernelFlows, or
// whose kernel flows were dropped (TCFlowPort.DropKernelFlows).
var ErrNoKernelFlows = errors.New("link: the port has no kernel flows (Config.KernelFlows)")

// ErrNoKernelSYNs is returned by the StatelessSYNPort methods of an
// AF_PACKET split worker opened without Config.KernelSYNs, or whose
// kernel side was dropped (TCFlowPort.DropKernelFlows).
var ErrNoKernelSYNs = errors.New("link: the port has no stateless SYNs in the kernel (Config.KernelSYNs)")

// ErrQueuePorts is returned for what one of OpenXDPQueues' ports cannot
// do alone: kernel flows and stateless SYNs, whose XDP maps are one for
// every queue and would be filled from one worker's table.
var ErrQueuePorts = errors.New("link: not with an AF_XDP port per receive queue")

// KernelFlow is an established TCP connection, or a UDP flow, IPv4 or
// IPv6, that the kernel forwards itself (FlowPort): a frame from Client to VIP
// (Proto 6 or 17) that drlb's fast path would forward unchanged goes to
// the server Server names, with its MACs rewritten, straight back out
// (XDP_TX), except one frame every Refresh, which goes on to drlb as
// before: drlb keeps the connection's timeout, sync records and
// persistence template fresh from it, and stays the only one that
// decides.
type KernelFlow struct {
	Client, VIP netip.AddrPort // both IPv4 (IPv4-mapped or not) or both IPv6
	Proto       uint8
	Server      uint32 // a KernelServer's ID
	Refresh     time.Duration
}

// KernelFlowKey names a KernelFlow to remove.
type KernelFlowKey struct {
	Client, VIP netip.AddrPort
	Proto       uint8
}

// KernelServer is a server the XDP program may forward flows to, and the
// destination MAC its frames get. A flow whose server is not among them
// goes to drlb.
type KernelServer struct {
	ID  uint32
	MAC [6]byte
}

// KernelCount is what the XDP program forwarded to one server since the
// port opened: frames, and their IP bytes (the IP packet's total length).
type KernelCount struct{ Packets, Bytes uint64 }

// FlowPort is a Port whose kernel side can forward the frames of
// established flows itself (the AF_XDP port's XDP program, XDP_TX).
//
// Why: with AF_XDP every frame still costs a wake-up, a copy into the
// UMEM and a copy out to an skb for the frame drlb sends; in the XDP hook
// a frame of an established flow costs a hash lookup and a MAC rewrite,
// in the softirq of whoever sent it, as the in-kernel forwarders do.
type FlowPort interface {
	// SetKernelFlowServers turns the forwarding on or off and says which
	// servers flows may go to, and the largest IP packet (total length)
	// forwarded (0: any; larger ones go to drlb, which answers them).
	SetKernelFlowServers(on bool, mtu int, servers []KernelServer) error
	// UpdateKernelFlows removes del, then adds (or replaces) add. A flow
	// that does not fit the kernel's map is left to drlb.
	UpdateKernelFlows(add []KernelFlow, del []KernelFlowKey) error
	// KernelFlowCounts is what the kernel forwarded, per server ID, since
	// the port opened.
	KernelFlowCounts() (map[uint32]KernelCount, error)
}

// MaxXDPVIPs bounds each kernel-side VIP map (IPv4 and IPv6: the XDP
// program's and the tc drop's): far more than a director's configuration
// names. A set with more VIPs of one family is refused.
const MaxXDPVIPs = 1024

package link

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"golang.org/x/net/bpf"
)

// MaxFrame is the largest frame a Port reads or writes: a 64 KiB IP packet
// (a GSO/GRO super-frame, see ARCHITECTURE.md#super-frames) plus an Ethernet header
// and one 802.1Q tag.
const MaxFrame = 65535 + 14 + 4

// vlanHeadroom is the room kept in front of every receive buffer so that an
// 802.1Q tag the kernel stripped into auxdata can be put back without a copy
// of the payload: only the 12 MAC bytes move.
const vlanHeadroom = 4

// Sentinel errors, checked with errors.Is.
var (
	// ErrClosed is returned by ReadBatch and WriteBatch after Close.
	ErrClosed = errors.New("link: port closed")
	// ErrNotPermitted wraps EPERM/EACCES from Open: the caller lacks
	// CAP_NET_RAW (socket, bind) or CAP_NET_ADMIN (some options).
	ErrNotPermitted = errors.New("link: operation not permitted (need CAP_NET_RAW/CAP_NET_ADMIN)")
	// ErrNoInterface is returned by Open for an interface that does not exist
	// in the caller's network namespace.
	ErrNoInterface = errors.New("no such network interface")
	// ErrBadConfig is returned by Open for a Config field out of range.
	ErrBadConfig = errors.New("bad link configuration")
	// ErrLinkDown wraps ENETDOWN: the interface went down. The Port stays
	// open and resumes when the interface comes back up, so a forwarding
	// loop should count the error and keep reading.
	ErrLinkDown = errors.New("link: interface down")
	// ErrBadFrame is returned by WriteBatch for a frame it cannot send (too
	// short or longer than MaxFrame); the other frames are still sent.
	ErrBadFrame = errors.New("bad frame")
	// ErrNoTrustLane is returned by TrustClients of a split Port whose
	// group runs the classic fanout program (the eBPF one, which holds the
	// trusted clients, did not load; the error says why).
	ErrNoTrustLane = errors.New("link: no trusted-client lane")
)

// ClientTruster is a Port whose bare SYNs from trusted clients skip the
// SYN queue (OpenSplit's and OpenXDP's). A director calls TrustClients with the clients
// that completed a TCP handshake through it: under a SYN flood, their new
// connections are not dropped with the flood's SYNs.
type ClientTruster interface {
	TrustClients(addrs []netip.Addr) error
}

// Frame is one frame buffer with its receive metadata.
type Frame struct {
	// Data is the frame in wire format: destination MAC first, an 802.1Q tag
	// that the kernel stripped into auxdata is re-inserted. After ReadBatch it
	// is a slice into a buffer owned by the Port, valid until the next
	// ReadBatch on that Port; its capacity is at least MaxFrame, so the caller
	// may re-slice it to write a different frame of at most MaxFrame bytes.
	Data []byte
	// Offload comes from the virtio-net header (PACKET_VNET_HDR) and is
	// written back unchanged with the frame, so the kernel completes
	// checksums and segments super-frames on the way out.
	Offload Offload
}

// GSO types of Offload.GSOType: the virtio-net values (linux/virtio_net.h).
const (
	GSONone  uint8 = 0    // not a super-frame
	GSOTCPv4 uint8 = 1    // TCP over IPv4, segment into GSOSize payloads
	GSOUDP   uint8 = 3    // UDP fragmentation offload (legacy UFO)
	GSOTCPv6 uint8 = 4    // TCP over IPv6
	GSOUDPL4 uint8 = 5    // UDP segmentation (USO, GSO_UDP_L4)
	GSOECN   uint8 = 0x80 // flag: TCP segments carry ECN CWR
)

// Offload is the checksum and segmentation state of a frame, as the kernel
// reports it in the virtio-net header.
type Offload struct {
	// CsumPartial means the L4 checksum is not complete
	// (VIRTIO_NET_HDR_F_NEEDS_CSUM, TP_STATUS_CSUMNOTREADY): the kernel must
	// finish it at CsumStart+CsumOffset on the way out.
	CsumPartial bool
	// CsumStart and CsumOffset are offsets in Data (adjusted for a
	// re-inserted VLAN tag).
	CsumStart, CsumOffset uint16
	// GSOType is the virtio GSO type, one of the GSO constants, possibly
	// with GSOECN set.
	GSOType uint8
	// GSOSize is the payload size of each segment; HdrLen the length of the
	// headers the kernel copies in front of each segment (a hint).
	GSOSize, HdrLen uint16
}

// IsSuperFrame reports whether the frame must be segmented on the way out.
func (o Offload) IsSuperFrame() bool { return o.GSOType&^GSOECN != GSONone }

// Port is a frame I/O backend: AF_PACKET (Open), in-memory (Pipe).
// WriteBatch may be called from several goroutines and concurrently with
// ReadBatch (an ARP responder next to the forwarding loop); ReadBatch calls
// are serialized, since a batch's buffers are reused by the next one.
type Port interface {
	// ReadBatch blocks until at least one frame arrives, fills frames[:n] and
	// returns n. It returns ErrClosed after Close, ctx.Err() when ctx ends.
	// The frames' Data stays valid until the next ReadBatch.
	ReadBatch(ctx context.Context, frames []Frame) (int, error)
	// WriteBatch sends frames in order (offload info applied, so the kernel
	// completes checksums and segments super-frames on the way out). It
	// returns how many frames were sent.
	WriteBatch(frames []Frame) (int, error)
	// HardwareAddr is the MAC address of the port's interface.
	HardwareAddr() net.HardwareAddr
	// Close unblocks pending calls; they and later ones return ErrClosed.
	Close() error
}

// ReadAheader is a Port that can be read ahead of the batch being
// handled: TryReadBatch fills frames with what already waits and returns
// at once (0 when nothing does), and a batch's frames, whichever call
// read them, stay valid through one more read: until the second
// ReadBatch or TryReadBatch after the one that returned them. The
// director reads the next batch this way when a batch came full, and
// starts the next batch's table lookups while it handles this one
// (forwarder.Ahead). Its errors are ReadBatch's.
type ReadAheader interface {
	TryReadBatch(frames []Frame) (int, error)
}

// FilterSetter is a Port whose socket filter can be replaced while it
// runs (AF_PACKET): a director whose VIPs change on a reload admits the new
// ones without reopening the socket, so no frame is lost. The kernel swaps
// filters atomically: each frame meets the old filter or the new one.
type FilterSetter interface {
	SetFilter(filter []bpf.RawInstruction) error
}

// Fanout is the PACKET_FANOUT group a Port joins.
type Fanout struct {
	// Group is the id of the group to join (ids are per network
	// namespace; a group of another process with the same id and mode
	// would be joined too).
	Group uint16
	// New makes the socket the first member of a new group whose id the
	// kernel picks among the unused ones (PACKET_FANOUT_FLAG_UNIQUEID;
	// Group must be 0): no other process's group is joined by chance.
	// The port's FanoutGroup method (FanoutMember) reports the id for the
	// other members.
	New bool
	// Hash, if set, sorts the group's frames by client address
	// (PACKET_FANOUT_CBPF with ClientHash's program), so that every frame
	// of a client, fragments and ICMP errors about it included, reaches
	// the same Port; every member should pass the same. Nil: the kernel's
	// flow hash (PACKET_FANOUT_HASH), which keeps each flow on one Port.
	Hash *ClientHash
	// split > 0: the group is OpenSplit's, of 2*split or 3*split members, and runs
	// Hash's split program, or, with progFD > 0, that eBPF program
	// (PACKET_FANOUT_EBPF: the split program with its trusted clients).
	split  int
	progFD int
	// noIgnoreOutgoing leaves PACKET_FANOUT_FLAG_IGNORE_OUTGOING off, as
	// kernels before 6.2 do whatever drlb asks (tests).
	noIgnoreOutgoing bool
}

// FanoutMember is a Port in a fanout group.
type FanoutMember interface {
	// FanoutGroup is the id of the port's fanout group.
	FanoutGroup() (uint16, error)
}

// Config holds the options of Open. The zero value is valid.
type Config struct {
	// BatchSize is the most frames one ReadBatch or WriteBatch system call
	// moves (recvmmsg/sendmmsg vlen). 0 means DefaultBatchSize; at most
	// MaxBatchSize. Each receive slot owns a MaxFrame buffer.
	BatchSize int
	// QdiscBypass sets PACKET_QDISC_BYPASS: frames go straight to the
	// driver, skipping the interface's queueing discipline (faster, but no
	// traffic shaping and a full driver queue drops the frame).
	QdiscBypass bool
	// Fanout, if set, joins the socket to a PACKET_FANOUT group, so that
	// several Ports (one per core) share the interface's traffic.
	Fanout *Fanout
	// Filter is a classic BPF socket filter (see VIPFilter), attached before
	// the socket starts receiving: frames it rejects never reach user space.
	Filter []bpf.RawInstruction
	// ReadBuffer is the socket receive buffer in bytes (SO_RCVBUFFORCE,
	// falling back to SO_RCVBUF). 0 means DefaultReadBuffer.
	ReadBuffer int
	// WriteBuffer is the socket send buffer in bytes; 0 keeps the kernel
	// default.
	WriteBuffer int
	// SYNReadBuffer is the receive buffer of OpenSplit's SYN sockets in
	// bytes; 0 means DefaultSYNReadBuffer. Smaller than ReadBuffer on
	// purpose: under a flood the SYN queue stays full, and a legitimate
	// SYN waits behind all of it.
	SYNReadBuffer int

	// XDPGeneric has OpenXDP attach its program in generic (SKB) mode
	// even where the driver has native XDP: slower, but XDP_TX then goes
	// through the ordinary transmit path, which a veth whose peer has no
	// XDP program needs (native XDP_TX on such a veth is dropped).
	XDPGeneric bool
	// XDPCopy has OpenXDP bind its AF_XDP sockets in copy mode even where
	// the driver has zero-copy. By default, with the program in driver
	// mode, the kernel binds them zero-copy where the driver has it and
	// in copy mode otherwise (veth); in generic mode always in copy mode.
	XDPCopy bool
	// KernelFlows gives the port kernel flows (FlowPort): OpenXDP's
	// program the maps (about 24 MiB of preallocated kernel memory for
	// maxKernelFlows flows) and the block that forwards them (XDP_TX);
	// each worker of OpenSplit maps of its own (maxKernelFlows divided
	// among them, at least 4096 each) and a socket filter in eBPF that
	// leaves their frames to the tc program AttachVIPDrop attaches
	// (TCFlowPort). Without it the port's FlowPort methods fail with
	// ErrNoKernelFlows, and VIP frames pay nothing for them.
	KernelFlows bool
	// KernelSYNs gives each worker of OpenSplit stateless SYNs in the
	// kernel (StatelessSYNPort): maps for the services' bucket tables
	// (maxSYNBuckets divided among the workers, at least
	// minWorkerSYNBuckets each: 1-4 MiB) and a socket filter in eBPF
	// that, while they are on, leaves bare TCP SYNs to the tc program
	// AttachVIPDrop attaches with the port's KernelFlowSlots. OpenXDP's
	// program always has them. Without it the port's StatelessSYNPort
	// methods fail with ErrNoKernelSYNs.
	KernelSYNs bool
	// outsidePoller opens the socket outside the Go runtime's poller
	// (rawPacketConn): for ports that poll(2) themselves.
	outsidePoller bool
	// receiveOnly opens no send socket (openTxSocket): OpenSplit's SYN
	// and trusted-SYN sockets, which only receive.
	receiveOnly bool
}

// Defaults and limits of Config.
const (
	DefaultBatchSize = 64
	MaxBatchSize     = 1024 // UIO_MAXIOV, the kernel's vlen limit
	// DefaultReadBuffer is the main socket's receive buffer: what holds
	// the frames that arrive while the worker is busy or not running,
	// since frames reach the director in bursts (on the 2-core lab VM
	// up to ~150 ms of traffic at once). In the fast-path Loss benchmark
	// (AF_PACKET, 50/80/100% of the in-kernel anchor's rate, 3 runs
	// each) 8 MiB lost 5.4-11.6% / 9.2-18.5% / 17.1-28.5%, 16 MiB 0% / 0.2-4.4% /
	// 2.5-8.5%, 32 MiB 0% / 0% / 0%. The kernel charges a frame's
	// truesize (2 KiB or more for a small frame) and doubles the value
	// asked, so this is at most 64 MiB of kernel memory per worker, used
	// only while frames wait; a queue that full is ~200 ms of delay.
	DefaultReadBuffer = 32 << 20
	// DefaultSYNReadBuffer bounds how long a SYN waits in a flooded SYN
	// socket: the queue is FIFO and full while the flood lasts, so its
	// length is the delay of every legitimate SYN. In the lab's SynFlood
	// benchmark (about 60k SYN/s at the top rate, ~45k/s read): with 8 MiB
	// connections waited ~0.5 s each (p50 530-560 ms, 36-39 served in the
	// 20 s budget), with 1 MiB p50 was 1 ms and 198 of 200 were served;
	// 256 KiB dropped SYNs even at a rate drlb keeps up with (bursts).
	DefaultSYNReadBuffer = 1 << 20
)

// NewFrames returns n frames, each with its own buffer of capacity MaxFrame
// (Data has length 0), for Pipe and tests.
func NewFrames(n int) []Frame {
	if n <= 0 {
		return nil
	}
	frames := make([]Frame, n)
	for i := range frames {
		frames[i].Data = make([]byte, 0, MaxFrame)
	}
	return frames
}

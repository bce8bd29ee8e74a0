package link

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// afpacket is the Port over one AF_PACKET socket, batched with
// recvmmsg/sendmmsg and driven by the runtime poller.
type afpacket struct {
	ifname string
	conn   packetConn
	rc     syscall.RawConn
	mac    net.HardwareAddr
	closed atomic.Bool

	rmu   sync.Mutex // one reader at a time: the rx slots are shared
	rx    rxRing
	watch ctxWatch

	wmu sync.Mutex // one writer at a time: the tx arrays are shared
	tx  txRing
	out *rawPacketConn // the send-only socket (openTxSocket)

	stats counters

	tryFn  func(fd uintptr) // tryRead's callback, bound once
	tryGot bool
}

// Open opens an AF_PACKET port on the interface ifname, in the network
// namespace of the calling thread. It needs CAP_NET_RAW (and CAP_NET_ADMIN
// for Config.ReadBuffer beyond net.core.rmem_max).
//
// The socket reads every frame arriving on the interface (ETH_P_ALL) except
// what this host transmits (PACKET_IGNORE_OUTGOING), each with its
// virtio-net header (PACKET_VNET_HDR) and auxdata (PACKET_AUXDATA); see the
// package documentation for why.
func Open(ifname string, cfg Config) (Port, error) {
	batch, err := cfg.validate(ifname)
	if err != nil {
		return nil, err
	}
	ifi, err := interfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, &Error{Interface: ifname, Err: fmt.Errorf("not an Ethernet interface (hardware address %q)", ifi.HardwareAddr), sentinel: ErrBadConfig}
	}

	// Protocol 0: the socket is bound to the interface but receives nothing
	// until the second bind below, so no frame is queued before every
	// option (and the filter, attached by packet.Listen) is in place.
	var c packetConn
	if cfg.outsidePoller {
		c, err = listenRaw(ifi.Index, withoutOutgoing(cfg.Filter))
	} else {
		c, err = packet.Listen(ifi, packet.Raw, 0, &packet.Config{Filter: withoutOutgoing(cfg.Filter)})
	}
	if err != nil {
		e := newError(ifname, "", err)
		if e.Op == "setsockopt" { // the only one in Listen: the filter
			e.Op = "setsockopt SO_ATTACH_FILTER"
		}
		return nil, e
	}
	p := &afpacket{ifname: ifname, conn: c, mac: ifi.HardwareAddr}
	if err := p.setup(ifi.Index, cfg, batch); err != nil {
		_ = c.Close()
		if p.out != nil {
			_ = p.out.Close()
		}
		return nil, err
	}
	return p, nil
}

// interfaceByName looks ifname up, telling a missing interface apart.
func interfaceByName(ifname string) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, newError(ifname, "list interfaces", err)
	}
	for i := range ifs {
		if ifs[i].Name == ifname {
			return &ifs[i], nil
		}
	}
	return nil, &Error{Interface: ifname, Err: ErrNoInterface}
}

// validate checks cfg and returns the batch size to use.
func (cfg *Config) validate(ifname string) (int, error) {
	bad := func(field string, v int, want string) error {
		return &Error{Interface: ifname, Err: fmt.Errorf("Config.%s %d: %s", field, v, want), sentinel: ErrBadConfig}
	}
	batch := cfg.BatchSize
	switch {
	case batch == 0:
		batch = DefaultBatchSize
	case batch < 0 || batch > MaxBatchSize:
		return 0, bad("BatchSize", batch, fmt.Sprintf("must be 0 (default %d) to %d", DefaultBatchSize, MaxBatchSize))
	}
	if cfg.ReadBuffer < 0 {
		return 0, bad("ReadBuffer", cfg.ReadBuffer, "must not be negative")
	}
	if cfg.WriteBuffer < 0 {
		return 0, bad("WriteBuffer", cfg.WriteBuffer, "must not be negative")
	}
	if cfg.SYNReadBuffer < 0 {
		return 0, bad("SYNReadBuffer", cfg.SYNReadBuffer, "must not be negative")
	}
	if n := len(cfg.Filter); n > maxFilterLen-len(outgoingPrefix) {
		return 0, bad("Filter length", n, fmt.Sprintf("at most %d instructions (BPF_MAXINSNS, less %d of drlb's)", maxFilterLen-len(outgoingPrefix), len(outgoingPrefix)))
	}
	return batch, nil
}

// sockopt is one integer socket option set during Open.
type sockopt struct {
	level, name int
	label       string
	value       int
}

// setup sets the socket options, starts reception and allocates the batch
// arrays. The order matters: options first, then bind to ETH_P_ALL (frames
// start queueing), then fanout (the kernel refuses it on an unbound socket).
func (p *afpacket) setup(ifindex int, cfg Config, batch int) error {
	rc, err := p.conn.SyscallConn()
	if err != nil {
		return newError(p.ifname, "syscall conn", err)
	}
	p.rc = rc

	opts := []sockopt{
		// Never read our own transmissions back (a forwarded frame read again
		// would be forwarded again).
		{unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING", 1},
		// The stripped 802.1Q tag and TP_STATUS_CSUMNOTREADY.
		{unix.SOL_PACKET, unix.PACKET_AUXDATA, "PACKET_AUXDATA", 1},
		// Checksum and GSO state of each frame, so super-frames and partial
		// checksums go back out correctly (ARCHITECTURE.md#kernel-pitfalls).
		{unix.SOL_PACKET, unix.PACKET_VNET_HDR, "PACKET_VNET_HDR", 1},
	}
	// Qdisc bypass and the send buffer are the send socket's
	// (openTxSocket): this one sends nothing.
	for _, o := range opts {
		if err := p.setsockopt(o.level, o.name, o.value); err != nil {
			return newError(p.ifname, "setsockopt "+o.label, err)
		}
	}
	rbuf := cfg.ReadBuffer
	if rbuf == 0 {
		rbuf = DefaultReadBuffer
	}
	// SO_RCVBUFFORCE may exceed net.core.rmem_max but needs CAP_NET_ADMIN;
	// SO_RCVBUF is capped silently. Either is fine for correctness.
	if err := p.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rbuf); err != nil {
		if err := p.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, rbuf); err != nil {
			return newError(p.ifname, "setsockopt SO_RCVBUF", err)
		}
	}

	// ETH_P_ALL rather than one socket per ethertype: a socket bound to a
	// protocol sits behind VLAN handling, so the kernel has already removed
	// the 802.1Q tag (and with no VLAN device marked the frame as not for
	// this host) by the time it sees the frame; ETH_P_ALL taps get the tag
	// in auxdata. One socket also means one fd, one poller wait per batch.
	// The cost of ETH_P_ALL (our own transmissions, unrelated protocols) is
	// removed by PACKET_IGNORE_OUTGOING and the BPF filter.
	var berr error
	err = p.rc.Control(func(fd uintptr) {
		berr = unix.Bind(int(fd), &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	})
	if err == nil {
		err = berr
	}
	if err != nil {
		return newError(p.ifname, "bind ETH_P_ALL", err)
	}

	if cfg.Fanout != nil {
		if err := p.joinFanout(*cfg.Fanout); err != nil {
			return err
		}
	}

	if !cfg.receiveOnly {
		if p.out, err = openTxSocket(ifindex, cfg); err != nil {
			return newError(p.ifname, "send socket", err)
		}
	}

	p.rx.init(batch)
	p.tx.init(batch)
	p.rx.fn = p.rx.recv // method values made once: the hot path allocates nothing
	p.tx.fn = p.tx.send
	p.tryFn = func(fd uintptr) { p.tryGot = p.rx.recv(fd) }
	return nil
}

// joinFanout joins the fanout group fo. In hash mode the kernel's
// symmetric flow hash keeps each flow (both directions) on one socket; with
// fo.Hash the group runs ClientHash's program instead (set on every
// member: the last one set is the group's). No PACKET_FANOUT_FLAG_DEFRAG:
// it would hand us reassembled datagrams, and frames must leave
// byte-identical.
func (p *afpacket) joinFanout(fo Fanout) error {
	mode := unix.PACKET_FANOUT_HASH
	var prog []bpf.RawInstruction
	if fo.progFD > 0 {
		mode = unix.PACKET_FANOUT_EBPF
	} else if fo.Hash != nil {
		var err error
		if fo.split > 0 {
			prog, err = fo.Hash.splitProgram(fo.split)
		} else {
			prog, err = fo.Hash.Program()
		}
		if err != nil {
			return &Error{Interface: p.ifname, Err: err, sentinel: ErrBadConfig}
		}
		mode = unix.PACKET_FANOUT_CBPF
	}
	// The group's hook, not each member's, is the one the kernel offers
	// outgoing frames to: without the group flag, frames sent by a socket
	// outside the group (the send-only socket, openTxSocket) come back
	// through the fanout program to a member, as if received.
	if !fo.noIgnoreOutgoing {
		mode |= unix.PACKET_FANOUT_FLAG_IGNORE_OUTGOING
	}
	v := int(fo.Group) | mode<<16
	if fo.New {
		if fo.Group != 0 {
			return &Error{Interface: p.ifname, Err: fmt.Errorf("a new fanout group with id %d: the kernel picks the id", fo.Group), sentinel: ErrBadConfig}
		}
		v |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
	}
	if err := p.setsockopt(unix.SOL_PACKET, unix.PACKET_FANOUT, v); err != nil {
		return newError(p.ifname, fmt.Sprintf("setsockopt PACKET_FANOUT group %d", fo.Group), err)
	}
	if fo.progFD > 0 {
		if err := p.setsockopt(unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, fo.progFD); err != nil {
			return newError(p.ifname, "setsockopt PACKET_FANOUT_DATA (eBPF)", err)
		}
		return nil
	}
	if prog == nil {
		return nil
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, r := range prog {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	var serr error
	err := p.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptSockFprog(int(fd), unix.SOL_PACKET, unix.PACKET_FANOUT_DATA,
			&unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return newError(p.ifname, "setsockopt PACKET_FANOUT_DATA", err)
	}
	return nil
}

// FanoutGroup reports the id of the socket's fanout group (FanoutMember).
func (p *afpacket) FanoutGroup() (uint16, error) {
	var v int
	var serr error
	err := p.rc.Control(func(fd uintptr) {
		v, serr = unix.GetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_FANOUT)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, newError(p.ifname, "getsockopt PACKET_FANOUT", err)
	}
	return uint16(v), nil
}

func (p *afpacket) setsockopt(level, name, value int) error {
	return setsockoptInt(p.rc, level, name, value)
}

// setsockoptInt sets an integer option on the socket rc controls.
func setsockoptInt(rc syscall.RawConn, level, name, value int) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), level, name, value)
	})
	if err != nil {
		return err
	}
	return serr
}

// htons converts to network byte order, as sll_protocol wants.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (p *afpacket) HardwareAddr() net.HardwareAddr {
	return append(net.HardwareAddr(nil), p.mac...)
}

// SetFilter replaces the socket filter (see FilterSetter and VIPFilter).
func (p *afpacket) SetFilter(filter []bpf.RawInstruction) error {
	if n := len(filter); n == 0 || n > maxFilterLen-len(outgoingPrefix) {
		return &Error{Interface: p.ifname, Err: fmt.Errorf("filter of %d instructions: want 1..%d (BPF_MAXINSNS, less %d of drlb's)", n, maxFilterLen-len(outgoingPrefix), len(outgoingPrefix)), sentinel: ErrBadConfig}
	}
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.conn.SetBPF(withoutOutgoing(filter)); err != nil {
		return newError(p.ifname, "setsockopt SO_ATTACH_FILTER", err)
	}
	return nil
}

// Close closes the socket; blocked ReadBatch/WriteBatch calls return
// ErrClosed.
func (p *afpacket) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.watch.disarm()
	// The send socket's Close waits for a writer, which sees closed
	// within one poll wait.
	var terr error
	if p.out != nil {
		terr = p.out.Close()
	}
	if err := p.conn.Close(); err != nil {
		return newError(p.ifname, "close", err)
	}
	if terr != nil {
		return newError(p.ifname, "close send socket", terr)
	}
	return nil
}

package link

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ebpflink "github.com/cilium/ebpf/link"
	"github.com/drlb/drlb/internal/monotime"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// xdpPort is the AF_XDP Port: an XDP program on the interface redirects
// frames to the VIPs into three AF_XDP sockets on queue 0 (OpenXDP; with
// OpenXDPQueues, one port per queue, each with its three; zero-copy
// where the driver has it and the program runs in driver mode, unless
// Config.XDPCopy; copy mode otherwise), and
// an AF_PACKET socket, as Open makes it, reads everything else drlb needs
// (ARP, NDP, and VIP frames the XDP path does not take: 802.1Q-tagged
// ones, and those arriving on other queues, which the program passes).
// Frames go out through the AF_XDP socket when they carry no offload
// state and fit a UMEM chunk, through the AF_PACKET socket otherwise.
//
// The AF_XDP sockets are the SYN split of OpenSplit's ports: the SYN
// socket (syn, sharing x's UMEM) gets the bare TCP SYNs of clients not in
// the trusted map (TrustClients), the trusted-SYN socket (tsyn, sharing
// it too) those of trusted clients, the main one (x) every other VIP
// frame. Under a SYN flood from spoofed sources only the SYN socket's
// small ring overflows: ACKs and established traffic wait in the main
// ring and trusted clients' SYNs in theirs, which the flood does not
// reach.
type xdpPort struct {
	ifname string
	// ap is the AF_PACKET side: OpenXDP's one socket, or for
	// OpenXDPQueues the worker's split port of the workers' group.
	ap   packetSide
	objs *xdpObjects
	// attach holds the program on the interface; amu guards it between
	// XDPAttached and Close. Not mmu: reading a link's info takes the
	// kernel's rtnl lock, which route churn can hold a while, and the
	// data path takes mmu every batch.
	// OpenXDPQueues' ports share attach, and amu with it.
	amu    *sync.Mutex
	attach ebpflink.Link
	mode   string
	// generic: attach in generic mode only (Config.XDPGeneric); copyOnly:
	// AF_XDP sockets in copy mode even where zero-copy is there
	// (Config.XDPCopy).
	generic, copyOnly bool
	// zeroCopy: the kernel bound the sockets in zero-copy mode (set by
	// setup, then read only). txOffUntil: AF_XDP transmit does not work
	// (monotime.Now; 0: it does): every frame goes out through
	// AF_PACKET until then. Forever (txOffForever) for a zero-copy
	// socket whose program was detached; for txRetry after a send the
	// kernel refused (a device down or gone), then AF_XDP is tried again.
	zeroCopy bool
	// txOffUntil is shared by OpenXDPQueues' ports: the program they need
	// for zero-copy transmit is one, and so is the device.
	txOffUntil *atomic.Int64
	x          *xsk
	syn        *xskRX // untrusted bare SYNs
	tsyn       *xskRX // trusted clients' bare SYNs
	closed     atomic.Bool
	// Frames moved through the AF_XDP sockets (the rest went through the
	// AF_PACKET side; rxSYN: through the two SYN sockets, counted in
	// rxXDP too), for tests and the start-up log.
	rxXDP, rxSYN, txXDP atomic.Uint64
	// kflowPort is the FlowPort over objs.flows (Config.KernelFlows).
	kflowPort
	// refs counts OpenXDPQueues' open ports, which share objs and
	// attach (nil for OpenXDP's one port).
	refs *atomic.Int32

	rmu sync.Mutex
	// bufs are the receive slots for frames copied out of the UMEM, in
	// two halves that reads returning frames fill in turn (half), so
	// that a batch stays valid through the next read (ReadAheader).
	bufs []byte
	half int
	pfds []unix.PollFd // main, SYN, trusted SYN, the AF_PACKET side's, then wake's
	wake closeWake
	// apReady: the last poll (or a full read) says the AF_PACKET socket
	// has frames; sinceAP counts the batches since it was last read.
	apReady bool
	sinceAP int
	odd     bool  // who gets an odd SYN slot, in turn
	apErr   error // the AF_PACKET side's error met after the rings gave frames, reported next

	wmu  sync.Mutex
	sent []bool
	rest []Frame

	// mmu keeps Close from freeing the maps and sockets under SetVIPs,
	// TrustClients (the director's loop, after a batch) and Stats.
	mmu sync.Mutex
	// lastXDP is what Stats last read from the AF_XDP sockets (under
	// mmu): returned once they are closed, so that the drop counters a
	// scrape sees during shutdown do not fall back to 0.
	lastXDP Stats
}

// packetSide is an xdpPort's AF_PACKET side: an afpacket, or a
// splitPort (OpenXDPQueues).
type packetSide interface {
	TryReadBatch(frames []Frame) (int, error)
	WriteBatch(frames []Frame) (int, error)
	Stats() (Stats, error)
	SetFilter(filter []bpf.RawInstruction) error
	HardwareAddr() net.HardwareAddr
	Close() error
	// pollFDs are its sockets, for the port's poll(2).
	pollFDs() ([]int32, error)
	// batchSize is the most frames one read returns.
	batchSize() int
}

// OpenXDP opens an AF_XDP port on ifname for the given VIPs, with cfg for
// its AF_PACKET side (cfg.Filter: the VIPFilter for the same VIPs). It
// attaches the XDP program (driver mode, else generic) through a BPF link,
// so the program is detached when the port closes or the process dies.
func OpenXDP(ifname string, cfg Config, vips []netip.Addr) (Port, error) {
	cfg.outsidePoller = true // ReadBatch polls all three sockets itself
	pp, err := Open(ifname, cfg)
	if err != nil {
		return nil, err
	}
	p := &xdpPort{ifname: ifname, ap: pp.(*afpacket), generic: cfg.XDPGeneric, copyOnly: cfg.XDPCopy, txOffUntil: new(atomic.Int64), amu: new(sync.Mutex)}
	flows := 0
	if cfg.KernelFlows {
		flows = maxKernelFlows
	}
	if err := p.setup(vips, flows); err != nil {
		p.teardown()
		return nil, err
	}
	p.bind(ifname, "XDP kernel flows", p.ap.HardwareAddr(), &p.mmu, &p.closed, &p.objs.flows)
	return p, nil
}

// OpenXDPQueues opens n AF_XDP ports on ifname, port q on receive queue q,
// one per worker, sharing one XDP program: each port's sockets take the
// VIP frames of queue q whose client is worker q's (h.Index(client, n) is
// q), and the program passes the others. The ports' AF_PACKET sides are
// OpenSplit's ports of n workers (a fanout group sorted by h; bare SYNs,
// and trusted clients' bare SYNs, on sockets of their own), so a passed
// frame reaches its client's worker there: every frame of a client meets
// in one worker's connection table, whichever queue the NIC put it on (a
// NIC's RSS hashes ports, which a client's connections, its fragments and
// the ICMP errors about it do not share). RSS does not know h either:
// with n queues about 1/n of the frames arrive on their worker's queue
// and take AF_XDP, the others take AF_PACKET (ARCHITECTURE.md, "AF_XDP on
// several queues").
//
// cfg is as for OpenXDP, but its Fanout is the group's (any given is
// ignored), and kernel flows and stateless SYNs are refused
// (ErrQueuePorts): the program's maps for them are one for all queues.
// n = 1 is OpenXDP. Closing a port closes its sockets; the program stays
// on the interface until the last port closes.
func OpenXDPQueues(ifname string, cfg Config, vips []netip.Addr, n int, h ClientHash) (ports []Port, err error) {
	if n <= 1 {
		p, err := OpenXDP(ifname, cfg, vips)
		if err != nil {
			return nil, err
		}
		return []Port{p}, nil
	}
	if cfg.KernelFlows {
		return nil, newError(ifname, "kernel flows", ErrQueuePorts)
	}
	defer func() {
		if err != nil {
			for _, p := range ports {
				p.Close()
			}
			ports = nil
		}
	}()
	cfg.Fanout = nil
	refs, txOff, amu := new(atomic.Int32), new(atomic.Int64), new(sync.Mutex)
	// Every AF_PACKET member first (OpenSplit joins them in worker
	// order), then the program: a frame it passes meanwhile (no socket
	// in its queue's slot yet, or another worker's client) must find
	// its owner's member in the group already, or it would wait in
	// another worker's socket and open its connection in the wrong
	// table. A split port, not one socket: the bare SYNs a flood puts
	// on other queues queue apart from the worker's ACKs, trusted
	// clients' apart from both, as with AF_PACKET.
	split, err := OpenSplit(ifname, cfg, n, h)
	if err != nil {
		return nil, err
	}
	for _, sp := range split {
		refs.Add(1)
		ports = append(ports, &xdpPort{ifname: ifname, ap: sp.(*splitPort), generic: cfg.XDPGeneric, copyOnly: cfg.XDPCopy,
			refs: refs, txOffUntil: txOff, amu: amu})
	}
	// One map of trusted clients for the program and the group's
	// fanout program, where the group has one (its eBPF lane loaded).
	var trusted *trustedClients
	if lane := split[0].(*splitPort).lane; lane != nil {
		trusted = lane.trustedClients
	}
	first := ports[0].(*xdpPort)
	err = first.attachProgram(vips, 0, n, &h, trusted)
	// Every port holds the program and maps, even half made: whichever
	// closes last frees them.
	for _, port := range ports[1:] {
		p := port.(*xdpPort)
		p.objs, p.attach, p.mode = first.objs, first.attach, first.mode
	}
	if err != nil {
		return ports, err
	}
	for q, port := range ports {
		if err := port.(*xdpPort).openSockets(q); err != nil {
			return ports, err
		}
	}
	return ports, nil
}

// setup attaches the program, with room for flows kernel flows (0: none),
// and opens the sockets on queue 0.
func (p *xdpPort) setup(vips []netip.Addr, flows int) error {
	if err := p.attachProgram(vips, flows, 1, nil, nil); err != nil {
		return err
	}
	return p.openSockets(0)
}

// attachProgram loads the program for queues receive queues (owners and
// trusted: see loadQueues) and attaches it.
func (p *xdpPort) attachProgram(vips []netip.Addr, flows, queues int, owners *ClientHash, trusted *trustedClients) error {
	ifi, err := interfaceByName(p.ifname)
	if err != nil {
		return err
	}
	p.objs, err = loadQueues(queues, DefaultTrustedClients, flows, owners, trusted)
	if err != nil {
		return newError(p.ifname, "load XDP", err)
	}
	if err := p.objs.setVIPs(vips); err != nil {
		return newError(p.ifname, "XDP VIPs", err)
	}
	// The program first: until the sockets are in the XSKMAP it passes
	// the VIP frames (an empty slot), for the moment setup takes. Then
	// the sockets, zero-copy only with the program in driver mode:
	// a driver's zero-copy transmit needs its native program (without
	// it the wakeup fails and sent frames stay in the ring), and a
	// driver may take a zero-copy socket and then refuse the native
	// program (a jumbo MTU, guest offloads), where copy mode and a
	// generic program work.
	err = errors.New("generic mode asked for")
	if !p.generic {
		p.attach, err = ebpflink.AttachXDP(ebpflink.XDPOptions{Program: p.objs.prog, Interface: ifi.Index, Flags: ebpflink.XDPDriverMode})
		p.mode = "driver"
	}
	if err != nil {
		var gerr error
		p.attach, gerr = ebpflink.AttachXDP(ebpflink.XDPOptions{Program: p.objs.prog, Interface: ifi.Index, Flags: ebpflink.XDPGenericMode})
		if gerr != nil {
			return newError(p.ifname, "attach XDP", errors.Join(err, gerr))
		}
		p.mode = "generic"
	}
	return nil
}

// openSockets opens the port's AF_XDP sockets on receive queue q and puts
// them in the program's XSKMAP.
func (p *xdpPort) openSockets(q int) error {
	ifi, err := interfaceByName(p.ifname)
	if err != nil {
		return err
	}
	apfds, err := p.ap.pollFDs()
	if err != nil {
		return newError(p.ifname, "syscall conn", err)
	}
	g := xskOnePort
	if p.refs != nil { // one of OpenXDPQueues' ports: a queue's share of the frames
		g = xskQueuePort
	}
	p.x, err = newXSK(ifi.Index, q, p.zeroCopyAllowed(), g)
	if err != nil {
		return newError(p.ifname, "AF_XDP", err)
	}
	p.zeroCopy = p.x.zeroCopy
	p.syn, err = newSharedXSK(p.x, ifi.Index, q, xskSYNRing)
	if err != nil {
		return newError(p.ifname, "AF_XDP SYN socket", err)
	}
	p.tsyn, err = newSharedXSK(p.x, ifi.Index, q, xskSYNRing)
	if err != nil {
		return newError(p.ifname, "AF_XDP trusted-SYN socket", err)
	}
	for _, s := range []struct {
		lane int
		fd   int
	}{{xskLaneMain, p.x.fd}, {xskLaneSYN, p.syn.fd}, {xskLaneTrusted, p.tsyn.fd}} {
		if err := p.objs.xsks.Put(xskSlot(q, s.lane), uint32(s.fd)); err != nil {
			return newError(p.ifname, "XSKMAP", err)
		}
	}
	batch := p.ap.batchSize()
	p.bufs = make([]byte, 2*slotLen*batch)
	p.sent = make([]bool, batch)
	p.rest = make([]Frame, 0, batch)
	p.pfds = []unix.PollFd{{Fd: int32(p.x.fd), Events: unix.POLLIN}, {Fd: int32(p.syn.fd), Events: unix.POLLIN},
		{Fd: int32(p.tsyn.fd), Events: unix.POLLIN}}
	for _, fd := range apfds {
		p.pfds = append(p.pfds, unix.PollFd{Fd: fd, Events: unix.POLLIN})
	}
	if p.wake, err = newCloseWake(); err != nil {
		return newError(p.ifname, "eventfd", err)
	}
	p.pfds = append(p.pfds, p.wake.pollFd())
	return nil
}

// zeroCopyAllowed: the sockets may bind zero-copy, with the program in
// driver mode and Config.XDPCopy not set (setup says why).
func (p *xdpPort) zeroCopyAllowed() bool { return p.mode == "driver" && !p.copyOnly }

// txRetry is how long the port sends through AF_PACKET after the kernel
// refused an AF_XDP send, before it tries AF_XDP again: a device that
// went down may come back, and each try while it is down costs at most
// a batch. txOffForever: not again (a zero-copy socket without program).
const (
	txRetry      = time.Second
	txOffForever = math.MaxInt64
)

// XDPMode reports "driver" or "generic".
func (p *xdpPort) XDPMode() string { return p.mode }

// XSKMode reports "zero-copy" or "copy".
func (p *xdpPort) XSKMode() string {
	if p.zeroCopy {
		return "zero-copy"
	}
	return "copy"
}

// XDPAttached reports whether the port's XDP link still holds its program
// on the interface: the kernel says the link's interface is gone (index
// 0) once it was detached from outside drlb, or the interface was
// deleted.
func (p *xdpPort) XDPAttached() (bool, error) {
	p.amu.Lock()
	defer p.amu.Unlock()
	if p.closed.Load() || p.attach == nil {
		return false, ErrClosed
	}
	info, err := p.attach.Info()
	if err != nil {
		return false, newError(p.ifname, "XDP link info", err)
	}
	x := info.XDP()
	attached := x != nil && x.Ifindex != 0
	if !attached && p.zeroCopy {
		// The driver's zero-copy transmit needs its program: frames
		// put in the ring now would stay there.
		p.txOffUntil.Store(txOffForever)
	}
	return attached, nil
}

func (p *xdpPort) HardwareAddr() net.HardwareAddr { return p.ap.HardwareAddr() }

// SetFilter replaces the AF_PACKET side's filter.
func (p *xdpPort) SetFilter(filter []bpf.RawInstruction) error { return p.ap.SetFilter(filter) }

// SetVIPs changes the VIPs the XDP program redirects.
func (p *xdpPort) SetVIPs(vips []netip.Addr) error {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.objs.setVIPs(vips); err != nil {
		return newError(p.ifname, "XDP VIPs", err)
	}
	return nil
}

// pollReadable waits in poll(2) until one of pfds is readable or
// waitMillis pass (0: not at all; EINTR counts as a pass): a Port that
// reads several sockets without the Go netpoller.
func pollReadable(ifname string, pfds []unix.PollFd, waitMillis int) error {
	for i := range pfds {
		pfds[i].Revents = 0
	}
	if _, err := unix.Poll(pfds, waitMillis); err != nil && err != unix.EINTR {
		return newError(ifname, "poll", err)
	}
	return nil
}

// pollWaitMillis bounds a wait that must end soon even with no traffic:
// an AF_XDP reader's while its TX ring holds frames a kick left (each
// poll sends them), and rawPacketConn's, which has no closeWake.
const pollWaitMillis = 50

// ReadBatch returns frames from the AF_XDP sockets first, then from the
// AF_PACKET socket, without waiting; with nothing on any it waits in
// poll(2).
//
// The AF_XDP sockets share the batch as OpenSplit's ports do: when SYNs
// wait, at most 3/4 of the batch comes from the main socket, so heavy
// established traffic does not starve new connections; the two SYN
// sockets share the rest (half each when both wait, an odd slot to each in
// turn), and their frames come first in the batch (a SYN is older than any
// ACK of its handshake read with it). Unlike an AF_PACKET queue a ring
// shows how much it holds, so each takes what the others leave: any one
// alone fills the batch.
//
// The AF_PACKET socket (ARP, NDP, tagged frames, the real servers'
// neighbour replies) is read when the last poll said it has frames, and
// at least every apEvery batches, with 1/8 of the batch kept for it then:
// under a SYN flood the rings fill every batch, and the director must
// still answer ARP for its VIPs. Reading it only then spares an empty
// read (a system call) at each wake-up. A port of OpenXDPQueues reads its
// AF_PACKET side first, every batch, with what the rings leave but at
// least half: it carries the worker's clients' frames from the other
// queues, and with 1/8 its ACKs and requests got 6 of 64 slots while a
// flood's SYNs on the port's own queue took 56.
func (p *xdpPort) ReadBatch(ctx context.Context, frames []Frame) (int, error) {
	return p.read(ctx, frames, true)
}

// TryReadBatch is ReadBatch without waiting: 0 when nothing waits
// (ReadAheader).
func (p *xdpPort) TryReadBatch(frames []Frame) (int, error) {
	return p.read(context.Background(), frames, false)
}

// read is ReadBatch, waiting in poll(2) for frames if wait is set.
func (p *xdpPort) read(ctx context.Context, frames []Frame, wait bool) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	frames = frames[:min(len(frames), len(p.sent))]
	batch := len(p.sent)
	bufs := p.bufs[p.half*batch*slotLen : (p.half+1)*batch*slotLen]
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := p.apErr; err != nil {
			p.apErr = nil
			return 0, err
		}
		mainWait, synWait, tsynWait := int(p.x.rx.avail()), int(p.syn.rx.avail()), int(p.tsyn.rx.avail())
		p.sinceAP++
		apDue := p.apReady || p.sinceAP >= apEvery
		rings := frames
		m := 0 // frames from a queue port's AF_PACKET side, first
		switch {
		case p.refs != nil:
			// A queue's port: its AF_PACKET side carries the worker's
			// clients' frames from the other queues (most of them with
			// more than two), ACKs and requests among them. It is read
			// every batch, first, with what the rings leave of the
			// batch but at least half; its own split keeps 3/4 of that
			// for its main socket while SYNs wait, as the rings do.
			var err error
			m, err = p.ap.TryReadBatch(frames[:len(frames)-min(mainWait+synWait+tsynWait, len(frames)/2)])
			if err != nil {
				return 0, err
			}
			rings, apDue = frames[m:], false
		case apDue:
			rings = frames[:len(frames)-max(len(frames)/8, 1)]
		}
		share := len(rings) - len(rings)/4
		// The SYN rings' room; the trusted one takes it first, but
		// leaves half to the other when both wait (an odd slot to each
		// in turn).
		room := len(rings) - min(mainWait, share)
		half := room/2 + room%2*b2i(!p.odd)
		if synWait > 0 && tsynWait > 0 {
			p.odd = !p.odd
		}
		kt := min(tsynWait, room-min(synWait, half))
		kt = p.x.receive(&p.tsyn.rx, rings[:kt], bufs)
		k := kt + p.x.receive(&p.syn.rx, rings[kt:kt+min(synWait, room-kt)], bufs[kt*slotLen:])
		n := k + p.x.receive(&p.x.rx, rings[k:], bufs[k*slotLen:])
		if n > 0 {
			p.half ^= 1
			p.rxXDP.Add(uint64(n))
			p.rxSYN.Add(uint64(k))
		}
		n += m
		if apDue && n < len(frames) {
			m, err := p.ap.TryReadBatch(frames[n:])
			if err != nil {
				if n == 0 {
					return 0, err
				}
				p.apErr = err // the frames first: a link going down is still said
			}
			// A full read may have left more behind; a one-frame batch
			// looks again only after apEvery, or the rings would wait.
			p.apReady, p.sinceAP = m == len(frames)-n && len(frames) > 1, 0
			n += m
		}
		if n > 0 || !wait {
			return n, nil
		}
		wait := idleWaitMillis
		if p.x.txPending() {
			wait = pollWaitMillis // each poll sends what a kick left (TestXDPPortKicksPendingTX)
		}
		if err := pollReadable(p.ifname, p.pfds, ctxWaitMillis(ctx, wait)); err != nil {
			return 0, err
		}
		p.apReady = false
		for _, pfd := range p.pfds[3 : len(p.pfds)-1] {
			p.apReady = p.apReady || pfd.Revents != 0
		}
	}
}

// apEvery bounds how many batches the AF_XDP port reads without looking
// at its AF_PACKET socket.
const apEvery = 8

// WriteBatch sends what fits through the AF_XDP socket and the rest
// (frames with offload state) through the AF_PACKET socket, each group in
// order; while AF_XDP transmit is off (txOffUntil) everything through
// AF_PACKET.
func (p *xdpPort) WriteBatch(frames []Frame) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if until := p.txOffUntil.Load(); until != 0 {
		if until == txOffForever || monotime.Now() < until {
			return p.ap.WriteBatch(frames)
		}
		p.txOffUntil.CompareAndSwap(until, 0) // try AF_XDP again
	}
	total := 0
	var first error
	for len(frames) > 0 {
		if p.txOffUntil.Load() != 0 { // a send below just failed
			n, err := p.ap.WriteBatch(frames)
			total += n
			if err != nil && first == nil {
				first = err
			}
			break
		}
		chunk := frames[:min(len(frames), len(p.sent))]
		frames = frames[len(chunk):]
		k, err := p.x.send(chunk, p.sent)
		if err != nil {
			// These k may never leave; the next frames go through
			// AF_PACKET for a while.
			p.txOffUntil.CompareAndSwap(0, monotime.Now()+int64(txRetry))
			if first == nil {
				first = newError(p.ifname, "AF_XDP transmit (through AF_PACKET for "+txRetry.String()+")", err)
			}
		}
		p.txXDP.Add(uint64(k))
		total += k
		p.rest = p.rest[:0]
		for i := range chunk {
			if !p.sent[i] {
				p.rest = append(p.rest, chunk[i])
			}
		}
		if len(p.rest) > 0 {
			n, err := p.ap.WriteBatch(p.rest)
			total += n
			if err != nil && first == nil {
				first = err
			}
			clear(p.rest) // keep no reference to the caller's buffers
		}
	}
	return total, first
}

// Stats is the AF_PACKET side's counters with the AF_XDP sockets' drops
// (XDP_STATISTICS): the main socket's in XDPRxDropped, the SYN socket's in
// SYNRxDropped and the trusted-SYN socket's in TrustedSYNRxDropped (bare
// SYNs only, as on an OpenSplit port), and the kernel flows that did not
// fit the XDP program's map in KernelFlowsFull.
func (p *xdpPort) Stats() (Stats, error) {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	s, err := p.ap.Stats()
	closed := p.closed.Load()
	if !closed { // closed, the sockets are gone: what they said last
		p.lastXDP = Stats{XDPRxDropped: xskDrops(p.x.fd), SYNRxDropped: xskDrops(p.syn.fd), TrustedSYNRxDropped: xskDrops(p.tsyn.fd)}
	}
	s.XDPRxDropped = p.lastXDP.XDPRxDropped
	s.XDPReceived = p.rxXDP.Load()
	// The AF_PACKET side's SYN drops (a split port's) with the rings'.
	s.SYNRxDropped += p.lastXDP.SYNRxDropped
	s.TrustedSYNRxDropped += p.lastXDP.TrustedSYNRxDropped
	s.KernelFlowsFull = p.full.Load()
	if closed {
		return s, ErrClosed
	}
	return s, err
}

// xskDrops is what AF_XDP socket fd dropped of the frames redirected to
// it: rx_dropped (no fill chunk, or too long) and rx_ring_full.
func xskDrops(fd int) uint64 {
	var xs unix.XDPStatistics
	if getsockoptXDP(fd, unix.XDP_STATISTICS, &xs) != nil {
		return 0
	}
	return xs.Rx_dropped + xs.Rx_ring_full
}

// TrustClients puts addrs in the XDP program's trusted-client map: from
// then on their bare SYNs reach the trusted-SYN AF_XDP socket.
func (p *xdpPort) TrustClients(addrs []netip.Addr) error {
	p.mmu.Lock()
	defer p.mmu.Unlock()
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.objs.trusted.trust(addrs); err != nil {
		return &Error{Interface: p.ifname, Op: "trusted clients", Err: err}
	}
	// A queue port's split side needs nothing more: where its group has
	// an eBPF lane, the program shares the lane's map (OpenXDPQueues).
	return nil
}

// Close closes the AF_PACKET side (which ends a WriteBatch waiting there
// for room), detaches the XDP program, then closes the AF_XDP sockets.
func (p *xdpPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.wake.wake() // a reader waiting in poll returns at once and sees closed
	p.rmu.Lock()
	// The AF_PACKET side before wmu: a writer waiting there for room in
	// a send buffer that does not drain holds wmu until that side is
	// closed (teardown's Close of it again is a no-op).
	apErr := p.ap.Close()
	p.wmu.Lock()
	p.mmu.Lock()
	defer p.mmu.Unlock()
	defer p.wmu.Unlock()
	defer p.rmu.Unlock()
	err := p.teardown()
	if err == nil {
		err = apErr
	}
	return err
}

func (p *xdpPort) teardown() error {
	var err error
	// One of OpenXDPQueues' ports: the program and its maps stay for the
	// others until the last closes.
	last := p.refs == nil || p.refs.Add(-1) == 0
	p.amu.Lock()
	if !last {
		p.attach = nil
	}
	if p.attach != nil {
		if e := p.attach.Close(); e != nil {
			err = fmt.Errorf("detach XDP from %s: %w", p.ifname, e)
		}
		p.attach = nil
	}
	p.amu.Unlock()
	for _, s := range []**xskRX{&p.syn, &p.tsyn} {
		if *s != nil { // before the socket whose UMEM they share
			(*s).close()
			*s = nil
		}
	}
	if p.x != nil {
		p.x.close()
		p.x = nil
	}
	p.wake.close()
	if p.objs != nil {
		if last {
			p.objs.close()
		}
		p.objs = nil
	}
	if e := p.ap.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

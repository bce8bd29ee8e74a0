package link

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// splitPort is one worker's Port of a split group (OpenSplit): a main
// AF_PACKET socket for every frame but bare TCP SYNs, a SYN socket for
// bare SYNs, and with the trusted lane a trusted-SYN socket for the bare
// SYNs of trusted clients. Under a SYN flood the SYN socket's queue
// overflows and the kernel drops SYNs there (a legitimate client
// retransmits its SYN after a second), while ACKs, established
// connections' data, ARP and NDP wait in the main socket's queue, which
// holds only them, and trusted clients' SYNs in their own.
type splitPort struct {
	ifname    string
	main, syn *afpacket
	tsyn      *afpacket // the trusted-SYN socket, nil without the trusted lane
	closed    atomic.Bool

	lane    *trustLane // shared by the group's ports; nil: laneErr says why
	laneErr error

	// With Config.KernelFlows or KernelSYNs: the worker's kernel side
	// (pktflows_linux.go, pktsyns_linux.go), and with KernelFlows
	// (kflows) the FlowPort over it; kmu keeps Close from freeing the
	// maps under a FlowPort or StatelessSYNPort call or SetFilter.
	kflows bool
	kf     *pktFlows
	kmu    sync.Mutex
	kflowPort

	rmu     sync.Mutex
	pfds    []unix.PollFd // main, SYN, trusted SYN, then wake's
	wake    closeWake
	pending error // a socket error met after frames were read, reported next
	odd     bool  // who gets an odd SYN slot, in turn (ReadBatch)
}

// OpenSplit opens the Ports of n workers on ifname (n >= 1), each over
// AF_PACKET sockets of one fanout group that h's program sorts by client:
// worker i's main socket gets client c's frames when h.Index(c, n) == i,
// except bare TCP SYNs (SYN set, ACK clear, not an IPv4 fragment, IPv6
// without extension headers), which go to worker i's SYN socket
// (ClientHash.SplitIndex), or, from a client in the trusted map
// (TrustClients), to its trusted-SYN socket. So a client's SYN and the ACK
// that completes its handshake reach the same worker, and a flood of SYNs
// queues apart from everything else. The group has 3n members with the
// trusted lane (an eBPF fanout program), 2n without (the classic program,
// where eBPF does not load or 3n would pass the kernel's 256 members).
//
// ReadBatch reads the main socket first: when a SYN socket has frames, at
// most 3/4 of a batch comes from main and the rest from the SYN sockets,
// so heavy established traffic does not starve new connections; main alone
// fills the batch. WriteBatch writes through a send-only socket. Stats
// reports the SYN sockets' receive drops apart (Stats.SYNRxDropped,
// Stats.TrustedSYNRxDropped).
//
// cfg applies to every socket (cfg.Filter too), but for the SYN sockets'
// receive buffer (Config.SYNReadBuffer); cfg.Fanout must be nil.
func OpenSplit(ifname string, cfg Config, n int, h ClientHash) (ports []Port, err error) {
	if n < 1 {
		return nil, &Error{Interface: ifname, Err: fmt.Errorf("a split group of %d workers: want at least 1", n), sentinel: ErrBadConfig}
	}
	if cfg.Fanout != nil {
		return nil, &Error{Interface: ifname, Err: fmt.Errorf("Config.Fanout set: OpenSplit makes the fanout group"), sentinel: ErrBadConfig}
	}
	if _, err := cfg.validate(ifname); err != nil {
		return nil, err
	}
	var opened []*afpacket
	defer func() {
		if err != nil {
			for _, p := range opened {
				p.Close()
			}
		}
	}()
	// The kernel numbers a group's members in the order they join (and
	// only fills a leaver's place with the last member), so the n main
	// sockets join first, then the n SYN sockets: member i is worker i's
	// main socket, member n+i its SYN socket. Until the last one joins,
	// the kernel takes the program's result modulo fewer members and may
	// queue a frame on another socket; nobody reads them before OpenSplit
	// returns, and only those first frames can be misplaced.
	// The eBPF split program adds the trusted-client lane; where it does
	// not load (no CAP_BPF, an old kernel), the classic one splits alone.
	var lane *trustLane
	var laneErr error
	if 3*n > maxFanoutMembers {
		laneErr = fmt.Errorf("%d workers need %d fanout members with a trusted-SYN socket each, more than the kernel's %d", n, 3*n, maxFanoutMembers)
	} else {
		lane, laneErr = loadTrustLane(h, n, DefaultTrustedClients)
	}
	defer func() {
		if lane != nil {
			lane.closeProgram()
			if err != nil {
				lane.refs.Store(1)
				lane.release()
			}
		}
	}()
	fo := Fanout{New: true, Hash: &h, split: n}
	if lane != nil {
		fo.progFD = lane.prog.FD()
	}
	// With the trusted lane, n trusted-SYN sockets join last (members
	// 2n..3n-1); the classic program never returns them.
	members := 2 * n
	if lane != nil {
		members = 3 * n
	}
	for i := range members {
		c := cfg
		if i >= n {
			c.ReadBuffer = cmp.Or(cfg.SYNReadBuffer, DefaultSYNReadBuffer)
			c.receiveOnly = true // the port writes through main
		}
		f := fo
		c.Fanout = &f
		c.outsidePoller = true // ReadBatch polls the sockets itself
		p, err := Open(ifname, c)
		if err != nil {
			return nil, err
		}
		ap := p.(*afpacket)
		opened = append(opened, ap)
		if fo.New {
			id, err := ap.FanoutGroup()
			if err != nil {
				return nil, err
			}
			fo.New, fo.Group = false, id
		}
	}
	var slots *ebpf.Map
	if cfg.KernelFlows || cfg.KernelSYNs {
		if slots, err = newKflowSlots(); err != nil {
			return nil, newError(ifname, "kernel flows", err)
		}
		defer slots.Close() // each port holds its own descriptor
	}
	// A failure closes the kernel flows and eventfds of the ports made
	// so far (the sockets are closed above).
	fail := func(err error) ([]Port, error) {
		for _, q := range ports {
			q.(*splitPort).closeKernelFlows()
			q.(*splitPort).wake.close()
		}
		return nil, err
	}
	for i := range n {
		var tsyn *afpacket
		if lane != nil {
			tsyn = opened[2*n+i]
		}
		p, err := newSplitPort(ifname, opened[i], opened[n+i], tsyn)
		if err != nil {
			return fail(err)
		}
		p.lane, p.laneErr = lane, laneErr
		ports = append(ports, p)
		if slots != nil {
			flows, synBuckets := 0, 0
			if cfg.KernelFlows {
				flows = max(maxKernelFlows/n, minWorkerKernelFlows)
			}
			if cfg.KernelSYNs {
				synBuckets = max(maxSYNBuckets/n, minWorkerSYNBuckets)
			}
			if err := p.openKernelFlows(slots, flows, synBuckets, cfg.Filter); err != nil {
				return fail(err)
			}
		}
	}
	if lane != nil {
		lane.refs.Store(int32(n))
	}
	return ports, nil
}

func newSplitPort(ifname string, main, syn, tsyn *afpacket) (*splitPort, error) {
	p := &splitPort{ifname: ifname, main: main, syn: syn, tsyn: tsyn}
	for _, ap := range p.sockets() {
		if err := ap.rc.Control(func(fd uintptr) { p.pfds = append(p.pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}) }); err != nil {
			return nil, newError(ifname, "syscall conn", err)
		}
	}
	var err error
	if p.wake, err = newCloseWake(); err != nil {
		return nil, newError(ifname, "eventfd", err)
	}
	p.pfds = append(p.pfds, p.wake.pollFd())
	return p, nil
}

// pollFDs are the sockets' fds (not wake's: a port that polls them has
// its own).
func (p *splitPort) pollFDs() ([]int32, error) {
	fds := make([]int32, len(p.pfds)-1)
	for i, pfd := range p.pfds[:len(fds)] {
		fds[i] = pfd.Fd
	}
	return fds, nil
}

func (p *splitPort) batchSize() int { return len(p.main.rx.msgs) }

// sockets are the port's sockets: main, SYN, and the trusted-SYN one if
// there is one.
func (p *splitPort) sockets() []*afpacket {
	if p.tsyn == nil {
		return []*afpacket{p.main, p.syn}
	}
	return []*afpacket{p.main, p.syn, p.tsyn}
}

// ReadBatch asks poll(2) which sockets have frames, then reads main
// first, at most 3/4 of the batch when a SYN socket has frames too (all of
// it when not), then fills the rest from the trusted-SYN socket (at most
// half of the rest when the SYN socket has frames too) and the SYN
// socket, and returns the SYN sockets' frames in front. Polling first
// costs one system call per batch under load and saves two at every
// wake-up: a read of an empty socket is a system call too, and at a
// moderate rate every batch follows a wake-up. With nothing on any, poll
// waits until Close (closeWake) or the context's deadline, at most
// idleWaitMillis at a time, so that a cancelled context is seen.
func (p *splitPort) ReadBatch(ctx context.Context, frames []Frame) (int, error) {
	return p.read(ctx, frames, idleWaitMillis)
}

// TryReadBatch is ReadBatch without waiting: 0 when no socket has frames
// (ReadAheader). It still asks poll(2), with no timeout: the sockets'
// shares depend on which ones wait.
func (p *splitPort) TryReadBatch(frames []Frame) (int, error) {
	return p.read(context.Background(), frames, 0)
}

// read is ReadBatch with poll(2) waiting at most waitMillis at a time;
// with 0 it returns 0 when nothing waits.
func (p *splitPort) read(ctx context.Context, frames []Frame, waitMillis int) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	frames = frames[:min(len(frames), len(p.main.rx.msgs))]
	share := len(frames) - len(frames)/4
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if err := p.pending; err != nil {
			p.pending = nil
			return 0, err
		}
		if err := pollReadable(p.ifname, p.pfds, ctxWaitMillis(ctx, waitMillis)); err != nil {
			return 0, err
		}
		mainReady, synReady := p.pfds[0].Revents != 0, p.pfds[1].Revents != 0
		tsynReady := p.tsyn != nil && p.pfds[2].Revents != 0
		n := 0
		if mainReady {
			limit := len(frames)
			if synReady || tsynReady {
				limit = share
			}
			var err error
			if n, err = p.main.tryRead(frames[:limit]); err != nil {
				return 0, err
			}
		}
		// The SYN sockets' frames go behind main's, then move in front.
		k := 0
		read := func(ap *afpacket, limit int) error {
			got, err := ap.tryRead(frames[n+k : n+k+limit])
			k += got
			if err != nil {
				if n+k == 0 {
					return err
				}
				p.pending = err
			}
			return nil
		}
		if rest := len(frames) - n; rest > 0 && tsynReady {
			if synReady {
				// Half each; an odd slot goes to each in turn, so that
				// neither starves the other in small batches.
				rest = rest/2 + rest%2*b2i(p.odd)
				p.odd = !p.odd
			}
			if rest > 0 {
				if err := read(p.tsyn, rest); err != nil {
					return 0, err
				}
			}
		}
		if rest := len(frames) - n - k; rest > 0 && synReady && p.pending == nil {
			if err := read(p.syn, rest); err != nil {
				return 0, err
			}
		}
		if k > 0 && n > 0 {
			// The SYN sockets' frames first: a SYN is older than any
			// ACK of its handshake read with it (the queues lost their
			// order), and when the SYN reached the server by another
			// path too (a kernel forwarding VIP frames, drlb lab's
			// forwarding-on) the ACK would otherwise find no entry.
			slices.Reverse(frames[:n])
			slices.Reverse(frames[n : n+k])
			slices.Reverse(frames[:n+k])
		}
		if n += k; n > 0 || waitMillis == 0 {
			return n, nil
		}
	}
}

// maxFanoutMembers is the most sockets a fanout group takes when joined
// without a PACKET_FANOUT_DATA size (PACKET_FANOUT_MAX, 256).
const maxFanoutMembers = 256

// b2i is 1 for true.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// WriteBatch writes through the main socket's Port (its send-only socket).
func (p *splitPort) WriteBatch(frames []Frame) (int, error) { return p.main.WriteBatch(frames) }

func (p *splitPort) HardwareAddr() net.HardwareAddr { return p.main.HardwareAddr() }

// FanoutGroup is the id of the split group.
func (p *splitPort) FanoutGroup() (uint16, error) { return p.main.FanoutGroup() }

// SetFilter replaces every socket's filter (a VIP change on reload); with
// kernel flows or stateless SYNs, the eBPF filter is rebuilt around it.
func (p *splitPort) SetFilter(filter []bpf.RawInstruction) error {
	p.kmu.Lock()
	if p.kf != nil { // decided and attached under one lock (DropKernelFlows)
		defer p.kmu.Unlock()
		return p.setKernelFlowFilterLocked(filter)
	}
	p.kmu.Unlock()
	for _, ap := range p.sockets() {
		if err := ap.SetFilter(filter); err != nil {
			return err
		}
	}
	return nil
}

// Stats adds the sockets' counters, but for the receive drops: the SYN
// socket's are SYNRxDropped, the trusted-SYN socket's
// TrustedSYNRxDropped, the main socket's RxDropped, so that an operator
// sees whether a flood cost anything but SYNs, and whether it reached the
// trusted clients.
func (p *splitPort) Stats() (Stats, error) {
	s, err := p.main.Stats()
	s.KernelFlowsFull = p.full.Load()
	for i, ap := range p.sockets()[1:] {
		ss, serr := ap.Stats()
		s.Truncated += ss.Truncated
		s.Unrepresentable += ss.Unrepresentable
		s.TxDropped += ss.TxDropped
		s.TxFailed += ss.TxFailed
		if i == 0 {
			s.SYNRxDropped = ss.RxDropped
		} else {
			s.TrustedSYNRxDropped = ss.RxDropped
		}
		if err == nil {
			err = serr
		}
	}
	return s, err
}

// TrustClients puts addrs in the group's trusted-client map: from then
// on their bare SYNs reach the trusted-SYN socket of their worker
// (whichever port is told: the map is the group's). ErrNoTrustLane when the group runs the classic
// program.
func (p *splitPort) TrustClients(addrs []netip.Addr) error {
	if p.lane == nil {
		return &Error{Interface: p.ifname, Op: "trusted clients", Err: p.laneErr, sentinel: ErrNoTrustLane}
	}
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.lane.trust(addrs); err != nil {
		if errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		return &Error{Interface: p.ifname, Op: "trusted clients", Err: err}
	}
	return nil
}

// Close closes the sockets; a reader sees ErrClosed within one poll wait.
func (p *splitPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.lane != nil {
		defer p.lane.release()
	}
	p.closeKernelFlows()
	// The reader polls the fds: they close only once it is out, which
	// wake makes at once.
	p.wake.wake()
	p.rmu.Lock()
	defer p.rmu.Unlock()
	var err error
	for _, ap := range p.sockets() {
		if e := ap.Close(); err == nil {
			err = e
		}
	}
	p.wake.close()
	return err
}

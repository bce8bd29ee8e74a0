package link

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AF_XDP socket geometry (xskGeometry): one UMEM of frames() chunks of
// xskChunk bytes, rxChunks() of them lent to the kernel for receiving
// (fill ring), the rest (xskTxRing) kept for transmitting (less
// xskZeroCopyExtra, lent too, in zero-copy mode). The main socket's
// receive ring holds rxRing entries, its transmit and completion rings
// xskTxRing (powers of two). The receive ring is all the buffering AF_XDP
// has (an AF_PACKET socket has its whole receive buffer, 32 MiB), and it
// must take the bursts the frames come in: on the busy 2-core lab VM, at
// 30k frames/s, polls that waited 7-52 ms woke to 177-1024 frames at
// once, and 2000-4400 were seen waiting in a ring being drained. With 2048
// entries 3-6% were dropped (XDPRxDropped); with 8192, in most runs some
// (3717-36575 over four runs of the fast-path benchmarks); with 16384,
// 0-13676 (ARCHITECTURE.md, "AF_XDP: what XDP cannot carry"), and at the
// anchor's full rate 0-3.5% of the frames (10396-16430 per run); with
// 32768, 0% in four runs. One port (OpenXDP) takes every frame and has
// the 32768 (xskOnePort, 84 MiB); each of OpenXDPQueues' ports takes a
// queue's share and keeps 16384 (xskQueuePort, 52 MiB), so that a NIC of
// many queues does not pin 84 MiB for each.
//
// The SYN and trusted-SYN sockets (xskRX) share the UMEM and its fill
// ring, each with a small receive ring of its own (xskSYNRing): under a
// flood it stays full, so its length is the delay of a legitimate SYN, as
// DefaultSYNReadBuffer's is on the AF_PACKET path (1024 SYNs: about 20 ms
// at 50k SYN/s read). Enough chunks are lent for all three receive rings
// full at once, so a SYN flood that fills its ring leaves the main ring
// all its entries; the fill ring is the next power of two that holds them
// all and xskZeroCopyExtra.
const (
	xskChunk   = 2048
	xskTxRing  = 8192
	xskSYNRing = 1024
	// xskMaxFrame is the longest frame a chunk receives: the kernel
	// keeps XDP_PACKET_HEADROOM (256) of it in front of the frame.
	xskMaxFrame = xskChunk - 256
)

// xskGeometry is a UMEM's main receive ring and fill ring sizes.
type xskGeometry struct{ rxRing, fillRing int }

var (
	xskOnePort   = xskGeometry{rxRing: 32768, fillRing: 65536}
	xskQueuePort = xskGeometry{rxRing: 16384, fillRing: 32768}
)

// rxChunks is how many chunks are lent for receiving: main, SYN and
// trusted-SYN rings full at once.
func (g xskGeometry) rxChunks() int { return g.rxRing + 2*xskSYNRing }

// frames is the UMEM's chunks.
func (g xskGeometry) frames() int { return g.rxChunks() + xskTxRing }

// XDPPortMemory is the UMEM an AF_XDP port maps and the kernel pins (the
// frames its sockets receive and send): OpenXDP's one port when ports is
// 1, each of OpenXDPQueues' otherwise.
func XDPPortMemory(ports int) int {
	if ports <= 1 {
		return xskChunk * xskOnePort.frames() // 84 MiB
	}
	return xskChunk * xskQueuePort.frames() // 52 MiB
}

// ring is one of the four AF_XDP rings, mapped from the socket. The
// producer and consumer words are shared with the kernel: read and
// written atomically, with our own side cached.
type ring struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	descs    unsafe.Pointer
	mask     uint32
}

func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// xsk is one AF_XDP socket bound to one queue of an interface, with its
// own UMEM: in zero-copy mode where the driver has it and newXSK was let
// take it, copy mode otherwise.
type xsk struct {
	fd       int
	zeroCopy bool // the kernel bound it in zero-copy mode (XDP_OPTIONS)
	// txBudget is how many frames one sendto sends in copy mode:
	// xskTxBudget where the kernel takes XDP_MAX_TX_SKB_BUDGET (6.17
	// and later), its TX_BATCH_SIZE (xskKickBudget) before.
	txBudget int
	// sendtos counts kick's system calls (tests read it).
	sendtos uint64
	umem    []byte
	fill    ring // we produce free chunks for the kernel to receive into
	comp    ring // the kernel returns chunks it has sent
	rx      ring // the kernel produces received frames
	tx      ring // we produce frames to send
	free    []uint64
}

// newXSK opens an AF_XDP socket on ifindex's queue. With zeroCopy the
// kernel binds it in zero-copy mode where the driver has it (the frames
// stay in the UMEM the driver receives into), in copy mode otherwise
// (veth, drivers without it: a bind without mode flags falls back); without,
// in copy mode always.
func newXSK(ifindex, queue int, zeroCopy bool, g xskGeometry) (_ *xsk, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket AF_XDP: %w", err)
	}
	x := &xsk{fd: fd}
	defer func() {
		if err != nil {
			x.close() // x, not the result, which a failing return sets to nil
		}
	}()
	x.umem, err = unix.Mmap(-1, 0, xskChunk*g.frames(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap UMEM: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: xskChunk}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG, uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); e != 0 {
		return nil, fmt.Errorf("setsockopt XDP_UMEM_REG: %w", e)
	}
	rings := []struct {
		r       *ring
		opt     int
		pgoff   int64
		entries int
		desc    uintptr
	}{
		{&x.fill, unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_PGOFF_FILL_RING, g.fillRing, 8},
		{&x.comp, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_UMEM_PGOFF_COMPLETION_RING, xskTxRing, 8},
		{&x.rx, unix.XDP_RX_RING, unix.XDP_PGOFF_RX_RING, g.rxRing, unsafe.Sizeof(unix.XDPDesc{})},
		{&x.tx, unix.XDP_TX_RING, unix.XDP_PGOFF_TX_RING, xskTxRing, unsafe.Sizeof(unix.XDPDesc{})},
	}
	for _, r := range rings {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, r.entries); err != nil {
			return nil, fmt.Errorf("setsockopt XDP ring %d: %w", r.opt, err)
		}
	}
	x.txBudget = setTxBudget(fd)
	off, err := mmapOffsets(fd)
	if err != nil {
		return nil, err
	}
	for i, o := range []unix.XDPRingOffset{off.Fr, off.Cr, off.Rx, off.Tx} {
		r := rings[i]
		if err := r.r.mmap(fd, o, r.pgoff, r.entries, r.desc); err != nil {
			return nil, err
		}
	}
	// Lend the receive chunks to the kernel.
	prod := atomic.LoadUint32(x.fill.producer)
	for i := range g.rxChunks() {
		*x.fill.addr(prod) = uint64(i * xskChunk)
		prod++
	}
	atomic.StoreUint32(x.fill.producer, prod)
	x.free = make([]uint64, 0, g.frames()-g.rxChunks())
	for i := g.rxChunks(); i < g.frames(); i++ {
		x.free = append(x.free, uint64(i*xskChunk))
	}
	sa := &unix.SockaddrXDP{Flags: xskBindFlags(zeroCopy), Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind AF_XDP to queue %d: %w", queue, err)
	}
	var opts struct{ flags uint32 } // struct xdp_options
	if err := getsockoptXDP(fd, unix.XDP_OPTIONS, &opts); err != nil {
		return nil, fmt.Errorf("getsockopt XDP_OPTIONS: %w", err)
	}
	x.zeroCopy = opts.flags&unix.XDP_OPTIONS_ZEROCOPY != 0
	if x.zeroCopy {
		// The driver's own receive ring holds chunks too (512 to 2048
		// by default), which copy mode's kernel never takes: lend it
		// xskZeroCopyExtra of the transmit chunks, so that the three
		// rings can still fill at once (a driver out of fill chunks
		// spins in its poll without XDP_USE_NEED_WAKEUP).
		prod := atomic.LoadUint32(x.fill.producer)
		for range xskZeroCopyExtra {
			*x.fill.addr(prod) = x.free[len(x.free)-1]
			x.free = x.free[:len(x.free)-1]
			prod++
		}
		atomic.StoreUint32(x.fill.producer, prod)
	}
	return x, nil
}

// xskZeroCopyExtra is how many more chunks a zero-copy socket lends the
// kernel for receiving: at least a driver's default receive ring, and
// still within the fill ring (rxChunks()+4096 <= fillRing, which
// TestXSKGeometry checks); the 4096 transmit chunks left are 64 batches.
const xskZeroCopyExtra = 4096

// xskBindFlags is the main socket's bind mode: no mode flag lets the
// kernel try zero-copy and fall back to copy mode (veth and most virtual
// drivers have no zero-copy); XDP_COPY never tries.
func xskBindFlags(zeroCopy bool) uint16 {
	if zeroCopy {
		return 0
	}
	return unix.XDP_COPY
}

func mmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	if err := getsockoptXDP(fd, unix.XDP_MMAP_OFFSETS, &off); err != nil {
		return off, fmt.Errorf("getsockopt XDP_MMAP_OFFSETS: %w", err)
	}
	return off, nil
}

// getsockoptXDP reads AF_XDP socket option opt of fd into v, the struct
// the kernel fills for it (x/sys/unix has no getter for these).
func getsockoptXDP[T any](fd, opt int, v *T) error {
	sz := uint32(unsafe.Sizeof(*v))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(unsafe.Pointer(v)), uintptr(unsafe.Pointer(&sz)), 0); e != 0 {
		return e
	}
	return nil
}

// mmap maps the ring of socket fd at pgoff: entries descriptors of
// descSize bytes, as the socket was told (setsockopt).
func (r *ring) mmap(fd int, o unix.XDPRingOffset, pgoff int64, entries int, descSize uintptr) error {
	n := int(o.Desc) + entries*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("mmap XDP ring at %#x: %w", pgoff, err)
	}
	r.mem = mem
	r.producer = (*uint32)(unsafe.Pointer(&mem[o.Producer]))
	r.consumer = (*uint32)(unsafe.Pointer(&mem[o.Consumer]))
	r.descs = unsafe.Pointer(&mem[o.Desc])
	r.mask = uint32(entries - 1)
	return nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

// avail is how many descriptors the kernel has produced that we have not
// consumed (an RX or completion ring).
func (r *ring) avail() uint32 {
	return atomic.LoadUint32(r.producer) - atomic.LoadUint32(r.consumer)
}

// xskRX is a second AF_XDP socket on an xsk's interface and queue that
// shares its UMEM (XDP_SHARED_UMEM): a receive ring of its own (entries
// long), no transmit ring, and the xsk's fill ring, into whose chunks the
// kernel (copy mode) or the driver (zero-copy) receives its frames and to
// which xsk.receive returns them. On the
// same queue the kernel allows no fill or completion ring of its own: the
// sockets share the UMEM's buffer pool (Documentation/networking/af_xdp.rst,
// "XDP_SHARED_UMEM bind flag"). The XDP program picks the socket per frame
// (its XSKMAP slot). In copy mode several CPUs may receive for the
// sockets at once; the kernel serializes the shared fill ring (its
// rx_lock is the pool's since the fix for CVE-2025-37920, 2025; older
// kernels without it may race there).
type xskRX struct {
	fd int
	rx ring
}

func newSharedXSK(owner *xsk, ifindex, queue, entries int) (_ *xskRX, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket AF_XDP: %w", err)
	}
	s := &xskRX{fd: fd}
	defer func() {
		if err != nil {
			s.close() // s, not the result, which a failing return sets to nil
		}
	}()
	if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_RX_RING, entries); err != nil {
		return nil, fmt.Errorf("setsockopt XDP_RX_RING: %w", err)
	}
	off, err := mmapOffsets(fd)
	if err != nil {
		return nil, err
	}
	if err := s.rx.mmap(fd, off.Rx, unix.XDP_PGOFF_RX_RING, entries, unsafe.Sizeof(unix.XDPDesc{})); err != nil {
		return nil, err
	}
	// No mode flags: a socket sharing a UMEM takes the owner's mode.
	sa := &unix.SockaddrXDP{Flags: unix.XDP_SHARED_UMEM, Ifindex: uint32(ifindex), QueueID: uint32(queue), SharedUmemFD: uint32(owner.fd)}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind AF_XDP to queue %d sharing a UMEM: %w", queue, err)
	}
	return s, nil
}

func (s *xskRX) close() {
	s.rx.unmap()
	if s.fd >= 0 {
		_ = unix.Close(s.fd)
		s.fd = -1
	}
}

func (x *xsk) close() {
	for _, r := range []*ring{&x.fill, &x.comp, &x.rx, &x.tx} {
		r.unmap()
	}
	if x.fd >= 0 {
		_ = unix.Close(x.fd)
		x.fd = -1
	}
	if x.umem != nil {
		_ = unix.Munmap(x.umem)
		x.umem = nil
	}
}

// receive copies up to len(frames) received frames from rx (x's own
// receive ring, or the ring of an xskRX sharing x's UMEM) into the frames'
// buffers (slots of bufs, slotLen apart), hands their chunks straight
// back to x's fill ring and returns how many frames it filled. It never
// blocks. A descriptor is not trusted to stay in its chunk: one whose
// chunk is outside the UMEM is consumed and dropped (it is no chunk of
// ours to give back), and a length past its chunk's end is cut there.
// The kernel gives neither in aligned mode; a panic here would stop the
// director.
func (x *xsk) receive(rx *ring, frames []Frame, bufs []byte) int {
	cons := atomic.LoadUint32(rx.consumer)
	n := min(int(atomic.LoadUint32(rx.producer)-cons), len(frames))
	if n == 0 {
		return 0
	}
	fprod := atomic.LoadUint32(x.fill.producer)
	kept := 0
	for i := range n {
		d := rx.desc(cons + uint32(i))
		chunk := d.Addr &^ (xskChunk - 1)
		if chunk >= uint64(len(x.umem)) {
			continue
		}
		l := int(min(uint64(d.Len), chunk+xskChunk-d.Addr, MaxFrame))
		buf := bufs[kept*slotLen : (kept+1)*slotLen : (kept+1)*slotLen]
		frames[kept].Data = buf[vlanHeadroom : vlanHeadroom+copy(buf[vlanHeadroom:vlanHeadroom+l], x.umem[d.Addr:d.Addr+uint64(l)])]
		frames[kept].Offload = Offload{} // XDP carries no checksum or GSO state
		kept++
		*x.fill.addr(fprod) = chunk
		fprod++
	}
	atomic.StoreUint32(rx.consumer, cons+uint32(n))
	atomic.StoreUint32(x.fill.producer, fprod)
	return kept
}

// reclaim takes back the chunks the kernel has finished sending.
func (x *xsk) reclaim() {
	cons := atomic.LoadUint32(x.comp.consumer)
	prod := atomic.LoadUint32(x.comp.producer)
	for ; cons != prod && len(x.free) < cap(x.free); cons++ {
		x.free = append(x.free, *x.comp.addr(cons))
	}
	atomic.StoreUint32(x.comp.consumer, cons)
}

// fits reports whether f can leave through the AF_XDP socket: plain frames
// of a chunk or less. Frames with offload state (partial checksums,
// super-frames, from the AF_PACKET side) cannot: XDP has no way to carry it.
func fits(f *Frame) bool {
	return f.Offload == (Offload{}) && len(f.Data) >= 14 && len(f.Data) <= xskChunk
}

// send queues the frames that fit (marking each in sent) and kicks the
// kernel once. It returns how many it queued; frames it did not take are
// the caller's to send another way.
// It reports the kernel's error when a kick failed for good (not EAGAIN,
// EBUSY or ENOBUFS: a zero-copy socket whose driver lost its program,
// a device gone): the frames put in the ring may never leave.
func (x *xsk) send(frames []Frame, sent []bool) (int, error) {
	x.reclaim()
	prod := atomic.LoadUint32(x.tx.producer)
	room := xskTxRing - (prod - atomic.LoadUint32(x.tx.consumer))
	n := 0
	for i := range frames {
		sent[i] = false
		f := &frames[i]
		if !fits(f) || len(x.free) == 0 || uint32(n) >= room {
			continue
		}
		a := x.free[len(x.free)-1]
		x.free = x.free[:len(x.free)-1]
		copy(x.umem[a:a+xskChunk], f.Data)
		d := x.tx.desc(prod)
		d.Addr, d.Len, d.Options = a, uint32(len(f.Data)), 0
		prod++
		n++
		sent[i] = true
	}
	if n == 0 {
		return 0, nil
	}
	atomic.StoreUint32(x.tx.producer, prod)
	err := x.kick(prod)
	x.reclaim()
	return n, err
}

// kick has the kernel send the TX ring up to prod. Copy mode sends from
// the sendto call, at most xskKickBudget frames per call (the kernel's
// TX_BATCH_SIZE) and then EAGAIN, so one call per batch would leave the
// rest of a batch of 64 in the ring until the next batch: late at a
// steady rate, and the ring fills under a burst. It calls again while the
// kernel makes progress, a bounded number of times; EBUSY/ENOBUFS mean
// the device is busy and the next kick sends the rest. Any other error is
// returned. In zero-copy mode the call only wakes the driver, which
// sends from its own context: the consumer has not moved yet, and one
// call is all.
func (x *xsk) kick(prod uint32) error {
	// Bounded by the smallest budget, not txBudget: a call may also stop
	// early, short of send buffer; each one must make progress.
	for range xskTxRing/xskKickBudget + 1 {
		before := atomic.LoadUint32(x.tx.consumer)
		x.sendtos++
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(x.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		after := atomic.LoadUint32(x.tx.consumer)
		switch e {
		case 0, unix.EAGAIN:
		case unix.EBUSY, unix.ENOBUFS:
			return nil
		default:
			return fmt.Errorf("sendto AF_XDP: %w", e)
		}
		if after == prod || after == before {
			return nil
		}
	}
	return nil
}

// txPending says the TX ring holds frames the kernel has not taken yet
// (a kick gave up on a busy device): the next poll or kick sends them.
func (x *xsk) txPending() bool {
	return atomic.LoadUint32(x.tx.consumer) != atomic.LoadUint32(x.tx.producer)
}

// xskKickBudget is how many frames one sendto sends in copy mode
// (TX_BATCH_SIZE in net/xdp/xsk.c) unless told otherwise.
const xskKickBudget = 32

// xskTxBudget is the copy-mode budget newXSK asks for: a whole batch
// (at most MaxBatchSize frames) in one sendto, where 32 took two calls
// for the default batch of 64, each a trip through the kernel's entry
// and exit, dearer in a virtual machine.
const xskTxBudget = MaxBatchSize

// setTxBudget asks the kernel to send up to xskTxBudget frames per
// sendto on fd (XDP_MAX_TX_SKB_BUDGET, after the TX ring is sized: the
// kernel refuses more than the ring holds) and returns the budget in
// force. A kernel before 6.17 does not know the option: its own 32.
func setTxBudget(fd int) int {
	if err := unix.SetsockoptInt(fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, xskTxBudget); err != nil {
		return xskKickBudget
	}
	return xskTxBudget
}

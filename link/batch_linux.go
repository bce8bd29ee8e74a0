package link

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr (Go pads it to the kernel's size).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

const (
	// slotLen is one receive buffer: VLAN headroom, then room for MaxFrame.
	slotLen = vlanHeadroom + MaxFrame
	// ctrlLen holds the PACKET_AUXDATA cmsg (CMSG_SPACE(20) = 40 on 64-bit).
	ctrlLen = 64
)

// rxRing holds the preallocated recvmmsg arrays: per slot one mmsghdr, two
// iovecs (virtio-net header, frame), a control buffer and two frame
// buffers. Reads that return frames fill the two halves of bufs in turn
// (half), so that a batch's frames stay valid through the next read (a
// caller reading ahead holds two batches: ReadAheader). Only the pages a
// frame touches become resident: 64-byte frames use one page per slot.
type rxRing struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	hdrs []byte
	ctrl []byte
	bufs []byte
	half int // the half of bufs the next read fills

	fn    func(fd uintptr) bool // r.recv, bound once
	vlen  int                   // in: slots to fill
	n     int                   // out: slots filled
	errno unix.Errno            // out
}

func (r *rxRing) init(batch int) {
	r.msgs = make([]mmsghdr, batch)
	r.iovs = make([]unix.Iovec, 2*batch)
	r.hdrs = make([]byte, vnetHdrLen*batch)
	r.ctrl = make([]byte, ctrlLen*batch)
	r.bufs = make([]byte, 2*slotLen*batch)
	for i := range batch {
		r.iovs[2*i].Base = &r.hdrs[i*vnetHdrLen]
		r.iovs[2*i].SetLen(vnetHdrLen)
		r.iovs[2*i+1].SetLen(MaxFrame)
		h := &r.msgs[i].hdr
		h.Iov = &r.iovs[2*i]
		h.SetIovlen(2)
		h.Control = &r.ctrl[i*ctrlLen]
	}
}

// prepare readies the first vlen slots for a read into the current half.
func (r *rxRing) prepare(vlen int) {
	for i := range vlen {
		m := &r.msgs[i]
		m.hdr.SetControllen(ctrlLen)
		m.hdr.Flags = 0
		m.n = 0
		r.iovs[2*i+1].Base = &r.slot(i)[vlanHeadroom]
	}
	r.vlen, r.n, r.errno = vlen, 0, 0
}

// slot is frame buffer i of the current half.
func (r *rxRing) slot(i int) []byte {
	off := (r.half*len(r.msgs) + i) * slotLen
	return r.bufs[off : off+slotLen : off+slotLen]
}

// recv is the syscall.RawConn.Read callback: false asks the poller to wait.
func (r *rxRing) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.vlen), 0, 0, 0)
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = int(n), e
		return true
	}
}

// ReadBatch reads up to min(len(frames), Config.BatchSize) frames with one
// recvmmsg, waiting in the runtime poller while none is queued. Besides
// ErrClosed and ctx.Err(), it reports socket errors once each, the Port
// staying usable: ErrLinkDown when the interface went down.
func (p *afpacket) ReadBatch(ctx context.Context, frames []Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p.watch.arm(ctx, p.conn)
	r := &p.rx
	vlen := min(len(frames), len(r.msgs))
	for {
		r.prepare(vlen)
		if err := p.rc.Read(r.fn); err != nil {
			if p.closed.Load() {
				return 0, ErrClosed
			}
			if cerr := ctx.Err(); cerr != nil {
				return 0, cerr
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A previous context's deadline: this one is still live.
				_ = p.conn.SetReadDeadline(time.Time{})
				continue
			}
			return 0, newError(p.ifname, "recvmmsg", err)
		}
		switch r.errno {
		case 0:
		case unix.EINVAL:
			// packet_rcv_vnet could not describe a frame's offload state
			// in a virtio-net header; the kernel dropped that frame and
			// the socket is fine.
			// Counted and read past, however many in a row: a run of
			// them (a peer's traffic the kernel merges into a kind of
			// super-frame it cannot describe) must not stop the
			// director, which exits on a read error. Close and ctx
			// still end the read.
			p.stats.unrepresentable.Add(1)
			if p.closed.Load() {
				return 0, ErrClosed
			}
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			continue
		default:
			return 0, newError(p.ifname, "recvmmsg", r.errno)
		}
		if n := p.fill(frames, r.n); n > 0 {
			return n, nil
		}
	}
}

// fill turns the n filled slots into frames and returns how many it kept;
// the next read that keeps any fills the other half.
func (p *afpacket) fill(frames []Frame, n int) int {
	r := &p.rx
	k := 0
	for i := range n {
		m := &r.msgs[i]
		if m.hdr.Flags&unix.MSG_TRUNC != 0 || m.n < vnetHdrLen {
			p.stats.truncated.Add(1)
			continue
		}
		off, _ := decodeVnetHdr(r.hdrs[i*vnetHdrLen:])
		fl := int(m.n) - vnetHdrLen
		buf := r.slot(i)
		data := buf[vlanHeadroom : vlanHeadroom+fl]
		cl := min(int(m.hdr.Controllen), ctrlLen)
		if aux, ok := parseAuxdata(r.ctrl[i*ctrlLen : i*ctrlLen+cl]); ok && aux.vlanValid() {
			if fl+vlanHeadroom > MaxFrame {
				// Whole in the buffer, but over MaxFrame with its tag
				// back in: WriteBatch could not send it.
				p.stats.truncated.Add(1)
				continue
			}
			data = insertTag(buf, fl, aux.tpid, aux.tci)
			off = off.shiftForTag()
		}
		frames[k] = Frame{Data: data, Offload: off}
		k++
	}
	if k > 0 {
		r.half ^= 1
	}
	return k
}

// txRing holds the preallocated sendmmsg arrays.
type txRing struct {
	msgs []mmsghdr
	iovs []unix.Iovec
	hdrs []byte
	idx  []int // index in the caller's frames of each message

	vlen    int                   // in: messages to send
	off     int                   // progress, kept across poller waits
	dropped int                   // out: frames refused with ENOBUFS
	failed  int                   // out: frames refused otherwise
	errIdx  int                   // out: first refused frame
	errno   unix.Errno            // out: its error
	fn      func(fd uintptr) bool // t.send, bound once
}

func (t *txRing) init(batch int) {
	t.msgs = make([]mmsghdr, batch)
	t.iovs = make([]unix.Iovec, 2*batch)
	t.hdrs = make([]byte, vnetHdrLen*batch)
	t.idx = make([]int, batch)
	for i := range batch {
		t.iovs[2*i].Base = &t.hdrs[i*vnetHdrLen]
		t.iovs[2*i].SetLen(vnetHdrLen)
		h := &t.msgs[i].hdr
		h.Iov = &t.iovs[2*i]
		h.SetIovlen(2)
	}
}

// send is the send socket's syscall.RawConn.Write callback. sendmmsg stops at the first
// frame the kernel refuses; that frame is skipped (counted) and the rest go
// on, so one bad frame does not cost the batch.
func (t *txRing) send(fd uintptr) bool {
	for t.off < t.vlen {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&t.msgs[t.off])), uintptr(t.vlen-t.off), 0, 0, 0)
		switch e {
		case 0:
			t.off += int(n)
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // send buffer full: wait until writable
		case unix.ENOBUFS:
			t.dropped++ // queue full: dropped like a NIC would
		default:
			if t.failed == 0 {
				t.errIdx, t.errno = t.idx[t.off], e
			}
			t.failed++
		}
		t.off++
	}
	return true
}

// WriteBatch sends frames in order with sendmmsg, each behind a virtio-net
// header built from its Offload. A frame the kernel refuses is skipped, not
// retried: WriteBatch returns how many frames the kernel accepted and the
// first error met. Frames dropped because a queue was full count in
// Stats.TxDropped and are not errors; the refused ones count in
// Stats.TxFailed.
func (p *afpacket) WriteBatch(frames []Frame) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if p.out == nil {
		return 0, &Error{Interface: p.ifname, Op: "write", Err: errors.New("a receive-only socket (a split port's SYN socket)"), sentinel: ErrBadConfig}
	}
	t := &p.tx
	sent := 0
	var first error
	for i := 0; i < len(frames); {
		k := 0
		for ; i < len(frames) && k < len(t.msgs); i++ {
			d := frames[i].Data
			if len(d) < 14 || len(d) > MaxFrame {
				p.stats.txFailed.Add(1)
				if first == nil {
					first = &Error{Interface: p.ifname, Op: fmt.Sprintf("write frame %d", i),
						Err: fmt.Errorf("length %d outside 14..%d", len(d), MaxFrame), sentinel: ErrBadFrame}
				}
				continue
			}
			encodeVnetHdr(t.hdrs[k*vnetHdrLen:], frames[i].Offload)
			t.iovs[2*k+1].Base = &d[0]
			t.iovs[2*k+1].SetLen(len(d))
			t.idx[k] = i
			k++
		}
		if k == 0 {
			continue
		}
		t.vlen, t.off, t.dropped, t.failed, t.errno = k, 0, 0, 0, 0
		err := p.out.Write(t.fn)
		for j := range k {
			t.iovs[2*j+1].Base = nil // do not keep the caller's buffers alive
		}
		p.stats.txDropped.Add(uint64(t.dropped))
		p.stats.txFailed.Add(uint64(t.failed))
		if err != nil {
			// The frames of this chunk before t.off left before the
			// error (a Close while waiting for room): count them, or a
			// caller resending the rest sends them twice.
			sent += t.off - t.dropped - t.failed
			if p.closed.Load() {
				return sent, ErrClosed
			}
			// The rest of this chunk and of the batch will not leave.
			p.stats.txFailed.Add(uint64(k - t.off + len(frames) - i))
			return sent, newError(p.ifname, "sendmmsg", err)
		}
		sent += k - t.dropped - t.failed
		if t.failed > 0 && first == nil {
			first = newError(p.ifname, fmt.Sprintf("sendmmsg frame %d", t.errIdx), t.errno)
		}
	}
	return sent, first
}

// Stats returns the drop counters; RxDropped includes the kernel's
// PACKET_STATISTICS drops up to now.
func (p *afpacket) Stats() (Stats, error) {
	if p.closed.Load() {
		return p.stats.snapshot(), ErrClosed
	}
	ks, err := p.conn.Stats() // resets the kernel's counters: accumulate
	if err != nil {
		return p.stats.snapshot(), newError(p.ifname, "getsockopt PACKET_STATISTICS", err)
	}
	p.stats.rxDropped.Add(uint64(ks.Drops))
	return p.stats.snapshot(), nil
}

// TryReadBatch is ReadBatch without waiting: it returns 0 when no frame is
// queued (ReadAheader).
func (p *afpacket) TryReadBatch(frames []Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.closed.Load() {
		return 0, ErrClosed
	}
	return p.tryRead(frames)
}

func (p *afpacket) pollFDs() ([]int32, error) {
	var fd int32
	if err := p.rc.Control(func(f uintptr) { fd = int32(f) }); err != nil {
		return nil, err
	}
	return []int32{fd}, nil
}

func (p *afpacket) batchSize() int { return len(p.rx.msgs) }

// tryRead is one recvmmsg that never waits: the AF_XDP port polls the
// socket itself. It returns 0 when nothing is queued.
func (p *afpacket) tryRead(frames []Frame) (int, error) {
	r := &p.rx
	r.prepare(min(len(frames), len(r.msgs)))
	p.tryGot = false
	if err := p.rc.Control(p.tryFn); err != nil {
		if p.closed.Load() { // Close does not take rmu: it may come between
			return 0, ErrClosed
		}
		return 0, newError(p.ifname, "recvmmsg", err)
	}
	if !p.tryGot {
		return 0, nil
	}
	switch r.errno {
	case 0:
	case unix.EINVAL:
		p.stats.unrepresentable.Add(1)
		return 0, nil
	default:
		return 0, newError(p.ifname, "recvmmsg", r.errno)
	}
	return p.fill(frames, r.n), nil
}

package link

import (
	"context"
	"net"
	"sync"
)

// PipeCapacity is how many frames each direction of a Pipe queues; a
// WriteBatch into a full queue drops the excess (counted in the reader's
// Stats.RxDropped), as a real link would, so a test cannot deadlock on it.
const PipeCapacity = 512

// Pipe returns two connected in-memory Ports: frames written to one are
// read from the other, with their Offload, in order. It is for tests of the
// forwarding loop without root or sockets. Frames are copied once, on
// WriteBatch, into buffers the reading Port owns; buffers are recycled, so
// after warm-up neither side allocates and memory follows the queue depth. The ends have the MAC addresses 02:00:00:00:00:01 and
// 02:00:00:00:00:02.
func Pipe() (Port, Port) {
	ab, ba := newPipeQueue(), newPipeQueue()
	closed := make(chan struct{})
	sh := &pipeShared{closed: closed}
	a := &pipeEnd{rx: ba, tx: ab, shared: sh, mac: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
	b := &pipeEnd{rx: ab, tx: ba, shared: sh, mac: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	return a, b
}

// pipeShared is the state both ends see: closing either closes the pipe.
type pipeShared struct {
	once   sync.Once
	closed chan struct{}
}

// pipeQueue is one direction: a ring of frame slots. Slots between held and
// head were handed to the reader by its last two reads (last marks where
// the last one starts) and stay untouched until the read after them
// (ReadAheader: a reader may hold two batches); slots between head and
// tail are queued.
type pipeQueue struct {
	mu    sync.Mutex
	slots []pipeSlot
	held  uint64   // oldest slot still owned by the reader
	last  uint64   // first slot of the reader's last batch
	head  uint64   // next slot to read
	tail  uint64   // next slot to write
	free  [][]byte // buffers of released slots, reused before allocating
	ready chan struct{}
	stats counters
}

type pipeSlot struct {
	buf []byte // capacity MaxFrame; nil while the slot is free
	off Offload
}

func newPipeQueue() *pipeQueue {
	return &pipeQueue{
		slots: make([]pipeSlot, PipeCapacity),
		free:  make([][]byte, 0, PipeCapacity),
		ready: make(chan struct{}, 1),
	}
}

// release returns the buffers of the slots the reader held before its
// last batch to the free list, so memory follows the queue's peak depth,
// not its capacity.
func (q *pipeQueue) release() {
	for ; q.held < q.last; q.held++ {
		s := &q.slots[q.held%PipeCapacity]
		q.free = append(q.free, s.buf[:0])
		s.buf = nil
	}
}

// buffer returns a free buffer of capacity MaxFrame.
func (q *pipeQueue) buffer() []byte {
	if n := len(q.free); n > 0 {
		b := q.free[n-1]
		q.free = q.free[:n-1]
		return b
	}
	return make([]byte, 0, MaxFrame)
}

// pipeEnd is one Port of a Pipe.
type pipeEnd struct {
	rx, tx *pipeQueue
	shared *pipeShared
	mac    net.HardwareAddr
	rmu    sync.Mutex // one reader at a time
}

func (e *pipeEnd) isClosed() bool {
	select {
	case <-e.shared.closed:
		return true
	default:
		return false
	}
}

// ReadBatch returns queued frames; frames queued before Close are still
// returned, then ErrClosed.
func (e *pipeEnd) ReadBatch(ctx context.Context, frames []Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	q := e.rx
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if n := q.take(frames); n > 0 {
			return n, nil
		}
		if e.isClosed() {
			return 0, ErrClosed
		}
		select {
		case <-q.ready:
		case <-e.shared.closed:
		case <-ctx.Done():
		}
	}
}

// TryReadBatch is ReadBatch without waiting: 0 when nothing is queued
// (ReadAheader).
func (e *pipeEnd) TryReadBatch(frames []Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	e.rmu.Lock()
	defer e.rmu.Unlock()
	if n := e.rx.take(frames); n > 0 {
		return n, nil
	}
	if e.isClosed() {
		return 0, ErrClosed
	}
	return 0, nil
}

// take hands the reader up to len(frames) queued frames, releasing the
// batch before its last one.
func (q *pipeQueue) take(frames []Frame) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.release()
	n := int(min(uint64(len(frames)), q.tail-q.head))
	for i := range n {
		s := &q.slots[(q.head+uint64(i))%PipeCapacity]
		frames[i] = Frame{Data: s.buf, Offload: s.off}
	}
	if n > 0 {
		q.last = q.head
		q.head += uint64(n)
	}
	return n
}

// WriteBatch copies frames into the peer's queue. Frames that do not fit
// are dropped and counted; frames longer than MaxFrame are an error.
func (e *pipeEnd) WriteBatch(frames []Frame) (int, error) {
	if e.isClosed() {
		return 0, ErrClosed
	}
	q := e.tx
	q.mu.Lock()
	sent := 0
	var err error
	for i := range frames {
		d := frames[i].Data
		if len(d) > MaxFrame {
			if err == nil {
				err = &Error{Interface: "pipe", Op: "write frame", Err: errTooLong, sentinel: ErrBadFrame}
			}
			continue
		}
		if q.tail-q.held >= PipeCapacity {
			q.stats.rxDropped.Add(1)
			continue
		}
		s := &q.slots[q.tail%PipeCapacity]
		s.buf = append(q.buffer(), d...)
		s.off = frames[i].Offload
		q.tail++
		sent++
	}
	q.mu.Unlock()
	if sent > 0 {
		select {
		case q.ready <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return sent, err
}

func (e *pipeEnd) HardwareAddr() net.HardwareAddr {
	return append(net.HardwareAddr(nil), e.mac...)
}

// Close closes both ends: blocked reads wake up, writes fail with ErrClosed.
func (e *pipeEnd) Close() error {
	e.shared.once.Do(func() { close(e.shared.closed) })
	return nil
}

// Stats reports the frames dropped because this end's queue was full.
func (e *pipeEnd) Stats() (Stats, error) {
	return e.rx.stats.snapshot(), nil
}

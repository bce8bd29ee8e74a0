package link

import (
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeRing is a ring in Go memory (no socket): entries descriptors of
// descSize bytes, producer and consumer words 8-byte aligned. It is never
// unmapped (mem stays nil).
func fakeRing(entries int, descSize uintptr) ring {
	words := make([]uint64, 2+(uintptr(entries)*descSize+7)/8)
	base := unsafe.Pointer(&words[0])
	return ring{
		producer: (*uint32)(base),
		consumer: (*uint32)(unsafe.Add(base, 8)),
		descs:    unsafe.Add(base, 16),
		mask:     uint32(entries - 1),
	}
}

// TestXSKReceiveMalformedDescriptor: a receive descriptor whose address
// or length runs past the UMEM (a kernel bug, a layout the code does not
// expect) is consumed, cut to its chunk or dropped, and never panics the
// data path (and with it the director).
func TestXSKReceiveMalformedDescriptor(t *testing.T) {
	const chunks = 4
	x := &xsk{umem: make([]byte, chunks*xskChunk), fill: fakeRing(8, 8)}
	rx := fakeRing(8, unsafe.Sizeof(unix.XDPDesc{}))
	// The last chunk, 256 bytes in (XDP_PACKET_HEADROOM), 2000 bytes
	// long: past the chunk and the UMEM's end.
	*rx.desc(0) = unix.XDPDesc{Addr: (chunks-1)*xskChunk + 256, Len: 2000}
	// An address beyond the UMEM.
	*rx.desc(1) = unix.XDPDesc{Addr: chunks * xskChunk * 16, Len: 64}
	atomic.StoreUint32(rx.producer, 2)
	frames := make([]Frame, 2)
	bufs := make([]byte, 2*slotLen)
	var n int
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("receive panicked on a malformed descriptor: %v", r)
			}
		}()
		n = x.receive(&rx, frames, bufs)
	}()
	if c := atomic.LoadUint32(rx.consumer); c != 2 {
		t.Errorf("receive consumed %d of 2 descriptors: the ring would wedge", c)
	}
	// The first is cut at its chunk's end; the second is no chunk of the
	// UMEM's and is dropped, not handed to the fill ring.
	if n != 1 || len(frames[0].Data) != xskChunk-256 {
		t.Errorf("receive kept %d frames (first %d bytes), want 1 of %d", n, len(frames[0].Data), xskChunk-256)
	}
	if p := atomic.LoadUint32(x.fill.producer); p != 1 || *x.fill.addr(0) != (chunks-1)*xskChunk {
		t.Errorf("fill ring: %d chunks given back (first %d), want 1: %d", p, *x.fill.addr(0), (chunks-1)*xskChunk)
	}
}

// TestXSKGeometry: every chunk a socket lends the kernel for receiving,
// zero-copy's extra included, fits its fill ring, and the rings are
// powers of two, in both geometries.
func TestXSKGeometry(t *testing.T) {
	for _, g := range []xskGeometry{xskOnePort, xskQueuePort} {
		if g.rxChunks()+xskZeroCopyExtra > g.fillRing {
			t.Errorf("%+v: %d chunks lent, fill ring %d", g, g.rxChunks()+xskZeroCopyExtra, g.fillRing)
		}
		for _, n := range []int{g.rxRing, g.fillRing, xskTxRing, xskSYNRing} {
			if n&(n-1) != 0 {
				t.Errorf("%+v: ring of %d entries, not a power of two", g, n)
			}
		}
	}
	if XDPPortMemory(1) != 84<<20 || XDPPortMemory(2) != 52<<20 {
		t.Errorf("UMEM per port: %d MiB alone, %d MiB of several; want 84 and 52", XDPPortMemory(1)>>20, XDPPortMemory(2)>>20)
	}
}

package forwarder

import (
	"encoding/binary"

	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/wire"
)

// Prefetch prepares the connection-table lookups of a batch of frames
// that Process will then handle: it builds each frame's connection key
// and starts loading the key's table slot into the CPU's caches, for the
// whole batch at once, and returns without waiting for memory. Process
// then finds the slots on their way or arrived. It changes no state the
// results depend on, counts nothing and has no effect on any verdict: a
// batch gives the same results with or without it, and in any order.
// Only the connection key of TCP and UDP packets (and the quoted one of
// ICMP errors) is prefetched; persistence templates and fragments are
// not, and frames beyond the first PrefetchBatch are not. It allocates
// nothing. Like Process, it is for the goroutine that owns the table.
//
// With a million connections a lookup is a random memory access (about
// 220-390 ns on the 2-core VM); see BenchmarkExistingFlowBatch for what
// this saves. Plain TCP/UDP frames get their key from quickKey, the rest
// from a full decode. Where the lookups stay in the CPU's caches it would
// only add a key and a hash per frame, so it does nothing while the table
// holds fewer than PrefetchMinConns entries or its slot array is smaller
// than PrefetchMinTableBytes.
//
// Why the whole batch at once: on the VM a prefetch whose page is not in
// the TLB appears not to retire until the page walk is done, and
// the CPU stops when its reorder window fills behind it. Issued back to
// back, the batch's walks and misses overlap each other and the CPU waits
// about once per batch; issued one per frame, 8 frames ahead (an earlier
// version), it waited for a walk at nearly every frame. Side by side at
// 1M connections: 8 ahead 145-294 ns per packet, 16 ahead 155-255, 32
// ahead 135-191, the whole batch 117-162 (4 alternated runs). Those
// prefetched ahead within the batch only: the batch's first frames had
// nothing ahead of them. Ahead, which also runs into the next batch,
// beats the whole batch at once (ahead.go).
func (f *Forwarder) Prefetch(frames [][]byte) {
	if !f.prefetches() {
		return
	}
	keys := &f.preKeys
	n := 0
	for _, frame := range frames[:min(len(frames), PrefetchBatch)] {
		if f.prefetchKey(frame, &keys[n]) {
			n++
		}
	}
	// Keys first, then the prefetches in a loop of their own: one
	// prefetch after each key, in the same loop, was slower (199-272 ns
	// per packet at 1M against 135-198, alternated), its walks no
	// longer in flight together.
	for i := range n {
		f.table.PrefetchKey(&keys[i])
	}
}

// prefetchKey builds in k the key whose slot prefetching frame loads:
// the connection key of a TCP or UDP packet, the quoted one of an ICMP
// error. It reports false for anything else.
func (f *Forwarder) prefetchKey(frame []byte, k *conntable.Key) bool {
	if quickKey(frame, k) {
		return true
	}
	var p packet
	if decode(frame, &p) != nil || !p.dst.IsValid() {
		return false
	}
	switch {
	case p.frag && !p.fragFirst:
		return false
	case p.icmpErr:
		f.setKey(k, &p.inner)
	case p.proto == protoTCP || p.proto == protoUDP:
		f.setKey(k, &p.flow)
	default:
		return false
	}
	return true
}

// PrefetchMinConns and PrefetchMinTableBytes say when Prefetch pays. A
// table's entries are scattered over its whole slot array, which is
// sized for max_conns, not for what it holds: 10k connections in the
// array of the default max_conns (1M: 64 MiB) sit on 10k pages and 10k
// cache lines, beyond the TLB's and the L2's reach, while the same 10k in
// an array for 20k (1.3 MiB) stay in the L2. Measured in batches of 64
// (ns per packet without -> with Prefetch, 3 runs): 1k in 64 MiB 62 -> 75,
// 3k in 64 MiB 80 -> 82, 10k in 64 MiB 132-152 -> 86-89, 10k in 1.3 MiB
// 66-71 -> 71-75, 30k in 3.8 MiB 97-126 -> 73-77, 30k in 16 MiB 156-213
// -> 78-80. (An earlier rule, 64k entries whatever the array, left a
// director with the default max_conns and up to 64k connections at the
// slow figures.)
const (
	PrefetchMinConns      = 1 << 12 // entries in the table
	PrefetchMinTableBytes = 2 << 20 // the slot array's size (Table.Bytes)
)

// prefetches reports whether Prefetch pays for this worker's table as it
// is now (PrefetchMinConns, PrefetchMinTableBytes).
func (f *Forwarder) prefetches() bool {
	return f.table.Len() >= f.preMin && f.table.Bytes() >= f.preMinBytes
}

// PrefetchBatch is the most frames of one Prefetch call whose slots are
// prefetched.
const PrefetchBatch = 64

// quickKey builds the connection key of a plain TCP or UDP packet (IPv4
// without options or fragmentation, IPv6 without extension headers: nearly
// all traffic) straight from the frame's bytes, the key decode and setKey
// would give; anything else reports false and goes through decode. A full
// decode into a packet, netip addresses and all, cost Prefetch as much
// again as the work it saved; a key it gets wrong would only be a useless
// prefetch, and TestQuickKey checks it gets none wrong.
func quickKey(frame []byte, k *conntable.Key) bool {
	var q plain
	return quickParse(frame, k, &q)
}

// plain is what quickParse learns about a plain TCP or UDP packet besides
// its key: the offsets and flags decode would put in a packet.
type plain struct {
	l3, l3End, l4 int
	tcpFlags      uint8
	v4            bool
}

// quickParse is quickKey, also filling in q the packet's offsets and TCP
// flags for the fast path (fastpath.go); q is left partly written when
// it reports false. q is the caller's, written and read field by field:
// returning the struct by value made the compiler assemble it on the
// stack with byte and word stores and then copy it out with 16-byte
// loads, which cannot take their data from those smaller stores still in
// flight (a store-forwarding stall, ~12% of a 1M-flow pipeline's time).
func quickParse(frame []byte, k *conntable.Key, q *plain) bool {
	et, off, ok := wire.EtherType(frame)
	if !ok {
		return false
	}
	b := frame[off:]
	q.l3, q.tcpFlags, q.v4 = off, 0, false
	switch et {
	case wire.EtherTypeIPv4:
		// Version 4, 20-byte header, neither MF nor a fragment offset.
		if len(b) < 20 || b[0] != 0x45 || binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 {
			return false
		}
		total := int(binary.BigEndian.Uint16(b[2:4]))
		if total > len(b) || total < 20 {
			return false
		}
		// v4-mapped (::ffff:a.b.c.d), as As16 gives it: two 8-byte
		// stores each (a composite literal was built byte by byte).
		le, be := binary.LittleEndian, binary.BigEndian
		le.PutUint64(k.CIP[0:8], 0)
		be.PutUint64(k.CIP[8:16], 0xffff<<32|uint64(be.Uint32(b[12:16])))
		le.PutUint64(k.VIP[0:8], 0)
		be.PutUint64(k.VIP[8:16], 0xffff<<32|uint64(be.Uint32(b[16:20])))
		k.Proto = b[9]
		q.l3End, q.l4, q.v4 = off+total, off+20, true
	case wire.EtherTypeIPv6:
		if len(b) < 40 || b[0]>>4 != 6 {
			return false
		}
		end := 40 + int(binary.BigEndian.Uint16(b[4:6]))
		if end > len(b) {
			return false
		}
		k.CIP, k.VIP = [16]byte(b[8:24]), [16]byte(b[24:40])
		k.Proto = b[6]
		q.l3End, q.l4 = off+end, off+40
	default:
		return false
	}
	l4 := frame[q.l4:q.l3End]
	switch {
	case k.Proto == protoTCP && len(l4) >= 20 && l4[12]>>4 >= 5:
		q.tcpFlags = l4[13]
	case k.Proto == protoUDP && len(l4) >= 8:
	default:
		return false
	}
	k.CPort = binary.BigEndian.Uint16(l4[0:2])
	k.VPort = binary.BigEndian.Uint16(l4[2:4])
	k.Kind = conntable.KindConn
	return true
}

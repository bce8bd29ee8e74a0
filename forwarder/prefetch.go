package forwarder

import (
	"encoding/binary"

	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/internal/wire"
)

// Prefetch loads the connection-table slots the frames will look up into
// the CPU cache, all at once, before they are processed one by one with
// Process; see conntable.Table.Prefetch. It changes no state, counts
// nothing and has no effect on any verdict: a batch gives the same results
// with or without it. Only the connection key of TCP and UDP packets (and
// the quoted one of ICMP errors) is prefetched; persistence templates and
// fragments are not. It allocates nothing. Like Process, it is for the
// goroutine that owns the table.
//
// With a million connections a lookup waits for memory; a batch of frames
// prefetched together overlaps those waits (BenchmarkExistingFlowBatch,
// slot array on huge pages: ~450 ns per packet without, ~250 with, on the
// 2-core VM). Plain TCP/UDP frames get their key from quickKey, the rest
// from a full decode. With a table that fits in the CPU cache it would
// only add a key and a hash per frame (still a loss at 10k connections
// with quickKey), so it does nothing while the table holds fewer than
// PrefetchMinConns entries.
func (f *Forwarder) Prefetch(frames [][]byte) {
	if f.table.Len() < f.preMin {
		return
	}
	n := 0
	var p packet
	for _, frame := range frames {
		if quickKey(frame, &f.pre[n]) {
			n++
			if n == len(f.pre) {
				f.table.Prefetch(f.pre[:n])
				n = 0
			}
			continue
		}
		if decode(frame, &p) != nil || !p.dst.IsValid() {
			continue
		}
		switch {
		case p.frag && !p.fragFirst:
			continue
		case p.icmpErr:
			f.setKey(&f.pre[n], &p.inner)
		case p.proto == protoTCP || p.proto == protoUDP:
			f.setKey(&f.pre[n], &p.flow)
		default:
			continue
		}
		n++
		if n == len(f.pre) {
			f.table.Prefetch(f.pre[:n])
			n = 0
		}
	}
	f.table.Prefetch(f.pre[:n])
}

// PrefetchMinConns is the table size below which Prefetch does nothing:
// 64k entries occupy at least 4 MiB of cache lines, more than the CPU
// caches keep for one core. The crossover between 10k (a loss) and 1M (a
// gain) was not measured more finely.
const PrefetchMinConns = 1 << 16

// prefetchKeys is the scratch space of Prefetch.
type prefetchKeys = [conntable.PrefetchBatch]conntable.Key

// quickKey builds the connection key of a plain TCP or UDP packet (IPv4
// without options or fragmentation, IPv6 without extension headers: nearly
// all traffic) straight from the frame's bytes, the key decode and setKey
// would give; anything else reports false and goes through decode. A full
// decode into a packet, netip addresses and all, cost Prefetch as much
// again as the work it saved; a key it gets wrong would only be a useless
// prefetch, and TestQuickKey checks it gets none wrong.
func quickKey(frame []byte, k *conntable.Key) bool {
	et, off, ok := wire.EtherType(frame)
	if !ok {
		return false
	}
	b := frame[off:]
	var l4 []byte
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
		l4 = b[20:total]
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
		l4 = b[40:end]
	default:
		return false
	}
	switch {
	case k.Proto == protoTCP && len(l4) >= 20 && l4[12]>>4 >= 5, k.Proto == protoUDP && len(l4) >= 8:
	default:
		return false
	}
	k.CPort = binary.BigEndian.Uint16(l4[0:2])
	k.VPort = binary.BigEndian.Uint16(l4[2:4])
	k.Kind = conntable.KindConn
	return true
}

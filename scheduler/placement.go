package scheduler

import (
	"encoding/binary"
	"net/netip"
)

// Placement is a consistent scheduler's choice (sh, mh) as a table, for a
// program outside Go (drlb's XDP program) to make the very same choice:
// for a flow f whose bucket entry is >= 0, Pick(f) returns exactly that
// entry; -1 means only Pick can tell (a fallback that depends on more than
// the bucket, or no usable server).
type Placement struct {
	Buckets []int32 // bucket -> server index in the snapshot, -1: ask Pick
	Port    bool    // the hash covers the client port too
}

// Bucket returns f's bucket: reduce(hashFlow(f, p.Port), len(p.Buckets)).
// It is 0 for an empty table.
func (p Placement) Bucket(f *Flow) int {
	return reduce(hashFlow(f, p.Port), len(p.Buckets))
}

// Seed is what the IPv4 hash starts from. For an IPv4 client address A
// (as a big-endian uint32) and port P the hash is
//
//	h = mix64(Seed() ^ x)
//
// with x = uint64(A)<<16 ^ uint64(P) when Port, x = uint64(A) otherwise,
// and the bucket is ((h>>32)*uint64(len(Buckets)))>>32. mix64 is the
// splitmix64 finalizer:
//
//	x ^= x >> 30; x *= 0xbf58476d1ce4e5b9
//	x ^= x >> 27; x *= 0x94d049bb133111eb
//	x ^= x >> 31
//
// An IPv6 client address (16 bytes, IPv4-mapped ones included, as big-endian
// halves H and L) costs two mixes more, then one for the port:
//
//	h = mix64(mix64(Seed() ^ H ^ 1<<63) ^ L)
//	h = mix64(h ^ uint64(P))   when Port
//
// with the same reduction (BucketIPv6).
func (p Placement) Seed() uint64 {
	if p.Port {
		return seedFlowPort
	}
	return seedFlow
}

// PlacementOf returns sc's placement if sc is an sh or mh scheduler (nil
// or others: false). An sh or mh scheduler without servers of weight
// gives a Placement with nil Buckets.
func PlacementOf(sc Scheduler) (Placement, bool) {
	switch s := sc.(type) {
	case *sh:
		p := Placement{Port: s.port}
		if len(s.table) == 0 {
			return p, true
		}
		p.Buckets = make([]int32, len(s.table))
		for b, i := range s.table {
			// As Pick: the bucket's server, else with fallback the
			// first usable one after it.
			switch {
			case s.usable[i]:
				p.Buckets[b] = i
			case s.fallback && s.next[b] >= 0:
				p.Buckets[b] = s.next[b]
			default:
				p.Buckets[b] = -1
			}
		}
		return p, true
	case *mh:
		p := Placement{Port: s.port}
		if len(s.table) == 0 {
			return p, true
		}
		p.Buckets = make([]int32, len(s.table))
		for b, i := range s.table {
			// The fallback rehashes the flow: not a function of the
			// slot, so Pick must decide.
			if s.usable[i] {
				p.Buckets[b] = i
			} else {
				p.Buckets[b] = -1
			}
		}
		return p, true
	}
	return Placement{}, false
}

// BucketIPv4 is the bucket of an IPv4 client among n by the formula Seed
// documents: the one definition the kernel programs (link) and the tests of
// every table built from a Placement are held to. TestPlacement checks it
// against Bucket.
func BucketIPv4(seed uint64, hashPort bool, n int, addr [4]byte, port uint16) int {
	x := uint64(binary.BigEndian.Uint32(addr[:]))
	if hashPort {
		x = x<<16 ^ uint64(port)
	}
	return reduce(mix64(seed^x), n)
}

// BucketIPv6 is the bucket of an IPv6 client (IPv4-mapped addresses
// included: the forwarder hashes an IPv6 packet's source as 16 bytes)
// among n by the formula Seed documents, as BucketIPv4 is for IPv4.
// TestPlacement checks it against Bucket.
func BucketIPv6(seed uint64, hashPort bool, n int, addr [16]byte, port uint16) int {
	h := hashAddr(netip.AddrFrom16(addr), seed) // always the 16-byte branch: AddrFrom16 never unmaps
	if hashPort {
		h = mix64(h ^ uint64(port))
	}
	return reduce(h, n)
}

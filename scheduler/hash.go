package scheduler

import (
	"encoding/binary"
	"net/netip"
)

// Fixed seeds. They must never come from the process (time, maphash,
// map order): directors behind ECMP compute the same hashes independently
// (ARCHITECTURE.md#many-directors). Changing them moves every sh/mh flow on upgrade.
const (
	seedFlow     = 0x6472_6c62_5f73_6863 // "drlb_shc"
	seedFlowPort = 0x6472_6c62_5f73_6870 // "drlb_shp"
	seedOffset   = 0x6472_6c62_6d68_6f66 // "drlbmhof"
	seedSkip     = 0x6472_6c62_6d68_736b // "drlbmhsk"
	golden       = 0x9e37_79b9_7f4a_7c15 // 2^64 / phi, steps rehash seeds apart
)

// mix64 is the splitmix64 finalizer: a cheap bijection whose every output bit
// depends on every input bit, so sequential client addresses spread evenly.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58_476d_1ce4_e5b9
	x ^= x >> 27
	x *= 0x94d0_49bb_1331_11eb
	x ^= x >> 31
	return x
}

// hashAddr hashes an address with a seed. An IPv4 address costs one mix;
// IPv6 (including IPv4-mapped) two. The zone is ignored.
func hashAddr(a netip.Addr, seed uint64) uint64 {
	if a.Is4() {
		b := a.As4()
		return mix64(seed ^ uint64(binary.BigEndian.Uint32(b[:])))
	}
	b := a.As16()
	h := mix64(seed ^ binary.BigEndian.Uint64(b[:8]) ^ 1<<63)
	return mix64(h ^ binary.BigEndian.Uint64(b[8:]))
}

// hashFlow hashes what sh and mh look at: the client address and, with
// port set, the client port. An IPv4 client with its port still fits one
// mix. A nil flow hashes as the zero Flow.
func hashFlow(f *Flow, port bool) uint64 {
	if f == nil {
		return hashAddr(netip.Addr{}, seedFlow)
	}
	if !port {
		return hashAddr(f.Src, seedFlow)
	}
	if f.Src.Is4() {
		b := f.Src.As4()
		return mix64(seedFlowPort ^ uint64(binary.BigEndian.Uint32(b[:]))<<16 ^ uint64(f.SrcPort))
	}
	return mix64(hashAddr(f.Src, seedFlowPort) ^ uint64(f.SrcPort))
}

// rehash derives the k-th independent hash from h, for fallback probing.
func rehash(h uint64, k int) uint64 { return mix64(h + uint64(k)*golden) }

// reduce maps h onto [0, n) without a division (Lemire's multiply-shift on
// the top 32 bits). n must be below 2^32.
func reduce(h uint64, n int) int { return int(((h >> 32) * uint64(n)) >> 32) }

package conntable

import (
	"encoding/binary"
	"math/bits"
)

// Kinds of entry. Connections and persistence templates share one table and
// are told apart by Key.Kind, so a template never matches a connection.
const (
	KindConn     uint8 = 0
	KindTemplate uint8 = 1
)

// Key identifies a connection (or a persistence template). Addresses are
// netip.Addr.As16(): IPv4 is stored v4-mapped, so one key type serves both
// families. Key is a plain comparable value of 38 bytes with no padding.
type Key struct {
	CIP, VIP     [16]byte // client IP and virtual IP, netip.Addr.As16()
	CPort, VPort uint16   // client and virtual ports (0 where the protocol has none)
	Proto        uint8    // IP protocol number
	Kind         uint8    // KindConn or KindTemplate
}

// Constants from wyhash (public domain): odd, high-entropy 64-bit primes.
const (
	wyp0 = 0xa0761d6478bd642f
	wyp1 = 0xe7037ed1a0b428db
	wyp2 = 0x8ebc6af09c88c6e3
	wyp3 = 0x589965cc75374cc3
	wyp4 = 0x1d8e4e27c47d124f
)

// mum is wyhash's mixing step: the 128-bit product folded to 64 bits.
func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// seedMix spreads a user seed (often 0 or small) over all 64 bits, once,
// at New, so the per-key hash does not pay for it.
func seedMix(seed uint64) uint64 {
	return seed ^ mum(seed^wyp0, wyp1)
}

// hashKey is a wyhash-style hash of the key's five 64-bit words. It is a pure
// function of (seed, key): no per-process randomness, so replay is
// repeatable. Three 128-bit multiplies; the high bits, which the range
// reduction uses, depend on every input bit.
func hashKey(k *Key, seed uint64) uint64 {
	w0 := binary.LittleEndian.Uint64(k.CIP[0:8])
	w1 := binary.LittleEndian.Uint64(k.CIP[8:16])
	w2 := binary.LittleEndian.Uint64(k.VIP[0:8])
	w3 := binary.LittleEndian.Uint64(k.VIP[8:16])
	w4 := uint64(k.CPort) | uint64(k.VPort)<<16 | uint64(k.Proto)<<32 | uint64(k.Kind)<<40
	a := mum(w0^wyp1, w1^seed)
	b := mum(w2^wyp2, w3^seed^wyp3)
	return mum(a^w4^wyp4, b^wyp0)
}

// keyEqual compares keys word by word, branch-free; == on Key compiles to a
// runtime.memequal call, which costs more than the compare itself.
func keyEqual(a, b *Key) bool {
	le := binary.LittleEndian
	x := le.Uint64(a.CIP[0:8]) ^ le.Uint64(b.CIP[0:8])
	x |= le.Uint64(a.CIP[8:16]) ^ le.Uint64(b.CIP[8:16])
	x |= le.Uint64(a.VIP[0:8]) ^ le.Uint64(b.VIP[0:8])
	x |= le.Uint64(a.VIP[8:16]) ^ le.Uint64(b.VIP[8:16])
	x |= uint64(a.CPort^b.CPort) | uint64(a.VPort^b.VPort)<<16 |
		uint64(a.Proto^b.Proto)<<32 | uint64(a.Kind^b.Kind)<<40
	return x == 0
}

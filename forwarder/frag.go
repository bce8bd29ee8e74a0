package forwarder

import "time"

// fragSlots bounds the fragment table. A train whose slot is taken over by
// another before its last fragment passes loses its remaining fragments
// (counted as frag-no-first); the table never grows.
const fragSlots = 4096

// fragTimeout is how long a first fragment's choice is remembered.
const fragTimeout = 10 * time.Second

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragEntry struct {
	key     fragKey
	expires int64
	svc     uint16
	ri      uint16
	used    bool
}

// fragTable remembers where the first fragment of a datagram went, so the
// others follow it (they carry no ports to schedule by). Direct-mapped:
// one probe per lookup.
type fragTable struct {
	slots [fragSlots]fragEntry
}

func fragKeyOf(p *packet) fragKey {
	if p.family == 6 {
		// RFC 8200 4.5: source, destination and identification. p.proto
		// is the upper-layer protocol in the first fragment but the
		// fragment header's next header in the others, which differ
		// when extension headers follow the fragment header.
		return fragKey{src: p.src.As16(), dst: p.dst.As16(), id: p.fragID}
	}
	return fragKey{src: p.src.As16(), dst: p.dst.As16(), id: p.fragID, proto: p.proto}
}

func (k *fragKey) slot() int {
	h := uint64(k.id)*0x9e3779b97f4a7c15 ^ uint64(k.proto)
	for i := 0; i < 16; i += 8 {
		h ^= le64(k.src[i:]) * 0xff51afd7ed558ccd
		h ^= le64(k.dst[i:]) * 0xc4ceb9fe1a85ec53
		h = (h ^ h>>29) * 0xbf58476d1ce4e5b9
	}
	return int(h>>32) % fragSlots
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func (t *fragTable) put(k *fragKey, svc, ri uint16, now int64) {
	e := &t.slots[k.slot()]
	*e = fragEntry{key: *k, expires: now + int64(fragTimeout), svc: svc, ri: ri, used: true}
}

func (t *fragTable) get(k *fragKey, now int64) (svc, ri uint16, ok bool) {
	e := &t.slots[k.slot()]
	if !e.used || e.key != *k || now > e.expires {
		return 0, 0, false
	}
	return e.svc, e.ri, true
}

package forwarder

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
)

// vipIndex finds a VIP's services for the data path. It answers what
// state.vips and state.byKey do, but a Go map hashes a netip.Addr key
// (24 bytes, its zone pointer included) with the generic AES hash, and
// the two lookups every packet made cost about a fifth of a packet of an
// existing connection. Here a few VIPs are compared in turn (three words
// each), more are hashed with one multiply. It is built once with the
// state and never changed.
type vipIndex struct {
	// slots are the VIPs in order when there are at most vipLinearMax
	// (shift 0), else a hash table: a power of two, at most half full,
	// an empty slot's vip invalid.
	slots []vipSlot
	shift uint // 64 - log2(len(slots)): the hash's top bits index
}

// vipLinearMax is the most VIPs find compares one by one: cheaper than
// hashing the address (As16 and a multiply) while they fit a cache line
// or two.
const vipLinearMax = 4

type vipSlot struct {
	vip netip.Addr
	// svcs are the services on vip, in configuration order; nil when
	// there are more than vipScanMax (then byKey finds them).
	svcs []*service
}

// vipScanMax is the most services of one VIP that lookupService scans; a
// VIP with more (one service per port, say) is looked up in the map.
const vipScanMax = 8

func newVIPIndex(services []*service) vipIndex {
	var x vipIndex
	if len(services) == 0 {
		return x
	}
	var vips []netip.Addr
	for _, s := range services {
		if !slices.Contains(vips, s.key.vip) {
			vips = append(vips, s.key.vip)
		}
	}
	if len(vips) <= vipLinearMax {
		x.slots = make([]vipSlot, len(vips))
		for i, vip := range vips {
			x.slots[i].vip = vip
		}
		for _, s := range services {
			v := &x.slots[slices.Index(vips, s.key.vip)]
			v.svcs = append(v.svcs, s)
		}
		x.trim()
		return x
	}
	n := 2
	for n < 2*len(services) {
		n *= 2
	}
	x.slots = make([]vipSlot, n)
	x.shift = uint(64 - bits.TrailingZeros(uint(n)))
	for _, s := range services {
		v := x.insert(s.key.vip)
		v.svcs = append(v.svcs, s)
	}
	x.trim()
	return x
}

// trim drops the service lists too long to scan: byKey finds those.
func (x *vipIndex) trim() {
	for i := range x.slots {
		if len(x.slots[i].svcs) > vipScanMax {
			x.slots[i].svcs = nil
		}
	}
}

// insert returns vip's slot, claiming an empty one for a new vip.
func (x *vipIndex) insert(vip netip.Addr) *vipSlot {
	mask := len(x.slots) - 1
	for i := x.home(vip); ; i = (i + 1) & mask {
		v := &x.slots[i]
		if !v.vip.IsValid() {
			v.vip = vip
			return v
		}
		if v.vip == vip {
			return v
		}
	}
}

// find returns vip's slot, nil if no service has that VIP.
func (x *vipIndex) find(vip netip.Addr) *vipSlot {
	if x.shift == 0 {
		for i := range x.slots {
			if x.slots[i].vip == vip {
				return &x.slots[i]
			}
		}
		return nil
	}
	mask := len(x.slots) - 1
	for i := x.home(vip); ; i = (i + 1) & mask {
		v := &x.slots[i]
		if v.vip == vip {
			return v
		}
		if !v.vip.IsValid() {
			return nil
		}
	}
}

// home hashes the address's 16 bytes (v4 as v4-mapped: == tells the two
// apart, and zones, on the compare).
func (x *vipIndex) home(vip netip.Addr) int {
	a := vip.As16()
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(a[:8])^0xa0761d6478bd642f, binary.LittleEndian.Uint64(a[8:])^0xe7037ed1a0b428db)
	return int((hi ^ lo) >> x.shift)
}

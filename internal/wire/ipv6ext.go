package wire

import "encoding/binary"

// IPv6 next-header values of the extension headers WalkIPv6 skips.
const (
	IPv6HopByHop = 0
	IPv6Routing  = 43
	IPv6Fragment = 44
	IPv6AH       = 51
	IPv6DestOpts = 60
	IPv6NoNext   = 59
)

// IsIPv6Extension reports whether next-header value nh is an IPv6
// extension header (RFC 8200 section 4, RFC 7045 and the IANA registry):
// the ones WalkIPv6 skips and those it cannot, ESP (encrypted) and the
// mobility, HIP, shim6 and experimental headers. A parser that takes no
// extension headers uses it to tell "not supported" from "not mine".
func IsIPv6Extension(nh uint8) bool {
	switch nh {
	case IPv6HopByHop, IPv6Routing, IPv6Fragment, 50, IPv6AH, IPv6DestOpts, 135, 139, 140, 253, 254:
		return true
	}
	return false
}

// IPv6Walk is what WalkIPv6 found. On error, Proto and Offset are the
// header that did not fit.
type IPv6Walk struct {
	// Proto is the next header after the last header skipped: the
	// upper-layer protocol, or an extension header WalkIPv6 does not
	// skip (ESP, say), or IPv6NoNext.
	Proto uint8
	// Offset is where that header starts in b.
	Offset int

	// Fragment says a fragment header was skipped; FragOffset (in 8-byte
	// units), FragMore (the M flag) and FragID are from the last one.
	Fragment   bool
	FragOffset uint16
	FragMore   bool
	FragID     uint32

	// AH is the offset in b of the first authentication header met, even
	// one that did not fit, for callers that do not look behind AH; 0 if
	// none (the fixed header comes first, so no AH starts at 0).
	AH int
}

// IsFragment reports whether the packet is part of a fragment train: an
// atomic fragment (offset 0, no more fragments, RFC 6946) is a whole
// packet that merely carries a fragment header.
func (w *IPv6Walk) IsFragment() bool {
	return w.Fragment && (w.FragOffset != 0 || w.FragMore)
}

// WalkIPv6 walks the extension headers of an IPv6 packet: next is the
// fixed header's next-header field and off the offset in b of the byte
// after the fixed header; b ends where the packet does (Ethernet padding
// cut off), since it bounds the walk. It skips hop-by-hop options,
// routing, destination options, fragment and authentication headers and
// returns the first other header and its offset.
//
// A non-first fragment ends the walk after its fragment header: what
// follows is the middle of the fragmentable part, not a header. Every step
// advances at least 8 bytes and is bounded by len(b), so the walk ends.
// The error, ErrTruncated, says a header does not fit in b.
func WalkIPv6(b []byte, next uint8, off int) (IPv6Walk, error) {
	w := IPv6Walk{Proto: next, Offset: off}
	if off < 0 {
		return w, ErrTruncated // no packet has bytes there
	}
	for {
		var n int
		last := false // a non-first fragment header ends the walk
		switch next {
		case IPv6HopByHop, IPv6Routing, IPv6DestOpts:
			if off+8 > len(b) {
				return w, ErrTruncated
			}
			n = (int(b[off+1]) + 1) * 8
		case IPv6AH:
			if w.AH == 0 {
				w.AH = off
			}
			if off+8 > len(b) {
				return w, ErrTruncated
			}
			// RFC 4302 2.2: AH's length is in 4-byte units, minus 2.
			n = (int(b[off+1]) + 2) * 4
		case IPv6Fragment:
			if off+8 > len(b) {
				return w, ErrTruncated
			}
			fo := binary.BigEndian.Uint16(b[off+2 : off+4])
			w.Fragment = true
			w.FragOffset = fo >> 3
			w.FragMore = fo&1 != 0
			w.FragID = binary.BigEndian.Uint32(b[off+4 : off+8])
			n, last = 8, w.FragOffset != 0
		default:
			return w, nil
		}
		if off+n > len(b) {
			return w, ErrTruncated
		}
		next = b[off]
		off += n
		w.Proto, w.Offset = next, off
		if last {
			return w, nil
		}
	}
}

package wire

import (
	"errors"
	"testing"
)

// ext builds an extension header of the given type-specific size: next
// header, length byte as the type counts it, zero body.
func ext(next uint8, size int, ah bool) []byte {
	b := make([]byte, size)
	b[0] = next
	if ah {
		b[1] = byte(size/4 - 2)
	} else {
		b[1] = byte(size/8 - 1)
	}
	return b
}

func fragHdr(next uint8, offset uint16, more bool, id uint32) []byte {
	fo := offset << 3
	if more {
		fo |= 1
	}
	return []byte{next, 0, byte(fo >> 8), byte(fo), byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestWalkIPv6(t *testing.T) {
	const tcp, udp, esp = 6, 17, 50
	// 40 bytes standing for the fixed header: the walk starts after it.
	fixed := make([]byte, 40)
	l4 := make([]byte, 20)
	tests := []struct {
		name string
		b    []byte
		next uint8
		want IPv6Walk
		err  error
	}{
		{"no extension headers", cat(fixed, l4), tcp, IPv6Walk{Proto: tcp, Offset: 40}, nil},
		{"nothing after the fixed header", fixed, tcp, IPv6Walk{Proto: tcp, Offset: 40}, nil},
		{"hop-by-hop", cat(fixed, ext(tcp, 8, false), l4), IPv6HopByHop, IPv6Walk{Proto: tcp, Offset: 48}, nil},
		{"hop-by-hop, routing, destination options", cat(fixed, ext(IPv6Routing, 8, false), ext(IPv6DestOpts, 24, false), ext(udp, 16, false), l4),
			IPv6HopByHop, IPv6Walk{Proto: udp, Offset: 88}, nil},
		{"first fragment", cat(fixed, fragHdr(udp, 0, true, 0xdeadbeef), l4), IPv6Fragment,
			IPv6Walk{Proto: udp, Offset: 48, Fragment: true, FragMore: true, FragID: 0xdeadbeef}, nil},
		{"atomic fragment", cat(fixed, fragHdr(tcp, 0, false, 9), l4), IPv6Fragment,
			IPv6Walk{Proto: tcp, Offset: 48, Fragment: true, FragID: 9}, nil},
		// The walk stops after a non-first fragment's header even when it
		// names another extension header: the bytes after are data.
		{"non-first fragment", cat(fixed, fragHdr(IPv6DestOpts, 185, true, 7), []byte{0xff, 0xff}), IPv6Fragment,
			IPv6Walk{Proto: IPv6DestOpts, Offset: 48, Fragment: true, FragOffset: 185, FragMore: true, FragID: 7}, nil},
		{"last fragment", cat(fixed, fragHdr(udp, 3, false, 7)), IPv6Fragment,
			IPv6Walk{Proto: udp, Offset: 48, Fragment: true, FragOffset: 3, FragID: 7}, nil},
		{"destination options then fragment", cat(fixed, ext(IPv6Fragment, 8, false), fragHdr(tcp, 0, true, 1), l4), IPv6DestOpts,
			IPv6Walk{Proto: tcp, Offset: 56, Fragment: true, FragMore: true, FragID: 1}, nil},
		{"AH (length in 4-byte units)", cat(fixed, ext(tcp, 12, true), l4), IPv6AH, IPv6Walk{Proto: tcp, Offset: 52, AH: 40}, nil},
		{"two AH headers: the first one's offset", cat(fixed, ext(IPv6AH, 24, true), ext(tcp, 16, true), l4), IPv6AH,
			IPv6Walk{Proto: tcp, Offset: 80, AH: 40}, nil},
		{"ESP is not skipped", cat(fixed, make([]byte, 30)), esp, IPv6Walk{Proto: esp, Offset: 40}, nil},
		{"no next header", cat(fixed, ext(IPv6NoNext, 8, false)), IPv6DestOpts, IPv6Walk{Proto: IPv6NoNext, Offset: 48}, nil},
		{"header ends the packet exactly", cat(fixed, ext(tcp, 16, false)), IPv6HopByHop, IPv6Walk{Proto: tcp, Offset: 56}, nil},
		{"header cut", cat(fixed, make([]byte, 7)), IPv6HopByHop, IPv6Walk{Proto: IPv6HopByHop, Offset: 40}, ErrTruncated},
		{"length past the end", cat(fixed, ext(tcp, 16, false)[:8]), IPv6Routing, IPv6Walk{Proto: IPv6Routing, Offset: 40}, ErrTruncated},
		{"AH length past the end", cat(fixed, ext(tcp, 16, true)[:12]), IPv6AH, IPv6Walk{Proto: IPv6AH, Offset: 40, AH: 40}, ErrTruncated},
		{"fragment header cut", cat(fixed, fragHdr(tcp, 0, true, 1)[:6]), IPv6Fragment, IPv6Walk{Proto: IPv6Fragment, Offset: 40}, ErrTruncated},
		{"AH cut", cat(fixed, ext(tcp, 12, true)[:4]), IPv6AH, IPv6Walk{Proto: IPv6AH, Offset: 40, AH: 40}, ErrTruncated},
		{"fragment then cut header", cat(fixed, fragHdr(IPv6DestOpts, 0, true, 1), make([]byte, 4)), IPv6Fragment,
			IPv6Walk{Proto: IPv6DestOpts, Offset: 48, Fragment: true, FragMore: true, FragID: 1}, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WalkIPv6(tt.b, tt.next, 40)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("walk = %+v\n want %+v", got, tt.want)
			}
		})
	}
}

func TestIsFragment(t *testing.T) {
	for _, tt := range []struct {
		w    IPv6Walk
		want bool
	}{
		{IPv6Walk{}, false},
		{IPv6Walk{Fragment: true}, false}, // atomic
		{IPv6Walk{Fragment: true, FragMore: true}, true},
		{IPv6Walk{Fragment: true, FragOffset: 1}, true},
	} {
		if got := tt.w.IsFragment(); got != tt.want {
			t.Errorf("%+v: IsFragment = %v", tt.w, got)
		}
	}
}

func TestIsIPv6Extension(t *testing.T) {
	for nh := range 256 {
		want := false
		switch nh {
		case 0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254:
			want = true
		}
		if got := IsIPv6Extension(uint8(nh)); got != want {
			t.Errorf("IsIPv6Extension(%d) = %v", nh, got)
		}
	}
}

// refWalk is the walk written recursively, one header per call.
func refWalk(b []byte, next uint8, off int, w IPv6Walk) (IPv6Walk, bool) {
	w.Proto, w.Offset = next, off
	var n int
	switch next {
	case 0, 43, 60:
		if len(b)-off < 8 {
			return w, false
		}
		n = 8 * (1 + int(b[off+1]))
	case 51:
		if w.AH == 0 {
			w.AH = off
		}
		if len(b)-off < 8 {
			return w, false
		}
		n = 4 * (2 + int(b[off+1]))
	case 44:
		if len(b)-off < 8 {
			return w, false
		}
		w.Fragment = true
		w.FragOffset = (uint16(b[off+2])<<8 | uint16(b[off+3])) >> 3
		w.FragMore = b[off+3]&1 == 1
		w.FragID = uint32(b[off+4])<<24 | uint32(b[off+5])<<16 | uint32(b[off+6])<<8 | uint32(b[off+7])
		if w.FragOffset != 0 {
			w.Proto, w.Offset = b[off], off+8
			return w, true
		}
		n = 8
	default:
		return w, true
	}
	if off+n > len(b) {
		return w, false
	}
	return refWalk(b, b[off], off+n, w)
}

func FuzzWalkIPv6(f *testing.F) {
	f.Add(cat(ext(IPv6Routing, 8, false), ext(IPv6Fragment, 8, false), fragHdr(6, 0, true, 1), make([]byte, 20)), uint8(IPv6HopByHop))
	f.Add(cat(ext(6, 12, true), make([]byte, 20)), uint8(IPv6AH))
	f.Add(fragHdr(17, 5, false, 3), uint8(IPv6Fragment))
	f.Add([]byte{}, uint8(6))
	f.Fuzz(func(t *testing.T, b []byte, next uint8) {
		w, err := WalkIPv6(b, next, 0)
		rw, rok := refWalk(b, next, 0, IPv6Walk{})
		if w != rw || (err == nil) != rok {
			t.Fatalf("walk %+v, %v; reference %+v, ok %v", w, err, rw, rok)
		}
		if err != nil {
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("error %v is not ErrTruncated", err)
			}
			return
		}
		if w.Offset > len(b) {
			t.Fatalf("offset %d past %d bytes", w.Offset, len(b))
		}
		// Unless a non-first fragment stopped it, the walk ends on a
		// header it does not skip.
		if w.FragOffset == 0 {
			switch w.Proto {
			case IPv6HopByHop, IPv6Routing, IPv6DestOpts, IPv6Fragment, IPv6AH:
				t.Fatalf("walk stopped on skippable header %d", w.Proto)
			}
		}
	})
}

func TestWalkIPv6NoAllocations(t *testing.T) {
	b := cat(make([]byte, 40), ext(IPv6Fragment, 8, false), fragHdr(IPv6AH, 0, true, 1), ext(6, 12, true), make([]byte, 20))
	var sink int
	if a := testing.AllocsPerRun(1000, func() {
		w, _ := WalkIPv6(b, IPv6HopByHop, 40)
		sink += w.Offset
	}); a != 0 {
		t.Fatalf("%v allocations", a)
	}
	_ = sink
}

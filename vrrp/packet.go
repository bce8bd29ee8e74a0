package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/drlb/drlb/internal/wire"
)

// Protocol numbers and addresses of VRRP over IPv4.
const (
	IPProtocol = 112 // IP protocol number of VRRP
	Version    = 3
	TypeAdvert = 1
	TTL        = 255 // adverts are sent and accepted with TTL 255 only
	// MaxAddrs is the most addresses an advert carries (an 8-bit count).
	MaxAddrs = 255
	// Centisecond is the unit of the advert interval in VRRPv3.
	Centisecond = 10 * time.Millisecond
	// MaxInterval is the largest advert interval (12 bits of centiseconds).
	MaxInterval = 0xfff * Centisecond
	headerLen   = 8
	ipv4Len     = 20
)

// Group is where IPv4 adverts go (RFC 5798 5.1.1.2).
var Group = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// Advert is a VRRPv3 advertisement (RFC 5798 5.2), IPv4 addresses only.
type Advert struct {
	VRID     uint8
	Priority uint8 // 0: the master stops; 255: the address owner
	// Interval is the sender's advert interval, whole centiseconds.
	Interval time.Duration
	Addrs    []netip.Addr
}

// Errors of Parse, each one reason an advert is ignored (Reason names it
// for counters).
var (
	ErrShort    = errors.New("vrrp: packet too short")
	ErrNotIPv4  = errors.New("vrrp: not an IPv4 packet with a valid header")
	ErrProtocol = errors.New("vrrp: not IP protocol 112")
	ErrTTL      = errors.New("vrrp: TTL is not 255")
	ErrVersion  = errors.New("vrrp: not version 3")
	ErrType     = errors.New("vrrp: not an advertisement")
	ErrLength   = errors.New("vrrp: length does not match the address count")
	ErrChecksum = errors.New("vrrp: bad checksum")
	ErrVRID     = errors.New("vrrp: another virtual router id")
)

// Reason is the counter label of a Parse or Receive error ("malformed"
// for anything without its own).
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrTTL):
		return "ttl"
	case errors.Is(err, ErrVersion):
		return "version"
	case errors.Is(err, ErrVRID):
		return "vrid"
	case errors.Is(err, ErrChecksum):
		return "checksum"
	}
	return "malformed"
}

// Reasons are every value Reason returns, for counters that list them all.
var Reasons = []string{"ttl", "version", "vrid", "checksum", "malformed"}

// Len is the length of a's VRRP message.
func (a *Advert) Len() int { return headerLen + 4*len(a.Addrs) }

// Append appends a's VRRP message (no IP header) with its checksum over
// the IPv4 pseudo-header of src and Group, as RFC 5798 5.2.8 says and
// keepalived does. Addresses that are not IPv4 are an error, as are more
// than MaxAddrs and an interval that is not whole centiseconds in range.
func (a *Advert) Append(b []byte, src netip.Addr) ([]byte, error) {
	if len(a.Addrs) > MaxAddrs {
		return b, fmt.Errorf("vrrp: %d addresses, at most %d", len(a.Addrs), MaxAddrs)
	}
	if a.Interval < Centisecond || a.Interval > MaxInterval || a.Interval%Centisecond != 0 {
		return b, fmt.Errorf("vrrp: advert interval %v is not 1..4095 centiseconds", a.Interval)
	}
	if !src.Is4() {
		return b, fmt.Errorf("vrrp: source %v is not an IPv4 address", src)
	}
	start := len(b)
	b = append(b, Version<<4|TypeAdvert, a.VRID, a.Priority, uint8(len(a.Addrs)))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Interval/Centisecond))
	b = append(b, 0, 0)
	for _, addr := range a.Addrs {
		if !addr.Is4() {
			return b[:start], fmt.Errorf("vrrp: address %v is not IPv4 (IPv6 needs its own VRRP instance)", addr)
		}
		v := addr.As4()
		b = append(b, v[:]...)
	}
	msg := b[start:]
	sum := wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(src, Group, IPProtocol, len(msg))))
	binary.BigEndian.PutUint16(msg[6:], sum)
	return b, nil
}

// AppendIPv4 appends an IPv4 packet carrying a from src to Group: TTL 255,
// TOS 0xc0 (network control, as keepalived), no options, the given IP ID
// and the header checksum filled in. Sent on a socket with IP_HDRINCL.
func (a *Advert) AppendIPv4(b []byte, src netip.Addr, id uint16) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, ipv4Len)...)
	b, err := a.Append(b, src)
	if err != nil {
		return b[:start], err
	}
	h := b[start : start+ipv4Len]
	h[0], h[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(h[2:], uint16(len(b)-start))
	binary.BigEndian.PutUint16(h[4:], id)
	h[8], h[9] = TTL, IPProtocol
	s, d := src.As4(), Group.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], wire.Fold(wire.Sum(h, 0)))
	return b, nil
}

// Packet is an advert as received: the IPv4 source and TTL with it.
type Packet struct {
	Src netip.Addr
	TTL uint8
	Advert
}

// ParseIPv4 reads an IPv4 packet (as a raw socket returns it: the header
// first) holding a VRRP advert. It checks the header, the TTL, the VRRP
// version, type, length and checksum, in that order, and returns the
// first problem. The addresses are appended to addrs' storage when it has
// room, so a caller can parse without allocating.
func ParseIPv4(b []byte, addrs []netip.Addr) (Packet, error) {
	var p Packet
	if len(b) < ipv4Len {
		return p, ErrShort
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if b[0]>>4 != 4 || ihl < ipv4Len || total < ihl || total > len(b) {
		return p, ErrNotIPv4
	}
	if b[9] != IPProtocol {
		return p, ErrProtocol
	}
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	p.TTL = b[8]
	if p.TTL != TTL {
		return p, ErrTTL
	}
	a, err := parse(b[ihl:total], p.Src, dst, addrs)
	p.Advert = a
	return p, err
}

// Parse reads a VRRP message (no IP header) sent from src to dst.
func Parse(msg []byte, src, dst netip.Addr) (Advert, error) {
	return parse(msg, src, dst, nil)
}

func parse(msg []byte, src, dst netip.Addr, addrs []netip.Addr) (Advert, error) {
	var a Advert
	if len(msg) < headerLen {
		return a, ErrShort
	}
	if msg[0]>>4 != Version {
		return a, ErrVersion
	}
	if msg[0]&0x0f != TypeAdvert {
		return a, ErrType
	}
	n := int(msg[3])
	if len(msg) != headerLen+4*n {
		return a, ErrLength
	}
	if wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(src, dst, IPProtocol, len(msg)))) != 0 {
		return a, ErrChecksum
	}
	a.VRID, a.Priority = msg[1], msg[2]
	a.Interval = time.Duration(binary.BigEndian.Uint16(msg[4:])&0x0fff) * Centisecond
	a.Addrs = addrs[:0]
	for i := range n {
		a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(msg[headerLen+4*i:])))
	}
	return a, nil
}

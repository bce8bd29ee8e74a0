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
	// HopLimit is TTL's IPv6 name: adverts are sent and accepted with
	// hop limit 255 only (RFC 5798 5.1.2.3).
	HopLimit  = TTL
	headerLen = 8
	ipv4Len   = 20
	ipv6Len   = 40
	// maxAdvertLen is the longest advert with its IP header: IPv6,
	// MaxAddrs addresses (4128 bytes).
	maxAdvertLen = ipv6Len + headerLen + 16*MaxAddrs
)

// Group is where IPv4 adverts go (RFC 5798 5.1.1.2), Group6 where IPv6
// adverts go (5.1.2.2), from the interface's link-local address.
var (
	Group  = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	Group6 = netip.MustParseAddr("ff02::12")
)

// GroupOf is the group of adverts sent from src's address family.
func GroupOf(src netip.Addr) netip.Addr {
	if src.Is4() {
		return Group
	}
	return Group6
}

// Advert is a VRRPv3 advertisement (RFC 5798 5.2). Its addresses are of
// one family, the family of the IP packet carrying it: IPv4 and IPv6 are
// separate virtual routers, even with the same VRID (RFC 5798 5.2.4).
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
	ErrNotIPv6  = errors.New("vrrp: not an IPv6 packet with a valid header")
	ErrProtocol = errors.New("vrrp: not IP protocol 112")
	ErrTTL      = errors.New("vrrp: TTL (hop limit) is not 255")
	ErrVersion  = errors.New("vrrp: not version 3")
	ErrType     = errors.New("vrrp: not an advertisement")
	ErrLength   = errors.New("vrrp: length does not match the address count")
	ErrChecksum = errors.New("vrrp: bad checksum")
	ErrVRID     = errors.New("vrrp: another virtual router id")
	// ErrAddrList is Receive's: an advert for our virtual router whose
	// addresses are not ours (another count, or one of ours missing).
	ErrAddrList = errors.New("vrrp: the advert's address list differs from ours")
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
	case errors.Is(err, ErrAddrList):
		return "addr_list" // keepalived's addr_list_err
	}
	return "malformed"
}

// Reasons are every value Reason returns, for counters that list them all.
var Reasons = []string{"ttl", "version", "vrid", "checksum", "addr_list", "malformed"}

// addrLen is the length of one address in adverts from src's family.
func addrLen(src netip.Addr) int {
	if src.Is4() {
		return 4
	}
	return 16
}

// Len is the length of a's VRRP message.
func (a *Advert) Len() int {
	n := 4
	if len(a.Addrs) > 0 && !a.Addrs[0].Is4() {
		n = 16
	}
	return headerLen + n*len(a.Addrs)
}

// Append appends a's VRRP message (no IP header) with its checksum over
// the pseudo-header of src and its group (IPv4: 224.0.0.18, IPv6:
// ff02::12), as RFC 5798 5.2.8 says and keepalived does. The addresses
// must be of src's family; more than MaxAddrs and an interval that is not
// whole centiseconds in range are errors too.
func (a *Advert) Append(b []byte, src netip.Addr) ([]byte, error) {
	if len(a.Addrs) > MaxAddrs {
		return b, fmt.Errorf("vrrp: %d addresses, at most %d", len(a.Addrs), MaxAddrs)
	}
	if a.Interval < Centisecond || a.Interval > MaxInterval || a.Interval%Centisecond != 0 {
		return b, fmt.Errorf("vrrp: advert interval %v is not 1..4095 centiseconds", a.Interval)
	}
	if !src.IsValid() {
		return b, errors.New("vrrp: no source address")
	}
	start := len(b)
	b = append(b, Version<<4|TypeAdvert, a.VRID, a.Priority, uint8(len(a.Addrs)))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Interval/Centisecond))
	b = append(b, 0, 0)
	for _, addr := range a.Addrs {
		switch {
		case src.Is4() && addr.Is4():
			v := addr.As4()
			b = append(b, v[:]...)
		case src.Is6() && addr.Is6():
			v := addr.As16()
			b = append(b, v[:]...)
		default:
			return b[:start], fmt.Errorf("vrrp: address %v in an advert from %v: each address family needs its own VRRP instance", addr, src)
		}
	}
	msg := b[start:]
	sum := wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(src, GroupOf(src), IPProtocol, len(msg))))
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
	if !src.Is4() {
		return b[:start], fmt.Errorf("vrrp: source %v of an IPv4 advert is not IPv4", src)
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

// AppendIPv6 appends an IPv6 packet carrying a from src (the interface's
// link-local address) to Group6: traffic class 0xc0 (as keepalived), no
// flow label, next header 112, hop limit 255, no extension headers, the
// VRRP checksum over the IPv6 pseudo-header (RFC 5798 5.1.2, 5.2.8). A
// raw IPv6 socket sends the payload (the Conn strips the header and sets
// the source and hop limit it names).
func (a *Advert) AppendIPv6(b []byte, src netip.Addr) ([]byte, error) {
	if !src.Is6() {
		return b, fmt.Errorf("vrrp: source %v of an IPv6 advert is not IPv6", src)
	}
	start := len(b)
	b = append(b, make([]byte, ipv6Len)...)
	b, err := a.Append(b, src)
	if err != nil {
		return b[:start], err
	}
	h := b[start : start+ipv6Len]
	// Version 6, traffic class 0xc0, flow label 0.
	binary.BigEndian.PutUint32(h, 6<<28|0xc0<<20)
	binary.BigEndian.PutUint16(h[4:], uint16(len(b)-start-ipv6Len))
	h[6], h[7] = IPProtocol, HopLimit
	s, d := src.As16(), Group6.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return b, nil
}

// Packet is an advert as received: the IP source and TTL (hop limit)
// with it.
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

// ParseIPv6 reads an IPv6 packet holding a VRRP advert: a header with
// next header 112 (no extension headers) and the message; a raw IPv6
// socket delivers the message alone, so its Conn puts a header built
// from the source, destination and IPV6_HOPLIMIT in front. It checks the
// header, the hop limit, then the message as ParseIPv4 does, the
// checksum over the IPv6 pseudo-header. The addresses are appended to
// addrs' storage when it has room.
func ParseIPv6(b []byte, addrs []netip.Addr) (Packet, error) {
	var p Packet
	if len(b) < ipv6Len {
		return p, ErrShort
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if b[0]>>4 != 6 || ipv6Len+plen > len(b) {
		return p, ErrNotIPv6
	}
	if b[6] != IPProtocol {
		return p, ErrProtocol
	}
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	p.TTL = b[7]
	if p.TTL != HopLimit {
		return p, ErrTTL
	}
	a, err := parse(b[ipv6Len:ipv6Len+plen], p.Src, dst, addrs)
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
	n, alen := int(msg[3]), addrLen(src)
	if len(msg) != headerLen+alen*n {
		return a, ErrLength
	}
	if wire.Fold(wire.Sum(msg, wire.PseudoHeaderSum(src, dst, IPProtocol, len(msg)))) != 0 {
		return a, ErrChecksum
	}
	a.VRID, a.Priority = msg[1], msg[2]
	a.Interval = time.Duration(binary.BigEndian.Uint16(msg[4:])&0x0fff) * Centisecond
	a.Addrs = addrs[:0]
	for i := range n {
		if alen == 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(msg[headerLen+4*i:])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(msg[headerLen+16*i:])))
		}
	}
	return a, nil
}

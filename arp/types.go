package arp

import (
	"net"
	"net/netip"

	"github.com/drlb/drlb/internal/wire"
)

// MAC is an Ethernet address. It is a value type (not net.HardwareAddr, a
// slice) so that entries can be copied, compared and returned on the hot
// path without allocating.
type MAC [6]byte

// broadcast is ff:ff:ff:ff:ff:ff (unexported so nobody can change it).
var broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MACFrom converts a 6-byte net.HardwareAddr (as found in config.RealServer)
// to a MAC; ok is false for any other length.
func MACFrom(hw net.HardwareAddr) (m MAC, ok bool) {
	if len(hw) != len(m) {
		return m, false
	}
	copy(m[:], hw)
	return m, true
}

// HardwareAddr returns m as a freshly allocated net.HardwareAddr.
func (m MAC) HardwareAddr() net.HardwareAddr {
	hw := make(net.HardwareAddr, len(m))
	copy(hw, m[:])
	return hw
}

// IsZero reports whether m is 00:00:00:00:00:00.
func (m MAC) IsZero() bool { return m == MAC{} }

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// IsUnicast reports whether m can name one station: not zero, not a group.
func (m MAC) IsUnicast() bool { return !m.IsZero() && !m.IsMulticast() }

func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// VLAN is the 802.1Q tag of a frame (the inner one of a double-tagged
// frame). Tagged false means no such tag.
// TCI keeps priority and DEI bits as well as the VLAN ID, so a reply carries
// the very tag of its request.
type VLAN struct {
	Tagged bool
	TCI    uint16
}

// NoVLAN is an untagged frame.
var NoVLAN = VLAN{}

// VLANID is a tag with priority 0 and the given 12-bit VLAN ID.
func VLANID(id uint16) VLAN { return VLAN{Tagged: true, TCI: id & 0x0fff} }

// ID is the 12-bit VLAN identifier.
func (v VLAN) ID() uint16 { return v.TCI & 0x0fff }

// Ethernet is the link header of a frame.
type Ethernet struct {
	Dst, Src MAC
	// VLAN is the frame's 802.1Q tag: the only tag of a single-tagged
	// frame, the inner (customer) tag of a double-tagged one.
	VLAN VLAN
	// Outer is the outer tag of a QinQ frame, in front of VLAN: an
	// 802.1ad service tag (TPID wire.EtherTypeQinQ, possibly alone) or a
	// stacked 802.1Q tag (wire.EtherTypeVLAN); TPID 0 means none. Replies
	// copy Outer with VLAN, so they go back through the very provider
	// and customer VLANs their request came in on.
	Outer wire.Tag
}

// Sizes and numbers used on the wire.
const (
	arpLen      = 28
	ipv6Len     = 40
	protoICMPv6 = 58
	// MinFrameLen is the shortest Ethernet frame without FCS; shorter
	// replies are zero-padded to it.
	MinFrameLen = 60
	// MaxFrameLen is the largest frame this package builds: a
	// double-tagged (QinQ) neighbor advertisement with a link-layer
	// address option. An out buffer of this size is always big enough.
	MaxFrameLen = wire.MaxEthernetLen + ipv6Len + ndpLen + optLLLen
)

// ARP operations.
const (
	OpRequest uint16 = 1
	OpReply   uint16 = 2
)

// ARPPacket is one IPv4-over-Ethernet ARP message with its link header.
type ARPPacket struct {
	Ethernet  Ethernet
	Op        uint16
	SenderMAC MAC
	SenderIP  netip.Addr
	TargetMAC MAC
	TargetIP  netip.Addr
}

// IsProbe reports an RFC 5227 probe: a request with sender IP 0.0.0.0.
func (p *ARPPacket) IsProbe() bool {
	return p.Op == OpRequest && p.SenderIP == netip.IPv4Unspecified()
}

// IsGratuitous reports an announcement: sender IP equals target IP (request
// or reply), the way keepalived and RFC 5227 announce an address.
func (p *ARPPacket) IsGratuitous() bool {
	return p.SenderIP == p.TargetIP && !p.SenderIP.IsUnspecified()
}

// ICMPv6 neighbor discovery message types.
const (
	TypeNeighborSolicitation  uint8 = 135
	TypeNeighborAdvertisement uint8 = 136
)

// Neighbor advertisement flags (the top bits of the first reserved byte).
const (
	FlagRouter    uint8 = 0x80
	FlagSolicited uint8 = 0x40
	FlagOverride  uint8 = 0x20
)

// NDPPacket is an ICMPv6 neighbor solicitation or advertisement with its
// link and IPv6 headers. Options other than the source/target link-layer
// address are skipped (RFC 4861 says to ignore unknown options).
type NDPPacket struct {
	Ethernet Ethernet
	Src, Dst netip.Addr
	HopLimit uint8
	Type     uint8 // TypeNeighborSolicitation or TypeNeighborAdvertisement
	Flags    uint8 // advertisement only: FlagRouter|FlagSolicited|FlagOverride
	Target   netip.Addr
	// SourceLL is the source link-layer address option (type 1),
	// TargetLL the target link-layer address option (type 2).
	SourceLL, TargetLL       MAC
	HasSourceLL, HasTargetLL bool
}

const (
	ndpLen   = 24 // ICMPv6 header + reserved/flags + target
	optLLLen = 8  // link-layer address option for Ethernet
)

// solicitedNode returns ff02::1:ffXX:XXXX for a (unicast) IPv6 address.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 1, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// multicastMAC maps an IPv6 multicast address to its 33:33:xx:xx:xx:xx MAC.
func multicastMAC(a netip.Addr) MAC {
	b := a.As16()
	return MAC{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// allNodes is ff02::1, where unsolicited advertisements go.
var allNodes = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1})

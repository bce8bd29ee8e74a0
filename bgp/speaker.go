package bgp

import (
	"net/netip"
	"time"
)

// Speaker originates and withdraws routes: the part of a BGP
// implementation the Announcer needs. GoBGP is the real one; tests use a
// fake.
type Speaker interface {
	// Announce originates prefix with nextHop to every peer (now and on
	// every session established later). Announcing a prefix again
	// replaces it.
	Announce(prefix netip.Prefix, nextHop netip.Addr) error
	// Withdraw stops originating prefix.
	Withdraw(prefix netip.Prefix) error
	// Peers reports the sessions, in configuration order.
	Peers() []PeerStatus
}

// PeerStatus is one BGP session as `drlb ctl bgp` and /metrics show it.
type PeerStatus struct {
	Address netip.Addr
	ASN     uint32
	// State is the BGP FSM state: idle, connect, active, opensent,
	// openconfirm or established.
	State string
	// Since is when the session was last established or went down (zero
	// when unknown).
	Since time.Time
	// HoldTime is the negotiated hold time (0 until established).
	HoldTime time.Duration
}

// Established reports whether routes flow to this peer.
func (p PeerStatus) Established() bool { return p.State == StateEstablished }

// StateEstablished is PeerStatus.State of a session that carries routes.
const StateEstablished = "established"

// hostPrefix is the /32 or /128 of a VIP.
func hostPrefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, a.BitLen())
}

package config

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// BGP makes the director one of several active directors behind a router's
// ECMP: it announces each VIP as a /32 (/128) to the peers while it can
// serve it, with its own interface address as the next hop. A VIP reached
// by BGP is routed to the director, so with BGP set the director neither
// answers ARP/NDP for the VIPs nor announces them (see README, "Scale-out
// with BGP").
type BGP struct {
	// ASN is the director's own AS number (1..4294967295, not 23456:
	// AS_TRANS).
	ASN uint32
	// RouterID is the BGP identifier, an IPv4 address; the zero value
	// means the director's IPv4 address on its interface.
	RouterID netip.Addr
	// HoldTime is the BGP hold time offered to the peers (3s..65535s,
	// whole seconds; default DefaultBGPHoldTime): a director that dies
	// without closing its sessions is dropped by the router after it.
	HoldTime time.Duration
	// MinRealServers is how many usable real servers (available, MAC
	// resolved, weight above 0) each service of a VIP needs for the VIP
	// to be announced (default 1).
	MinRealServers int
	Peers          []BGPPeer
	Line           int
}

// BGPPeer is one BGP neighbor: the router (or route reflector) the
// director announces its VIPs to. Sessions are only with these peers, and
// the director connects to them (it does not listen).
type BGPPeer struct {
	// Address is the peer's address; an IPv6 one global or ULA, never
	// link-local (the speaker dials without an interface zone).
	Address netip.Addr
	ASN     uint32
	Port    uint16 // default 179
	// Password is the TCP MD5 signature key (RFC 2385), "" = none.
	Password string
	Line     int
}

// BGP defaults.
const (
	DefaultBGPHoldTime = 9 * time.Second
	DefaultBGPPort     = 179
	// maxBGPPassword is the kernel's TCP MD5 key length limit.
	maxBGPPassword = 80
	maxBGPPeers    = 64
	// asTrans is AS_TRANS (RFC 6793): reserved, the stand-in a speaker
	// whose AS needs 4 bytes puts in its OPEN's 2-byte field, and no
	// one's AS. As a peer's ASN it never matches the AS the router's OPEN
	// carries in its 4-byte capability, so the session is refused (Bad
	// Peer AS) for good, with nothing in the config to say why; as the
	// director's own it is an AS no one may use (RFC 6793 section 9).
	asTrans    = 23456
	asTransMsg = "23456 is AS_TRANS (RFC 6793), not an AS number: give the real (4-byte) AS number"
)

// bgp reads the bgp: mapping.
func (r *yamlReader) bgp(n *yaml.Node, path string) (*BGP, error) {
	_, pos := deref(n)
	b := &BGP{HoldTime: DefaultBGPHoldTime, MinRealServers: 1, Line: pos.Line}
	asn := func(p *uint32) func(n *yaml.Node, path string) error {
		return func(n *yaml.Node, path string) (err error) {
			*p, err = number(r, n, path, parseASN)
			return err
		}
	}
	err := r.mapping(n, path, []field{
		{name: "asn", required: true, set: asn(&b.ASN)},
		{name: "router_id", set: func(n *yaml.Node, p string) (err error) {
			b.RouterID, err = value(r, n, p, parseAddr)
			return err
		}},
		{name: "hold_time", set: func(n *yaml.Node, p string) (err error) {
			b.HoldTime, err = r.duration(n, p)
			return err
		}},
		{name: "min_realservers", set: func(n *yaml.Node, p string) (err error) {
			b.MinRealServers, err = r.integer(n, p)
			return err
		}},
		{name: "peers", required: true, set: func(n *yaml.Node, p string) error {
			items, err := r.seq(n, p)
			if err != nil {
				return err
			}
			for i, item := range items {
				_, ipos := deref(item)
				peer := BGPPeer{Port: DefaultBGPPort, Line: ipos.Line}
				err := r.mapping(item, index(p, i), []field{
					{name: "address", required: true, set: func(n *yaml.Node, p string) (err error) {
						peer.Address, err = value(r, n, p, parseAddr)
						return err
					}},
					{name: "asn", required: true, set: asn(&peer.ASN)},
					{name: "port", set: func(n *yaml.Node, p string) (err error) {
						peer.Port, err = number(r, n, p, func(v string) (uint16, error) { return parsePort(v, false) })
						return err
					}},
					{name: "password", set: func(n *yaml.Node, p string) (err error) {
						peer.Password, err = r.str(n, p)
						if err == nil {
							// Never repeat a secret in a message.
							s := r.at[p]
							s.value = "(secret)"
							r.at[p] = s
						}
						return err
					}},
				})
				if err != nil {
					return err
				}
				b.Peers = append(b.Peers, peer)
			}
			return nil
		}},
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// parseASN reads an AS number in asplain notation.
func parseASN(s string) (uint32, error) {
	// Its own message, not parseUint's "0..": 0 is no AS number (the
	// validator refuses it), and asdot (1.10) is a common way to write one.
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("an AS number must be an integer 1..4294967295, in asplain (65536, not 1.0)")
	}
	return uint32(n), nil
}

// bgp checks the bgp: block (nil = none).
func (v *validator) bgp(c *Config) error {
	b := c.BGP
	if b == nil {
		return nil
	}
	const p = "bgp"
	switch {
	case b.ASN == 0:
		return v.fail(p+".asn", b.Line, "0", "must be an AS number 1..4294967295")
	case b.ASN == asTrans:
		return v.fail(p+".asn", b.Line, "23456", "%s", asTransMsg)
	case b.RouterID.IsValid() && (!b.RouterID.Is4() || b.RouterID.IsUnspecified()):
		return v.fail(p+".router_id", b.Line, b.RouterID.String(), "must be an IPv4 address other than 0.0.0.0 (BGP identifiers are 32 bits)")
	case b.HoldTime < 3*time.Second || b.HoldTime > 65535*time.Second || b.HoldTime%time.Second != 0:
		return v.fail(p+".hold_time", b.Line, b.HoldTime.String(), "must be whole seconds, 3s..65535s (BGP; 0 would never drop a dead director)")
	case b.MinRealServers < 1 || b.MinRealServers > 65535:
		return v.fail(p+".min_realservers", b.Line, strconv.Itoa(b.MinRealServers), "must be 1..65535")
	case len(b.Peers) == 0:
		return v.fail(p+".peers", b.Line, "", "at least one peer is needed")
	case len(b.Peers) > maxBGPPeers:
		return v.fail(p+".peers", b.Line, strconv.Itoa(len(b.Peers)), "at most %d peers", maxBGPPeers)
	}
	for i := range c.Services {
		// With bgp: a VIP reaches the director only by the router's
		// route to it, and routers never forward to a link-local address
		// (RFC 4291 2.5.6, RFC 3927 7): it would be announced and never
		// reached.
		if s := &c.Services[i]; s.VIP.IsLinkLocalUnicast() {
			return v.fail("services["+strconv.Itoa(i)+"].vip", s.Line, s.VIP.String(), "a link-local VIP cannot be routed, and with bgp: the VIPs are reached only by the router's routes: give a global address")
		}
	}
	seen := make(map[netip.Addr]int, len(b.Peers))
	for i := range b.Peers {
		peer := &b.Peers[i]
		pp := p + ".peers[" + strconv.Itoa(i) + "]"
		if msg := hostAddrProblem(peer.Address); msg != "" {
			return v.fail(pp+".address", peer.Line, addrText(peer.Address), "%s", msg)
		}
		switch {
		case peer.Address.Is6() && peer.Address.IsLinkLocalUnicast():
			// Zones are refused above, and a link-local address without
			// one cannot be connected to (the kernel refuses with EINVAL):
			// the session would stay down for good, with nothing said.
			return v.fail(pp+".address", peer.Line, peer.Address.String(), "a link-local peer cannot be reached without an interface zone, which the BGP speaker does not take: give the router's global (or ULA) address on the interface")
		case peer.ASN == 0:
			return v.fail(pp+".asn", peer.Line, "0", "must be an AS number 1..4294967295")
		case peer.ASN == asTrans:
			return v.fail(pp+".asn", peer.Line, "23456", "%s", asTransMsg)
		case peer.Port == 0:
			return v.fail(pp+".port", peer.Line, "0", "must be a TCP port 1..65535")
		case len(peer.Password) > maxBGPPassword:
			return v.fail(pp+".password", peer.Line, "(secret)", "at most %d bytes (the kernel's TCP MD5 key limit)", maxBGPPassword)
		}
		for _, s := range c.Services {
			if s.VIP == peer.Address {
				return v.fail(pp+".address", peer.Line, peer.Address.String(), "a peer cannot be a VIP")
			}
		}
		if j, dup := seen[peer.Address]; dup {
			return v.fail(pp+".address", peer.Line, peer.Address.String(), "duplicate peer: bgp.peers[%d]%s is the same", j, LineNote(b.Peers[j].Line))
		}
		seen[peer.Address] = i
	}
	return nil
}

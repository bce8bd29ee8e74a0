package config

import (
	"net/netip"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// HA makes the director one of two or more directors sharing the VIPs by
// VRRP (RFC 5798, version 3): only the master answers ARP/NDP for the VIPs;
// a backup takes over when the master's adverts stop. It interoperates
// with keepalived's vrrp_instance on the same virtual router id (see
// README, "Two directors: VRRP failover").
type HA struct {
	// VRID is the virtual router id, 1..255 (keepalived's
	// virtual_router_id).
	VRID int
	// Priority is 1..254, higher wins the election. 255 (the address
	// owner in VRRP) is refused: in DR no director owns the VIPs.
	Priority int
	// AdvertInterval is the time between adverts, in whole centiseconds
	// as VRRPv3 carries it, 10ms..40.95s (default DefaultAdvertInterval,
	// as keepalived).
	AdvertInterval time.Duration
	// Preempt lets a higher-priority backup take over from a running
	// master (default true). PreemptDelay, if set, holds preemption back
	// for that long after start (keepalived's preempt_delay), so a
	// director that just came up settles before it takes the VIPs; and,
	// as keepalived, for that long after the first advert of a lower
	// priority once it followed a master not below it (or was master).
	Preempt      bool
	PreemptDelay time.Duration
	// Sync is connection sync between directors (nil = none).
	Sync *HASync
	// Interface is the interface a keepalived.conf's vrrp_instance names
	// (it is Config.Interface too); "" from YAML, where VRRP runs on
	// interface:. Both must match: drlb sends adverts where it answers
	// ARP, so -i cannot move a keepalived.conf's VRRP elsewhere.
	Interface string
	// Addrs, when set, is exactly the address list the IPv4 adverts carry:
	// a keepalived.conf's virtual_ipaddress (its IPv4 entries, in order;
	// not virtual_ipaddress_excluded), since a keepalived peer advertises
	// that list and drops every advert whose count or addresses differ
	// from it (vrrp_in_chk): with the VIPs instead it never hears drlb,
	// and both are MASTER. It may hold addresses that are no VIP (they are
	// advertised, never answered for). YAML has no key for it: nil, the
	// adverts carry the IPv4 VIPs. The IPv6 adverts always carry the IPv6
	// VIPs (no keepalived peer takes part in that election).
	Addrs []netip.Addr
	// SkipCheckAdvAddr is a keepalived.conf's skip_check_adv_addr (or
	// global_defs' vrrp_skip_check_adv_addr): a backup takes its
	// master's adverts without comparing their address list with Addrs
	// (vrrp.Config.SkipCheckAdvAddr). YAML has no key for it: false,
	// keepalived's default (every advert is compared, and one whose list
	// differs is ignored).
	SkipCheckAdvAddr bool
	Line             int
}

// HASync is the connection sync between directors (director/sync.go):
// the peers' LAN addresses (this director's own, if listed, is skipped,
// so every director can share one list) and the file holding the shared
// HMAC key; sync is refused without one.
type HASync struct {
	Peers   []netip.Addr
	KeyFile string
	Line    int
	// KeyFileLine is key_file's own line (Line is the block's first
	// key, often peers): where drlb check places a key it cannot read.
	KeyFileLine int
}

// HA defaults and limits.
const (
	DefaultAdvertInterval = time.Second
	minAdvertInterval     = 10 * time.Millisecond    // 1 centisecond
	maxAdvertInterval     = 4095 * minAdvertInterval // 12 bits of centiseconds
	maxPreemptDelay       = time.Hour
	maxSyncPeers          = 64
)

// ha reads the ha: mapping.
func (r *yamlReader) ha(n *yaml.Node, path string) (*HA, error) {
	_, pos := deref(n)
	h := &HA{AdvertInterval: DefaultAdvertInterval, Preempt: true, Line: pos.Line}
	err := r.mapping(n, path, []field{
		{name: "vrid", required: true, set: func(n *yaml.Node, p string) (err error) {
			h.VRID, err = r.integer(n, p)
			return err
		}},
		{name: "priority", required: true, set: func(n *yaml.Node, p string) (err error) {
			h.Priority, err = r.integer(n, p)
			return err
		}},
		{name: "advert_interval", set: func(n *yaml.Node, p string) (err error) {
			h.AdvertInterval, err = r.duration(n, p)
			return err
		}},
		{name: "preempt", set: func(n *yaml.Node, p string) (err error) {
			h.Preempt, err = value(r, n, p, parseBool)
			return err
		}},
		{name: "preempt_delay", set: func(n *yaml.Node, p string) (err error) {
			h.PreemptDelay, err = r.duration(n, p)
			return err
		}},
		{name: "sync", set: func(n *yaml.Node, p string) error {
			_, spos := deref(n)
			s := &HASync{Line: spos.Line}
			err := r.mapping(n, p, []field{
				{name: "peers", required: true, set: func(n *yaml.Node, p string) error {
					items, err := r.seq(n, p)
					if err != nil {
						return err
					}
					for i, item := range items {
						a, err := value(r, item, index(p, i), parseAddr)
						if err != nil {
							return err
						}
						s.Peers = append(s.Peers, a)
					}
					return nil
				}},
				{name: "key_file", required: true, set: func(n *yaml.Node, p string) (err error) {
					_, kpos := deref(n)
					s.KeyFileLine = kpos.Line
					s.KeyFile, err = r.str(n, p)
					return err
				}},
			})
			h.Sync = s
			return err
		}},
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// ha checks the ha: block (nil = none).
func (v *validator) ha(c *Config) error {
	h := c.HA
	if h == nil {
		return nil
	}
	const p = "ha"
	switch {
	case c.BGP != nil:
		return v.fail(p, h.Line, "", "ha: and bgp: exclude each other: with BGP every director serves the VIPs (ECMP), with VRRP one master answers ARP for them")
	case h.VRID < 1 || h.VRID > 255:
		return v.fail(p+".vrid", h.Line, strconv.Itoa(h.VRID), "must be a VRRP virtual router id 1..255")
	case h.Priority == 255:
		return v.fail(p+".priority", h.Line, "255", "must be 1..254: 255 is VRRP's address owner, and in DR no director owns the VIPs (no address owner in DR)")
	case h.Priority < 1 || h.Priority > 254:
		return v.fail(p+".priority", h.Line, strconv.Itoa(h.Priority), "must be 1..254 (higher is master)")
	case h.AdvertInterval < minAdvertInterval || h.AdvertInterval > maxAdvertInterval || h.AdvertInterval%minAdvertInterval != 0:
		return v.fail(p+".advert_interval", h.Line, h.AdvertInterval.String(), "must be whole centiseconds, 10ms..40.95s (VRRPv3 carries centiseconds)")
	case h.PreemptDelay < 0 || h.PreemptDelay > maxPreemptDelay:
		return v.fail(p+".preempt_delay", h.Line, h.PreemptDelay.String(), "must be 0s..%s", maxPreemptDelay)
	case h.PreemptDelay > 0 && !h.Preempt:
		return v.fail(p+".preempt_delay", h.Line, h.PreemptDelay.String(), "means nothing with preempt: false")
	case h.Interface != "" && c.Interface != "" && h.Interface != c.Interface:
		return v.fail(p+".interface", h.Line, h.Interface, "the vrrp_instance runs on %s, the director on %s: drlb sends adverts where it answers ARP", h.Interface, c.Interface)
	}
	// Each family's adverts carry that family's VIPs, but for the IPv4
	// ones of a keepalived.conf, which carry its virtual_ipaddress
	// (Addrs, checked below): its virtual_ipaddress_excluded, meant for
	// address lists too long for an advert, may hold any number.
	var n4, n6 int
	for _, a := range c.VIPs() {
		if a.Unmap().Is4() {
			n4++
		} else {
			n6++
		}
	}
	if len(h.Addrs) > 0 {
		n4 = 0
	}
	for _, f := range []struct {
		n    int
		name string
	}{{n4, "IPv4"}, {n6, "IPv6"}} {
		if f.n > 255 {
			return v.fail("services", h.Line, strconv.Itoa(f.n), "at most 255 %s VIPs with ha: (the %s VRRP advert carries them, at most 255 addresses)", f.name, f.name)
		}
	}
	if len(h.Addrs) > 255 {
		return v.fail(p+".addrs", h.Line, strconv.Itoa(len(h.Addrs)), "at most 255 addresses in virtual_ipaddress (a VRRP advert carries at most 255)")
	}
	for i, a := range h.Addrs {
		if !a.Is4() {
			return v.fail(p+".addrs["+strconv.Itoa(i)+"]", h.Line, addrText(a), "must be IPv4: these are the IPv4 adverts' addresses")
		}
	}
	s := h.Sync
	if s == nil {
		return nil
	}
	sp := p + ".sync"
	switch {
	case len(s.Peers) == 0:
		return v.fail(sp+".peers", s.Line, "", "at least one peer is needed")
	case len(s.Peers) > maxSyncPeers:
		return v.fail(sp+".peers", s.Line, strconv.Itoa(len(s.Peers)), "at most %d peers", maxSyncPeers)
	case s.KeyFile == "":
		return v.fail(sp+".key_file", s.Line, "", "a key file is required: sync is refused without a shared secret")
	}
	seen := make(map[netip.Addr]int, len(s.Peers))
	for i, a := range s.Peers {
		pp := sp + ".peers[" + strconv.Itoa(i) + "]"
		if msg := hostAddrProblem(a); msg != "" {
			return v.fail(pp, s.Line, addrText(a), "%s", msg)
		}
		if !a.Unmap().Is4() { // refused at start anyway (openSync): say so at check
			return v.fail(pp, s.Line, a.String(), "IPv6 sync peers are not supported yet: sync runs over the directors' IPv4 addresses")
		}
		for _, svc := range c.Services {
			if svc.VIP == a {
				return v.fail(pp, s.Line, a.String(), "a sync peer cannot be a VIP")
			}
		}
		if j, dup := seen[a]; dup {
			return v.fail(pp, s.Line, a.String(), "duplicate peer: %s[%d] is the same", sp+".peers", j)
		}
		seen[a] = i
	}
	return nil
}

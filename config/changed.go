package config

import "slices"

// BGPChanged names the first setting of the bgp: block that differs
// between a and b, as the YAML key ("asn", "peers", ...), or "" when none
// does. Where the block sits in its file (the Line fields) is not a
// setting: a reload of a file with a comment added above the block
// changes nothing. nil (no block) differs from any block ("bgp").
func BGPChanged(a, b *BGP) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return "bgp"
	case a.ASN != b.ASN:
		return "asn"
	case a.RouterID != b.RouterID:
		return "router_id"
	case a.HoldTime != b.HoldTime:
		return "hold_time"
	case a.MinRealServers != b.MinRealServers:
		return "min_realservers"
	case !slices.EqualFunc(a.Peers, b.Peers, BGPPeer.Same):
		return "peers"
	}
	return ""
}

// Same reports whether p and q are the same peer setting: where they
// sit in the file (Line) is not a setting.
func (p BGPPeer) Same(q BGPPeer) bool {
	p.Line, q.Line = 0, 0
	return p == q
}

// HAChanged is BGPChanged for the ha: block ("vrid", "priority", ...,
// "sync"; "ha" when one side has none). Addrs, the adverts' address list,
// is not among them: it follows a reload live, as the VIPs do and as a
// keepalived reload changes its own (the director warns that peers drop
// adverts whose list differs from theirs).
func HAChanged(a, b *HA) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return "ha"
	case a.VRID != b.VRID:
		return "vrid"
	case a.Priority != b.Priority:
		return "priority"
	case a.AdvertInterval != b.AdvertInterval:
		return "advert_interval"
	case a.Preempt != b.Preempt:
		return "preempt"
	case a.PreemptDelay != b.PreemptDelay:
		return "preempt_delay"
	case a.Interface != b.Interface:
		return "interface"
	case a.SkipCheckAdvAddr != b.SkipCheckAdvAddr:
		return "skip_check_adv_addr"
	case (a.Sync == nil) != (b.Sync == nil):
		return "sync"
	case a.Sync != nil && (a.Sync.KeyFile != b.Sync.KeyFile || !slices.Equal(a.Sync.Peers, b.Sync.Peers)):
		return "sync"
	}
	return ""
}

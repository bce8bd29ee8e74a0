package director

import (
	"cmp"
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/drlb/drlb/bgp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/forwarder"
)

// VIPAnnouncer is told which VIPs the director can serve: the hook of
// Options.Announcer (bgp.Announcer is one). Report gets, for every VIP of
// the running configuration, the fewest usable real servers among its
// services; a VIP left out is no longer configured.
type VIPAnnouncer interface {
	Report(usable map[netip.Addr]int)
}

// bgpReportInterval is how often the director reports usability: a
// health check or resolver change reaches the router within it.
const bgpReportInterval = 200 * time.Millisecond

// bgpShutdownGrace is how long a stopping director keeps forwarding after
// withdrawing its VIPs, so the router moves the flows to the other
// directors before this one stops reading.
const bgpShutdownGrace = 1500 * time.Millisecond

// usableByVIP counts, per VIP, the real servers that can take a new
// connection (available, MAC resolved, weight above 0, not inhibited) and
// whose health check, if they have one, has passed since it began,
// keeping the fewest among the VIP's services: a director announces a VIP
// only if it can serve every port of it. A sorry server does not count.
// A server is in use before its first check (as keepalived's are), but
// announcing on that trust would draw the router's share of new flows to
// a director just started whose service may be dead, until the check
// fails retry times.
func usableByVIP(stats []forwarder.ServiceStats) map[netip.Addr]int {
	var c usableCounter
	return c.count(stats)
}

// serviceID names a service from one report to the next.
type serviceID struct {
	proto config.Protocol
	vip   netip.Addr
	port  uint16
}

// usableCounter is usableByVIP with a memory of the last report, so that
// a reload adding a service to a VIP that is already configured does not
// withdraw that VIP: the new service's servers are unchecked until their
// first probes answer, and counting them as none took the VIP's other
// ports, which were being served, off every director that took the
// reload (a withdraw and a re-announce, or the VIP gone from the router
// for the probes' time when all directors reload at once). Such a
// service is left out of its VIP's minimum until one of its checks has
// answered; from then on it counts as any other (a failed check still
// withdraws). A VIP whose services are all waiting counts 0, and at start
// (no report before) or for a VIP the reload adds nothing waits: those
// are announced only once their checks have answered.
type usableCounter struct {
	services map[serviceID]bool  // in the last report
	vips     map[netip.Addr]bool // in the last report
	waiting  map[serviceID]bool  // added to a configured VIP, no verdict yet
}

func (c *usableCounter) count(stats []forwarder.ServiceStats) map[netip.Addr]int {
	out := make(map[netip.Addr]int, len(stats))
	services := make(map[serviceID]bool, len(stats))
	vips := make(map[netip.Addr]bool, len(stats))
	waiting := map[serviceID]bool{}
	for _, s := range stats {
		id := serviceID{s.Protocol, s.VIP, s.Port}
		services[id], vips[s.VIP] = true, true
		n, unanswered := 0, len(s.RealServers) > 0
		for _, r := range s.RealServers {
			if r.Available && r.MAC != nil && r.Weight > 0 && !r.Inhibited && !r.Unchecked {
				n++
			}
			if !r.Unchecked {
				unanswered = false
			}
		}
		if unanswered && (c.waiting[id] || !c.services[id] && c.vips[s.VIP]) {
			waiting[id] = true
			if _, ok := out[s.VIP]; !ok {
				out[s.VIP] = -1 // configured; set by its other services
			}
			continue
		}
		if cur, ok := out[s.VIP]; !ok || cur < 0 || n < cur {
			out[s.VIP] = n
		}
	}
	for v, n := range out {
		if n < 0 { // every service of v is waiting
			out[v] = 0
		}
	}
	c.services, c.vips, c.waiting = services, vips, waiting
	return out
}

// reportUsable feeds the announcer until ctx ends: at once, then every
// bgpReportInterval (the announcer acts only on changes).
func (d *Director) reportUsable(ctx context.Context, a VIPAnnouncer) {
	t := time.NewTicker(bgpReportInterval)
	defer t.Stop()
	for {
		d.reportNow(a)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reportNow tells a what the forwarder can serve now. Reports are made
// one at a time: a periodic one whose figures were read before a reload
// and handed over after the reload's own (which withdraws a removed VIP
// before its blackhole route goes) would announce that VIP again.
func (d *Director) reportNow(a VIPAnnouncer) {
	d.reportMu.Lock()
	defer d.reportMu.Unlock()
	a.Report(d.usable.count(d.Forwarder().Stats()))
}

// arpVIPs are the VIPs the director answers ARP/NDP for and announces by
// gratuitous ARP: none when they are routed to it by BGP, or the router
// would ARP for the VIP instead of routing it over its ECMP next hops.
func arpVIPs(cfg *config.Config) []netip.Addr {
	if cfg.BGP != nil {
		return nil
	}
	return cfg.VIPs()
}

// nextHopFor picks, among an interface's addresses (one family), the next
// hop to announce VIPs with to peers: one whose subnet holds a peer (a
// single-hop peer needs a next hop it reaches directly), else the first.
// Never a link-local address: the global next hop of an IPv6 route must
// be global (RFC 2545), and a router past another hop could not use it.
func nextHopFor(addrs []netip.Prefix, peers []netip.Addr) netip.Addr {
	var first netip.Addr
	for _, a := range addrs {
		if a.Addr().IsLinkLocalUnicast() || a.Addr().IsLoopback() {
			continue
		}
		for _, p := range peers {
			if a.Masked().Contains(p) {
				return a.Addr()
			}
		}
		if !first.IsValid() {
			first = a.Addr()
		}
	}
	return first
}

// fitNextHop is a, unless it cannot be a next hop (link-local: an IPv4
// link-local address, 169.254/16, that the interface had while DHCP had
// not answered yet was announced as the VIPs' next hop, which no router
// uses, and kept: watchNextHops looks only for a family with none).
func fitNextHop(a netip.Addr) netip.Addr {
	return nextHopFor([]netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil)
}

// bgpPeerAddrs lists cfg's BGP peers' addresses (nextHopFor's peers).
func bgpPeerAddrs(cfg *config.Config) []netip.Addr {
	var peers []netip.Addr
	for _, p := range cfg.BGP.Peers {
		peers = append(peers, p.Address)
	}
	return peers
}

// bgpRun is the BGP side of a live director: the speaker and the
// announcer. nil when the config has no bgp: block.
type bgpRun struct {
	asn      uint32
	routerID netip.Addr
	sp       *bgp.GoBGP
	an       *bgp.Announcer
	log      *slog.Logger
}

// startBGP starts the speaker for cfg.BGP, with the interface addresses in
// opts as next hops and (by default) router ID, and sets opts.Announcer.
func startBGP(ctx context.Context, cfg *config.Config, opts *Options, log *slog.Logger) (*bgpRun, error) {
	if cfg.BGP == nil {
		return nil, nil
	}
	sp, err := bgp.StartGoBGP(ctx, bgp.GoBGPConfig{BGP: cfg.BGP, RouterID: opts.IPv4, Logger: log})
	if err != nil {
		return nil, err
	}
	rid := cfg.BGP.RouterID
	if !rid.IsValid() {
		rid = opts.IPv4
	}
	b := &bgpRun{asn: cfg.BGP.ASN, routerID: rid, sp: sp, log: log, an: bgp.NewAnnouncer(sp, bgp.AnnouncerConfig{
		NextHop4: cmp.Or(opts.NextHop4, fitNextHop(opts.IPv4)), NextHop6: opts.NextHop6, MinRealServers: cfg.BGP.MinRealServers, Logger: log,
	})}
	opts.Announcer = b.an
	opts.bgp = b
	return b, nil
}

// serve runs d until ctx ends, then withdraws every VIP and keeps
// forwarding for bgpShutdownGrace before stopping d and the speaker
// (SIGTERM: the router moves the flows first, so none breaks).
func (b *bgpRun) serve(ctx context.Context, d *Director) error {
	err := serveHandingOver(ctx, d, func(context.Context) time.Duration {
		b.an.Shutdown()
		b.log.Info("bgp: VIPs withdrawn; forwarding on while the router moves the flows", "grace", bgpShutdownGrace)
		return bgpShutdownGrace
	})
	b.an.Shutdown()
	b.sp.Stop()
	return err
}

// status is the BGP side of a Snapshot.
func (b *bgpRun) status() *control.BGPStatus {
	st := b.an.Status()
	out := &control.BGPStatus{ASN: b.asn, RouterID: b.routerID, Drained: st.Drained, Stopping: st.Stopping, MinRealServers: st.MinRealServers,
		Peers: []control.BGPPeer{}, VIPs: []control.BGPVIP{}}
	for _, p := range st.Peers {
		out.Peers = append(out.Peers, control.BGPPeer{Address: p.Address, ASN: p.ASN, State: p.State, Since: p.Since,
			HoldTime: p.HoldTime.Seconds()})
	}
	for _, v := range st.VIPs {
		out.VIPs = append(out.VIPs, control.BGPVIP{VIP: v.VIP, NextHop: v.NextHop, Usable: v.Usable, Announced: v.Announced, Why: v.Why})
	}
	return out
}

// snapshot adds the BGP status to take's snapshots when b is set.
func (b *bgpRun) snapshot(take func(bool) control.Snapshot) func(bool) control.Snapshot {
	if b == nil {
		return take
	}
	return func(conns bool) control.Snapshot {
		s := take(conns)
		s.BGP = b.status()
		return s
	}
}

// stop ends the speaker when the director could not start (nil-safe).
func (b *bgpRun) stop() {
	if b != nil {
		b.sp.Stop()
	}
}

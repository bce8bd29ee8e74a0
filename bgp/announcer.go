package bgp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
)

// AnnouncerConfig shapes an Announcer.
type AnnouncerConfig struct {
	// NextHop4 and NextHop6 are the director's own addresses on its LAN
	// interface: the next hop of IPv4 and IPv6 VIPs. A VIP whose family
	// has none is never announced (and Status says why).
	NextHop4, NextHop6 netip.Addr
	// MinRealServers is the number of usable real servers every service
	// of a VIP needs for the VIP to be announced (at least 1).
	MinRealServers int
	Logger         *slog.Logger // default slog.Default()
}

// Announcer decides which VIPs are announced. Its methods are safe for
// concurrent use; each call brings the speaker's routes in line with the
// latest facts before it returns.
type Announcer struct {
	sp  Speaker
	cfg AnnouncerConfig
	log *slog.Logger

	mu        sync.Mutex
	usable    map[netip.Addr]int // the last Report
	announced map[netip.Addr]bool
	// refused is the speaker's last error announcing a VIP that should
	// be announced, for Status to say why it is not.
	refused map[netip.Addr]error
	drained bool
	stopped bool
}

// ErrStopped is returned by Drain after Shutdown: nothing is announced
// again.
var ErrStopped = errors.New("bgp: announcer shut down")

// NewAnnouncer returns an Announcer that announces nothing until the first
// Report.
func NewAnnouncer(sp Speaker, cfg AnnouncerConfig) *Announcer {
	if cfg.MinRealServers < 1 {
		cfg.MinRealServers = 1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Announcer{sp: sp, cfg: cfg, log: log, usable: map[netip.Addr]int{}, announced: map[netip.Addr]bool{},
		refused: map[netip.Addr]error{}}
}

// Report gives, for every VIP of the running configuration, the smallest
// number of usable real servers among its services. A VIP missing from
// usable is no longer configured: it is withdrawn.
func (a *Announcer) Report(usable map[netip.Addr]int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.usable = maps.Clone(usable)
	if a.usable == nil {
		a.usable = map[netip.Addr]int{}
	}
	a.reconcile()
}

// Drain withdraws every VIP (on) or lets them be announced again (off),
// for maintenance: the router moves the flows to the other directors
// while this one keeps forwarding what still reaches it.
func (a *Announcer) Drain(on bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopped {
		return ErrStopped
	}
	if a.drained != on {
		a.log.Info("bgp: drain", "drained", on)
	}
	a.drained = on
	a.reconcile()
	if on {
		// A withdrawal the speaker refused is retried on the next
		// Report, but the operator must not be told it is done.
		var left []netip.Addr
		for v := range a.announced {
			left = append(left, v)
		}
		if len(left) > 0 {
			slices.SortFunc(left, netip.Addr.Compare)
			return fmt.Errorf("bgp: drained, but the speaker has not withdrawn %v yet (retried every report; see the log)", left)
		}
	}
	return nil
}

// SetNextHops gives the next hop of a family that had none (an invalid
// address leaves that family as it is): an address the interface gained
// after start, such as an IPv6 one whose duplicate address detection had
// not finished. VIPs of that family are announced from then on. A family
// that has a next hop keeps it: changing an announced route's next hop is
// a restart's business.
func (a *Announcer) SetNextHops(v4, v6 netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	if v4.IsValid() && !a.cfg.NextHop4.IsValid() {
		a.cfg.NextHop4, changed = v4, true
	}
	if v6.IsValid() && !a.cfg.NextHop6.IsValid() {
		a.cfg.NextHop6, changed = v6, true
	}
	if changed {
		a.log.Info("bgp: next hop found on the interface", "next_hop4", a.cfg.NextHop4, "next_hop6", a.cfg.NextHop6)
		a.reconcile()
	}
}

// NextHops returns the next hops in use (invalid: none for that family).
func (a *Announcer) NextHops() (v4, v6 netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg.NextHop4, a.cfg.NextHop6
}

// Shutdown withdraws every VIP for good: the director is stopping.
func (a *Announcer) Shutdown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stopped = true
	a.reconcile()
}

// reconcile announces what should be and withdraws what should not. A
// speaker error leaves the VIP as it was, to be retried on the next call.
func (a *Announcer) reconcile() {
	vips := make([]netip.Addr, 0, len(a.usable)+len(a.announced))
	for v := range a.usable {
		vips = append(vips, v)
	}
	for v := range a.announced {
		if _, ok := a.usable[v]; !ok {
			vips = append(vips, v)
		}
	}
	slices.SortFunc(vips, netip.Addr.Compare)
	maps.DeleteFunc(a.refused, func(v netip.Addr, _ error) bool { _, ok := a.usable[v]; return !ok })
	for _, v := range vips {
		want, why := a.wanted(v)
		if !want {
			delete(a.refused, v)
		}
		switch have := a.announced[v]; {
		case want && !have:
			if err := a.sp.Announce(hostPrefix(v), a.nextHop(v)); err != nil {
				a.log.Error("bgp: announce", "vip", v, "err", err)
				a.refused[v] = err
				continue
			}
			delete(a.refused, v)
			a.announced[v] = true
			a.log.Info("bgp: announced", "vip", v, "next_hop", a.nextHop(v), "usable_realservers", a.usable[v])
		case !want && have:
			if err := a.sp.Withdraw(hostPrefix(v)); err != nil {
				a.log.Error("bgp: withdraw", "vip", v, "err", err)
				continue
			}
			delete(a.announced, v)
			a.log.Info("bgp: withdrawn", "vip", v, "why", why)
		}
	}
}

// wanted says whether v should be announced, and if not why.
func (a *Announcer) wanted(v netip.Addr) (bool, string) {
	n, configured := a.usable[v]
	switch {
	case a.stopped:
		return false, "stopping"
	case a.drained:
		return false, "drained"
	case !configured:
		return false, "not in the configuration"
	case !a.nextHop(v).IsValid():
		return false, "no global address of this family on the interface for the next hop"
	case n < a.cfg.MinRealServers:
		return false, "too few usable real servers"
	}
	return true, ""
}

func (a *Announcer) nextHop(v netip.Addr) netip.Addr {
	if v.Is4() {
		return a.cfg.NextHop4
	}
	return a.cfg.NextHop6
}

// Status is what `drlb ctl bgp` and /metrics show.
type Status struct {
	Drained  bool
	Stopping bool
	// MinRealServers is the configured minimum per service.
	MinRealServers int
	VIPs           []VIPStatus // sorted by address
	Peers          []PeerStatus
}

// VIPStatus is one VIP: whether it is announced, and if not why.
type VIPStatus struct {
	VIP       netip.Addr
	NextHop   netip.Addr
	Usable    int // the smallest count of usable real servers among its services
	Announced bool
	Why       string // why it is not announced ("" when it is)
}

// Status returns the VIPs and the sessions.
func (a *Announcer) Status() Status {
	a.mu.Lock()
	s := Status{Drained: a.drained, Stopping: a.stopped, MinRealServers: a.cfg.MinRealServers}
	for v, n := range a.usable {
		want, why := a.wanted(v)
		switch {
		case a.announced[v]:
			why = ""
		case want && a.refused[v] != nil:
			why = "the BGP speaker refused it: " + a.refused[v].Error()
		}
		s.VIPs = append(s.VIPs, VIPStatus{VIP: v, NextHop: a.nextHop(v), Usable: n, Announced: a.announced[v], Why: why})
	}
	for v := range a.announced {
		if _, ok := a.usable[v]; !ok {
			s.VIPs = append(s.VIPs, VIPStatus{VIP: v, NextHop: a.nextHop(v), Announced: true})
		}
	}
	a.mu.Unlock()
	slices.SortFunc(s.VIPs, func(x, y VIPStatus) int { return x.VIP.Compare(y.VIP) })
	s.Peers = a.sp.Peers()
	return s
}

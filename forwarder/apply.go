package forwarder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/scheduler"
)

// ErrRestartNeeded is returned by Apply for a change a running forwarder
// cannot make: the connection table is sized (max_conns) once, at New.
var ErrRestartNeeded = errors.New("forwarder: change needs a restart")

// maxSlots bounds services, and real servers per service, counting those
// removed but still named by connection entries: entries hold 16-bit slots.
const maxSlots = 1 << 16

// ChangeKind says what a Change is.
type ChangeKind uint8

const (
	ServiceAdded    ChangeKind = iota // a new virtual service
	ServiceRemoved                    // a service gone, with all its real servers
	ServiceChanged                    // scheduler, flags, persistence or drain timeout (Detail)
	RealAdded                         // a real server added to a service
	RealRemoved                       // a real server removed from a service that stays
	WeightChanged                     // a real server's weight (From, To)
	TimeoutsChanged                   // connection timeouts (Detail)
)

var changeNames = [...]string{
	ServiceAdded: "service added", ServiceRemoved: "service removed", ServiceChanged: "service changed",
	RealAdded: "real server added", RealRemoved: "real server removed", WeightChanged: "weight changed",
	TimeoutsChanged: "timeouts changed",
}

func (k ChangeKind) String() string {
	if int(k) < len(changeNames) {
		return changeNames[k]
	}
	return "change?"
}

// Change is one difference Apply made, for the log.
type Change struct {
	Kind    ChangeKind
	Service string     // "tcp 198.18.0.100:80"
	Real    netip.Addr // RealAdded, RealRemoved, WeightChanged
	// From and To are the weights of WeightChanged, and the weight of an
	// added real server (To).
	From, To int
	Detail   string // ServiceChanged, TimeoutsChanged: "scheduler rr -> wrr"
}

func (c Change) String() string {
	s := c.Kind.String()
	if c.Service != "" {
		s += " " + c.Service
	}
	switch c.Kind {
	case RealAdded:
		s += fmt.Sprintf(" -> %s weight %d", c.Real, c.To)
	case RealRemoved:
		s += " -> " + c.Real.String()
	case WeightChanged:
		s += fmt.Sprintf(" -> %s %d -> %d", c.Real, c.From, c.To)
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// Apply makes cfg the running configuration: services and real servers
// added or removed, schedulers, weights, persistence, drain and connection
// timeouts. It validates cfg whole first (errors wrap config.ErrInvalid;
// a different MaxConns wraps ErrRestartNeeded) and then applies all of it,
// or, on any error, nothing. It keeps its own copy of cfg.
//
// What stays keeps going: in a service with the same protocol, VIP and
// port, a real server with the same address keeps its open connections,
// persistence templates, counters, MAC and health state, however the
// servers around it move and whatever its scheduler or weight becomes.
// A removed real server's connections (a removed service's too) end on
// their next packet, ReasonServerGone, as a failed server's do
// (expire_nodest_conn; a UDP datagram is scheduled afresh instead). Weight 0 drains: open connections continue, and
// with the service's DrainTimeout, those left that long after the weight
// went to 0 end as a removed server's. New connections see cfg at once.
//
// Apply prepares the next configuration beside the running data path:
// schedulers (a Maglev table takes milliseconds) and lookup maps are built
// before anything is swapped. It then calls commit with swap, which
// commit must run while Process cannot run (the director holds its loop's
// lock around it). swap stores the new weights and publishes one pointer:
// work in the number of real servers, none in the size of the connection
// table, because entries name services and real servers by slots that
// never move while an entry names them, so no entry is rewritten. A nil
// commit swaps at once, for callers that drive Process on the same
// goroutine. now (unix nanoseconds, the clock Process sees) starts drain
// timeouts.
//
// Apply may run on any goroutine; it waits for other Applies and for the
// control methods (SetMAC, SetAvailable, ...), which wait for it.
func (f *Forwarder) Apply(cfg *config.Config, now int64, commit func(swap func())) ([]Change, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxConns != f.maxConns {
		return nil, fmt.Errorf("%w: max_conns %d -> %d%s (the connection table is sized at start)", ErrRestartNeeded, f.maxConns, cfg.MaxConns,
			cfg.NoteOf("max_conns"))
	}
	cfg = cfg.Clone()
	f.ctl.Lock()
	defer f.ctl.Unlock()
	next, update, changes, err := f.prepare(f.cur.Load(), cfg, now)
	if err != nil {
		return nil, err
	}
	swap := func() {
		update()
		f.cur.Store(next)
		f.synGen.Add(1)
		f.noteChange()
	}
	if commit == nil {
		swap()
	} else {
		commit(swap)
	}
	return changes, nil
}

// realUpdate is what a swap stores into a real server that stays.
type realUpdate struct {
	r           *realServer
	weight      int32
	mac         uint64 // a static MAC from the config; 0 = keep
	resetHealth bool   // its check's identity changed, or it went away: up again
	checked     bool   // it has a check
	// remode: its check was only retuned (config.SameIdentity) and its
	// Inhibit changed: the verdict stays, and a server that is down
	// stays down, removed or at weight 0 as inhibit now says (keepalived's
	// inhibit_on_failure belongs to the real server: changing it switches
	// a failed server between removed and weight 0).
	remode, inhibit bool
	// fresh: back after a removal, so its check starts afresh (unchecked
	// until it passes). A kept server whose check changed keeps its
	// verdict: a reload that tunes a check must not withdraw the BGP
	// routes of servers already seen working.
	fresh         bool
	since, drains int64 // drainSince, drainDeadline
}

// planned is the server as it will be after the swap.
func (u *realUpdate) planned() scheduler.Server {
	mac := u.r.mac.Load()
	if u.mac != 0 {
		mac = u.mac
	}
	avail, inhib := u.health(u.r.available.Load(), u.r.inhibited.Load())
	w := int(u.weight)
	if inhib {
		w = 0
	}
	return scheduler.Server{Addr: u.r.addr, Weight: w, Available: avail && mac&macKnown != 0}
}

// health is the server's (available, inhibited) after the swap, from what
// it is now. A check whose identity changed brings the server up; one
// only retuned keeps its verdict, a server that is down staying down
// (removed, or at weight 0 with inhibit).
func (u *realUpdate) health(avail, inhib bool) (bool, bool) {
	switch {
	case u.resetHealth:
		return true, false
	case u.remode && (!avail || inhib):
		return u.inhibit, u.inhibit
	}
	return avail, inhib
}

// prepare builds the state for cfg from old without changing anything
// visible; the returned update stores what must change in the real
// servers that stay, and must run (with the store of next) where Process
// cannot. Callers hold f.ctl, so the values it reads cannot change until
// the swap. cfg must not be changed afterwards.
func (f *Forwarder) prepare(old *state, cfg *config.Config, now int64) (*state, func(), []Change, error) {
	if len(cfg.Services) > maxSlots {
		return nil, nil, nil, fmt.Errorf("forwarder: %d services, at most %d", len(cfg.Services), maxSlots)
	}
	next := &state{
		byKey:    make(map[svcKey]*service, len(cfg.Services)),
		vips:     make(map[netip.Addr]struct{}),
		timeouts: newTimeouts(cfg.Timeouts),
		slots:    make([]*service, len(old.slots)),
	}
	for i, s := range old.slots {
		// A service removed by an earlier Apply frees its slot once no
		// entry names it: its count can only have gone down since.
		if s != nil && (s.idx >= 0 || s.entries() > 0) {
			next.slots[i] = s
		}
	}
	var (
		updates []realUpdate
		changes []Change
	)
	for i := range cfg.Services {
		sc := &cfg.Services[i]
		key := svcKey{proto: uint8(sc.Protocol), vip: sc.VIP.Unmap(), port: sc.Port}
		// An unknown scheduler name fails in scheduler.New below.
		traits, _ := scheduler.TraitsOf(sc.Scheduler)
		s := &service{idx: i, key: key, cfg: *sc, consistent: traits.Consistent}
		if _, dup := next.byKey[key]; dup {
			return nil, nil, nil, fmt.Errorf("forwarder: service %s defined twice", s.name())
		}
		if len(sc.RealServers) > maxSlots {
			return nil, nil, nil, fmt.Errorf("forwarder: service %s: %d real servers, at most %d", s.name(), len(sc.RealServers), maxSlots)
		}
		o := old.byKey[key]
		if o != nil {
			s.slot, s.ctr = o.slot, o.ctr
			s.bySlot = keptSlots(o.bySlot)
			if d := serviceDiff(&o.cfg, sc); d != "" {
				changes = append(changes, Change{Kind: ServiceChanged, Service: sc.String(), Detail: d})
			}
		} else if g := next.removed(key); g != nil {
			// Removed by an earlier Apply and back while entries still
			// name it: it takes its slot again, and with it its servers
			// (below), so their connections go on, as IPVS takes a
			// service back from its trash.
			s.slot, s.ctr = g.slot, g.ctr
			s.bySlot = keptSlots(g.bySlot)
			changes = append(changes, Change{Kind: ServiceAdded, Service: sc.String(), Detail: "scheduler " + sc.Scheduler})
		} else {
			slot, ok := freeSlot(next.slots)
			if !ok {
				return nil, nil, nil, fmt.Errorf("forwarder: service %s: no room: %d services, counting removed ones that still own connections", s.name(), maxSlots)
			}
			if slot == len(next.slots) {
				next.slots = append(next.slots, nil)
			}
			s.slot, s.ctr = uint16(slot), &svcCounters{totals: newWorkerTotals(len(f.workers))}
			changes = append(changes, Change{Kind: ServiceAdded, Service: sc.String(), Detail: "scheduler " + sc.Scheduler})
		}
		next.slots[s.slot] = s
		snap := make([]scheduler.Server, 0, len(sc.RealServers))
		for j := range sc.RealServers {
			rc := &sc.RealServers[j]
			addr := rc.Address.Unmap()
			var r *realServer
			k := -1
			if o != nil {
				k = slices.IndexFunc(o.reals, func(r *realServer) bool { return r.addr == addr })
			}
			if k >= 0 {
				r = o.reals[k]
				// A check that only changed its timers or inhibit is the
				// same checker: its verdict stays (a dead server must
				// not come back, nor count for BGP, because its interval
				// changed). One that probes differently brings the
				// server up; its Unchecked stays: a reload that changes
				// a check must not withdraw the BGP routes of servers
				// seen working.
				oc := o.cfg.RealServers[k].Check
				u := realUpdate{r: r, weight: int32(rc.Weight), mac: packMAC(rc.MAC),
					resetHealth: !config.SameIdentity(oc, rc.Check), checked: rc.Check != nil}
				if !u.resetHealth && oc != nil && oc.Inhibit != rc.Check.Inhibit {
					u.remode, u.inhibit = true, rc.Check.Inhibit
				}
				if rc.Weight == 0 {
					u.since = r.drainSince
					if u.since == 0 || r.weight.Load() != 0 {
						u.since = now // draining starts now
					}
					u.drains = drainDeadline(u.since, sc)
				}
				if from := int(r.weight.Load()); from != rc.Weight {
					changes = append(changes, Change{Kind: WeightChanged, Service: sc.String(), Real: addr, From: from, To: rc.Weight})
				}
				updates = append(updates, u)
				snap = append(snap, u.planned())
			} else if kept := removedReal(s.bySlot, addr, o); kept != nil {
				// Removed by an earlier Apply and back while entries
				// still name it: the same server, so its connections
				// go on (IPVS takes a destination back from its trash).
				// The running data path still reads it: it changes at
				// the swap, as a kept server does, starting afresh.
				r = kept
				// Its MAC may have changed while it was removed, which
				// SetMAC told configured servers only.
				u := realUpdate{r: r, weight: int32(rc.Weight), mac: old.macFor(rc.MAC, addr), resetHealth: true, checked: rc.Check != nil, fresh: true}
				if rc.Weight == 0 {
					u.since, u.drains = now, drainDeadline(now, sc)
				}
				changes = append(changes, Change{Kind: RealAdded, Service: sc.String(), Real: addr, To: rc.Weight})
				updates = append(updates, u)
				snap = append(snap, u.planned())
			} else {
				slot, ok := freeRealSlot(s.bySlot)
				if !ok {
					return nil, nil, nil, fmt.Errorf("forwarder: service %s: no room for real server %s: %d, counting removed ones that still own connections", s.name(), addr, maxSlots)
				}
				if slot == len(s.bySlot) {
					s.bySlot = append(s.bySlot, realRef{})
				}
				// Not shared with anything yet: set it up directly.
				r = &realServer{addr: addr, slot: uint16(slot), totals: newWorkerTotals(len(f.workers))}
				r.weight.Store(int32(rc.Weight))
				r.available.Store(true)
				r.unchecked.Store(rc.Check != nil)
				r.mac.Store(old.macFor(rc.MAC, addr))
				if rc.Weight == 0 {
					r.drainSince = now
					r.drainDeadline.Store(drainDeadline(now, sc))
				}
				changes = append(changes, Change{Kind: RealAdded, Service: sc.String(), Real: addr, To: rc.Weight})
				snap = append(snap, scheduler.Server{Addr: addr, Weight: rc.Weight, Available: r.usable()})
			}
			s.bySlot[r.slot] = realRef{r: r, idx: int32(j)}
			s.reals = append(s.reals, r)
		}
		if o != nil {
			for _, r := range o.reals {
				if s.bySlot[r.slot].idx < 0 {
					changes = append(changes, Change{Kind: RealRemoved, Service: sc.String(), Real: r.addr})
				}
			}
		}
		if err := s.prepareSorry(o, sc, old, &changes, &updates); err != nil {
			return nil, nil, nil, err
		}
		s.live.Store(anyLive(snap))
		// A service whose scheduler would be built from the same snapshot
		// keeps the one it has (no Maglev rebuild, rr keeps its place).
		// Otherwise the new one continues from it (same algorithm: rr
		// after its last pick, wrr at its current weight); picks made
		// on it between now and the swap are not seen.
		if o != nil && o.cfg.Scheduler == sc.Scheduler && o.cfg.SchedOptions == sc.SchedOptions &&
			slices.Equal(o.snapshot(), snap) && o.sched.Load() != nil {
			s.sched.Store(o.sched.Load())
		} else {
			var prev scheduler.Scheduler
			if o != nil {
				prev = o.sched.Load()
			}
			sched, err := scheduler.NewAfter(sc.Scheduler, snap, sc.SchedOptions, prev)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("forwarder: service %s: %w", s.name(), err)
			}
			s.sched.Store(sched)
		}
		s.buildStateless(snap)
		next.services = append(next.services, s)
		next.byKey[key] = s
		next.vips[key.vip] = struct{}{}
	}
	for _, o := range old.services {
		if _, kept := next.byKey[o.key]; kept {
			continue
		}
		// Removed: its entries still name it; they end on their next
		// packet (no service matches, or idx -1 below) or expire.
		next.slots[o.slot] = &service{slot: o.slot, idx: -1, key: o.key, cfg: o.cfg, ctr: o.ctr, bySlot: keptSlots(o.bySlot)}
		changes = append(changes, Change{Kind: ServiceRemoved, Service: o.cfg.String()})
	}
	if len(old.services) > 0 && old.timeouts != next.timeouts {
		changes = append(changes, Change{Kind: TimeoutsChanged, Detail: timeoutsDiff(old.timeouts, next.timeouts)})
	}
	next.vipx = newVIPIndex(next.services)
	update := func() {
		for i := range updates {
			u := &updates[i]
			u.r.weight.Store(u.weight)
			if u.mac != 0 {
				u.r.mac.Store(u.mac)
			}
			// A server down under its old check that a new check brings
			// up is unchecked until that check passes: BGP must not count
			// a pool it saw dead before a probe says otherwise. One seen
			// working keeps its count (no route withdrawn by a reload).
			wasDown := !u.r.available.Load() || u.r.inhibited.Load()
			if u.resetHealth || u.remode {
				avail, inhib := u.health(u.r.available.Load(), u.r.inhibited.Load())
				u.r.available.Store(avail)
				u.r.inhibited.Store(inhib)
			}
			if u.resetHealth && (u.fresh || !u.checked || wasDown) {
				u.r.unchecked.Store(u.checked)
			}
			u.r.drainSince = u.since
			u.r.drainDeadline.Store(u.drains)
		}
	}
	return next, update, changes, nil
}

// prepareSorry gives s the sorry server sc names: the one o had if its
// address stays (its MAC and connections carry over), else a new one in a
// free slot, which takes Result.Real index len(sc.RealServers). A sorry
// server o had and sc drops keeps its slot while entries name it, like a
// removed real server.
func (s *service) prepareSorry(o *service, sc *config.Service, old *state, changes *[]Change, updates *[]realUpdate) error {
	ss := sc.SorryServer
	if ss == nil {
		// Logged as every change is: its connections end as a removed
		// server's do, and a reload that said nothing of it left the
		// operator to find out from the clients.
		if o != nil && o.sorry != nil {
			*changes = append(*changes, Change{Kind: ServiceChanged, Service: sc.String(), Detail: "sorry server " + o.sorry.addr.String() + " removed"})
		}
		return nil
	}
	addr := ss.Address.Unmap()
	var r *realServer
	if o != nil && o.sorry != nil && o.sorry.addr == addr && s.bySlot[o.sorry.slot].r == o.sorry {
		r = o.sorry
		// A static MAC the config now gives takes effect at the swap,
		// as a kept real server's does: the resolver's Static sends no
		// event, so nothing else would tell the forwarder.
		if mac := packMAC(ss.MAC); mac != 0 && mac != r.mac.Load() {
			*updates = append(*updates, realUpdate{r: r, weight: r.weight.Load(), mac: mac, since: r.drainSince, drains: r.drainDeadline.Load()})
		}
	} else {
		slot, ok := freeRealSlot(s.bySlot)
		if !ok {
			return fmt.Errorf("forwarder: service %s: no room for sorry server %s: %d, counting removed ones that still own connections", s.name(), addr, maxSlots)
		}
		if slot == len(s.bySlot) {
			s.bySlot = append(s.bySlot, realRef{})
		}
		r = &realServer{addr: addr, slot: uint16(slot), totals: newWorkerTotals(len(s.ctr.totals))}
		r.weight.Store(1)
		r.available.Store(true)
		r.mac.Store(old.macFor(ss.MAC, addr))
		*changes = append(*changes, Change{Kind: ServiceChanged, Service: sc.String(), Detail: "sorry server " + addr.String()})
	}
	s.sorry = r
	s.bySlot[r.slot] = realRef{r: r, idx: int32(len(sc.RealServers))}
	return nil
}

// keptSlots copies a service's slots for the next configuration, every
// server marked removed (the configured ones are marked again by the
// caller); a server removed by an earlier Apply frees its slot once no
// entry names it.
func keptSlots(old []realRef) []realRef {
	out := make([]realRef, len(old))
	for i, ref := range old {
		if ref.r != nil && (ref.idx >= 0 || ref.r.entries() > 0) {
			out[i] = realRef{r: ref.r, idx: -1}
		}
	}
	return out
}

// removed returns the service st keeps for key after an Apply removed
// it (its entries still name its slot), or nil.
func (st *state) removed(key svcKey) *service {
	for _, s := range st.slots {
		if s != nil && s.idx < 0 && s.key == key {
			return s
		}
	}
	return nil
}

// removedReal returns the real server at addr that slots keep for the
// entries naming it after an Apply removed it, or nil. Called for an
// address the service o (nil if none) did not configure as a real server,
// it cannot find one still configured, but for o's sorry server, which
// may have the address and stays apart.
func removedReal(slots []realRef, addr netip.Addr, o *service) *realServer {
	for _, ref := range slots {
		if ref.r != nil && ref.r.addr == addr && (o == nil || ref.r != o.sorry) {
			return ref.r
		}
	}
	return nil
}

// freeSlot returns the first free service slot, or len(slots) for a new
// one; false when there is no room.
func freeSlot(slots []*service) (int, bool) {
	if i := slices.Index(slots, nil); i >= 0 {
		return i, true
	}
	return len(slots), len(slots) < maxSlots
}

func freeRealSlot(slots []realRef) (int, bool) {
	if i := slices.IndexFunc(slots, func(r realRef) bool { return r.r == nil }); i >= 0 {
		return i, true
	}
	return len(slots), len(slots) < maxSlots
}

// macFor is the MAC a server at addr starts with: static, the config's,
// if set, else the one a configured server at addr has in st. Neighbors
// are per address: another service's server at this address knows it
// already, and the resolver would not announce it again.
func (st *state) macFor(static net.HardwareAddr, addr netip.Addr) uint64 {
	if mac := packMAC(static); mac != 0 {
		return mac
	}
	return st.macOf(addr)
}

// drainDeadline is when a server of sc quiesced at since (unix
// nanoseconds; 0 = unknown) has its remaining connections end: 0 for
// never (no DrainTimeout, or since unknown).
func drainDeadline(since int64, sc *config.Service) int64 {
	if sc.DrainTimeout > 0 && since != 0 {
		return since + int64(sc.DrainTimeout)
	}
	return 0
}

// macOf returns the MAC a configured real or sorry server at addr has, if
// any.
func (st *state) macOf(addr netip.Addr) uint64 {
	for _, s := range st.services {
		for _, r := range append(s.reals[:len(s.reals):len(s.reals)], s.sorry) {
			if r == nil {
				continue
			}
			if m := r.mac.Load(); r.addr == addr && m&macKnown != 0 {
				return m
			}
		}
	}
	return 0
}

// serviceDiff says what changed between two configurations of a service,
// real servers aside; "" when nothing did.
func serviceDiff(o, n *config.Service) string {
	var d []string
	add := func(what string, from, to any) {
		if from != to {
			d = append(d, fmt.Sprintf("%s %v -> %v", what, from, to))
		}
	}
	add("scheduler", o.Scheduler, n.Scheduler)
	add("flags", fmt.Sprintf("%+v", o.SchedOptions), fmt.Sprintf("%+v", n.SchedOptions))
	add("persistence", o.Persistence, n.Persistence)
	add("persistence_netmask", o.PersistenceBits, n.PersistenceBits)
	add("drain_timeout", o.DrainTimeout, n.DrainTimeout)
	if o.SorryServer != nil && n.SorryServer != nil {
		// Whether a real server back ends the sorry server's connections.
		add("sorry_server_inhibit", o.SorryServer.Inhibit, n.SorryServer.Inhibit)
	}
	return strings.Join(d, ", ")
}

func timeoutsDiff(o, n timeouts) string {
	var d []string
	for s := range o {
		if o[s] != n[s] {
			d = append(d, fmt.Sprintf("%s %v -> %v", StateName(uint8(s)), o[s], n[s]))
		}
	}
	return strings.Join(d, ", ")
}

// ZeroCounters zeroes the connection, packet and byte totals of every
// service and real server as the listings show them, as ipvsadm -Z does:
// it marks the totals now (Zeroed in Stats), and the listings show what
// was counted since. The totals themselves (Counters in Stats) stay, and
// go on growing: Prometheus reads them as counters, which must never go
// back. The active, inactive and persistent counts say what the table
// holds, not totals: they stay, as do the per-reason frame counters
// (Count). It may be called from any goroutine; the data path takes no
// lock for it. A worker in the middle of a batch with its counts held
// (HoldCounts) publishes them after the mark: the frames of that one
// batch count after it. A reload keeps the mark of every service and
// server it keeps.
func (f *Forwarder) ZeroCounters() {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	for _, s := range f.cur.Load().slots {
		if s != nil {
			s.zeroTotals()
		}
	}
}

// ZeroService is ZeroCounters for the configured service proto vip (its
// VIP and port) and its real servers alone, as ipvsadm -Z -t|-u VIP:PORT
// does; false if there is no such service.
func (f *Forwarder) ZeroService(proto config.Protocol, vip netip.AddrPort) bool {
	f.ctl.Lock()
	defer f.ctl.Unlock()
	for _, s := range f.cur.Load().services {
		if s.cfg.Protocol == proto && s.cfg.VIP == vip.Addr() && s.cfg.Port == vip.Port() {
			s.zeroTotals()
			return true
		}
	}
	return false
}

// zeroTotals marks s's totals and its real servers' (ipvsadm -Z).
func (s *service) zeroTotals() {
	s.ctr.zeroed.set(s.ctr.totals)
	for _, ref := range s.bySlot {
		if ref.r != nil {
			ref.r.zeroed.set(ref.r.totals)
		}
	}
}

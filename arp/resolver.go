package arp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/internal/wire"
)

// State is the state of a neighbor entry.
type State uint8

const (
	// StateIncomplete: asked, no answer yet. Lookup misses.
	StateIncomplete State = iota + 1
	// StateReachable: confirmed by a reply less than Lifetime ago.
	StateReachable
	// StateStale: Lifetime passed while the refresh went unanswered. The
	// MAC is still used (a few lost ARP replies must not stop traffic)
	// while up to MaxProbes broadcast requests try to confirm it.
	StateStale
	// StateFailed: MaxProbes requests in a row went unanswered. Lookup
	// misses; the address is re-asked every FailedRetry.
	StateFailed
	// StatePermanent: a static entry (config `mac:`), never asked.
	StatePermanent
)

func (s State) String() string {
	switch s {
	case StateIncomplete:
		return "incomplete"
	case StateReachable:
		return "reachable"
	case StateStale:
		return "stale"
	case StateFailed:
		return "failed"
	case StatePermanent:
		return "permanent"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// EventKind says what happened to a neighbor entry.
type EventKind uint8

const (
	// EventResolved: the address got a MAC (first answer, or an answer
	// after it had failed). The director may schedule the server.
	EventResolved EventKind = iota + 1
	// EventChanged: a confirmed answer carried a new MAC (OldMAC).
	EventChanged
	// EventFailed: MaxProbes requests went unanswered. The director
	// should stop sending new connections to the server.
	EventFailed
)

func (k EventKind) String() string {
	switch k {
	case EventResolved:
		return "resolved"
	case EventChanged:
		return "changed"
	case EventFailed:
		return "failed"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event reports a change of a neighbor entry.
type Event struct {
	Kind   EventKind
	Addr   netip.Addr
	MAC    MAC // the new MAC (zero for EventFailed)
	OldMAC MAC // EventChanged and EventFailed: the MAC before
}

// Resolver defaults.
const (
	DefaultLifetime      = 60 * time.Second
	DefaultRetryInterval = time.Second
	DefaultMaxProbes     = 3
	DefaultFailedRetry   = 10 * time.Second
)

// ResolverConfig configures a Resolver. Zero durations and counts take the
// defaults.
type ResolverConfig struct {
	// MAC is the director's interface MAC: the sender of the requests
	// and where replies must be addressed.
	MAC MAC
	// IPv4 is the director's own IPv4 address on the interface, the
	// sender IP of ARP requests. If the director has none (zero Addr),
	// requests go out as ARP probes with sender IP 0.0.0.0, which real
	// servers answer just the same (to our MAC, target IP 0.0.0.0).
	IPv4 netip.Addr
	// IPv6 is the source of neighbor solicitations, best the interface's
	// link-local address. If zero, solicitations go from :: (like
	// duplicate address detection) and the real server answers to
	// all-nodes; that works, but is multicast on the LAN.
	IPv6 netip.Addr
	// VLAN tags the requests, if the port sends tagged frames.
	VLAN   VLAN
	Sender Sender // required
	Clock  Clock  // default SystemClock
	// Lifetime is how long an answer holds (default 60s). RefreshAfter
	// (default 2/3 of Lifetime) is when the entry is re-asked, so a live
	// server's entry never goes stale.
	Lifetime     time.Duration
	RefreshAfter time.Duration
	// RetryInterval spaces requests for unresolved or stale entries
	// (default 1s); MaxProbes unanswered requests in a row fail an entry
	// (default 3); a failed entry is re-asked every FailedRetry
	// (default 10s) so a server that comes back is found again.
	RetryInterval time.Duration
	MaxProbes     int
	FailedRetry   time.Duration
	// OnEvent, if set, reports resolved/changed/failed entries, one call
	// at a time and in the order they happened. It is called without the
	// Resolver's lock held (it may call Lookup, Want or Forget, but not
	// Tick or Handle) on a goroutine that called Tick or Handle, not
	// always the one whose call raised the event, so it should be quick.
	OnEvent func(Event)
}

// ResolverStats are the Resolver's counters.
type ResolverStats struct {
	Requests   uint64 // ARP requests and solicitations sent
	SendErrors uint64
	Accepted   uint64 // answers accepted
	// Rejected counts ARP/NDP frames about a wanted address that were not
	// answers to our requests: unsolicited replies, gratuitous ARP,
	// unsolicited advertisements, replies to someone else. A rejected
	// claim of a new MAC triggers a fresh request instead.
	Rejected uint64
}

// Resolver is the neighbor table for real servers: it asks (ARP for IPv4,
// neighbor solicitation for IPv6) for the addresses it is told to Want,
// learns their MACs from the answers, refreshes them before they go
// stale, and reports changes. Lookup is the forwarding hot path: lock-free
// and allocation-free.
//
// Poisoning: an entry changes only on an answer to a request we sent,
// from the address we asked, addressed to our MAC. A gratuitous ARP (or
// unsolicited advertisement) saying a real server moved to another MAC is
// not taken as is: it makes the Resolver ask at once, and the MAC
// changes only if the answer says so. This costs one round trip on a
// genuine move (NIC swap, VM migration with a new MAC) and stops any
// station on the LAN from redirecting a real server's traffic to itself
// just by announcing. (An attacker that answers our requests faster than
// the server can still win: ARP has no authentication; static MACs in the
// config are the answer to that.) Duplicate address detection for a wanted
// address from another MAC is such a claim too. Two answers to one request
// (a proxy ARP router answering after the server) are not: the first wins,
// as in Linux. An advertisement with Override clear (a proxy's) never
// replaces a usable entry's MAC (RFC 4861 7.2.5).
type Resolver struct {
	cfg     ResolverConfig
	sip4    netip.Addr // sender IP of ARP requests: cfg.IPv4 or 0.0.0.0
	sip6    netip.Addr // source of solicitations: cfg.IPv6 or ::
	refresh time.Duration
	// horizon is the furthest ahead of now an entry's next action is
	// ever scheduled (clockSetBack).
	horizon time.Duration
	wake    chan struct{}

	// table is what Lookup reads: rebuilt (copy on write) under mu on
	// every change of a usable MAC, published atomically.
	table atomic.Pointer[map[netip.Addr]MAC]

	mu      sync.Mutex
	entries map[netip.Addr]*entry
	buf     [MaxFrameLen]byte
	// evq holds, under mu, the events not yet handed to OnEvent, in the
	// order the entries changed; emitMu (taken before mu, never under it)
	// lets one goroutine at a time hand them over. Events made under mu
	// but emitted after it by each caller could cross: Tick's "failed"
	// after a worker's "resolved" for a late answer, leaving the director
	// with the server unscheduled while the entry stays reachable and
	// raises no further event.
	evq    []Event
	emitMu sync.Mutex

	requests, sendErrs, accepted, rejected atomic.Uint64
}

type entry struct {
	state       State
	mac         MAC
	confirmed   time.Time // last accepted answer
	next        time.Time // next action in Tick; zero = at the next Tick
	asked       time.Time // last request sent
	outstanding bool      // a request was sent and not answered yet
	unanswered  int       // requests in a row counted toward failure
	verify      bool      // a claim of another MAC was seen: ask by broadcast
}

func (e *entry) usable() bool {
	return e.state == StateReachable || e.state == StateStale || e.state == StatePermanent
}

// NewResolver checks cfg and applies defaults.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	if !cfg.MAC.IsUnicast() {
		return nil, fmt.Errorf("%w: resolver MAC %v is not a unicast address", ErrBadConfig, cfg.MAC)
	}
	if cfg.Sender == nil {
		return nil, fmt.Errorf("%w: resolver has no Sender", ErrBadConfig)
	}
	if cfg.IPv4.IsValid() && (!cfg.IPv4.Unmap().Is4() || checkUnicast(cfg.IPv4) != nil) {
		return nil, fmt.Errorf("%w: resolver IPv4 %v is not a unicast IPv4 address", ErrBadConfig, cfg.IPv4)
	}
	if cfg.IPv6.IsValid() && (!cfg.IPv6.Is6() || cfg.IPv6.Is4In6() || checkUnicast(cfg.IPv6) != nil) {
		return nil, fmt.Errorf("%w: resolver IPv6 %v is not a unicast IPv6 address", ErrBadConfig, cfg.IPv6)
	}
	if cfg.Lifetime < 0 || cfg.RefreshAfter < 0 || cfg.RetryInterval < 0 || cfg.FailedRetry < 0 || cfg.MaxProbes < 0 {
		return nil, fmt.Errorf("%w: resolver durations and MaxProbes must not be negative", ErrBadConfig)
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = DefaultLifetime
	}
	if cfg.RefreshAfter == 0 {
		cfg.RefreshAfter = cfg.Lifetime * 2 / 3
	}
	if cfg.RefreshAfter >= cfg.Lifetime {
		return nil, fmt.Errorf("%w: resolver RefreshAfter %v must be shorter than Lifetime %v", ErrBadConfig, cfg.RefreshAfter, cfg.Lifetime)
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.MaxProbes == 0 {
		cfg.MaxProbes = DefaultMaxProbes
	}
	if cfg.FailedRetry == 0 {
		cfg.FailedRetry = DefaultFailedRetry
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	r := &Resolver{
		cfg:     cfg,
		sip4:    netip.IPv4Unspecified(),
		sip6:    netip.IPv6Unspecified(),
		wake:    make(chan struct{}, 1),
		entries: map[netip.Addr]*entry{},
	}
	if cfg.IPv4.IsValid() {
		r.sip4 = cfg.IPv4.Unmap()
	}
	if cfg.IPv6.IsValid() {
		// Without its zone: a link-local address is naturally written
		// with one (fe80::2%eth0), but the destination of an answer,
		// read from the wire, has none, and with it none compared equal:
		// no IPv6 real server ever resolved.
		r.sip6 = cfg.IPv6.WithZone("")
	}
	// Refresh requests are spread over the last third of the lifetime
	// (MaxProbes of them), but never closer than RetryInterval.
	r.refresh = max(cfg.RetryInterval, (cfg.Lifetime-cfg.RefreshAfter)/time.Duration(cfg.MaxProbes))
	r.horizon = max(cfg.Lifetime, cfg.RefreshAfter, cfg.FailedRetry, cfg.RetryInterval) + time.Second
	empty := map[netip.Addr]MAC{}
	r.table.Store(&empty)
	return r, nil
}

// Lookup returns the MAC of a resolved (reachable, stale or static)
// address. It takes no lock and does not allocate.
func (r *Resolver) Lookup(addr netip.Addr) (MAC, bool) {
	m, ok := (*r.table.Load())[addr.Unmap()]
	return m, ok
}

// Want registers an address to resolve; its first request goes out at the
// next Tick (Run wakes up for it). Wanting an address already known is a
// no-op.
func (r *Resolver) Want(addr netip.Addr) error {
	if err := checkUnicast(addr); err != nil {
		return fmt.Errorf("%w: resolve %v: %v", ErrBadConfig, addr, err)
	}
	addr = addr.Unmap()
	r.mu.Lock()
	if _, ok := r.entries[addr]; !ok {
		r.entries[addr] = &entry{state: StateIncomplete}
	}
	r.mu.Unlock()
	r.kick()
	return nil
}

// Static installs a permanent entry (a real server with a configured MAC):
// Lookup answers it, it is never asked, and no frame changes it.
func (r *Resolver) Static(addr netip.Addr, mac MAC) error {
	if err := checkUnicast(addr); err != nil {
		return fmt.Errorf("%w: static neighbor %v: %v", ErrBadConfig, addr, err)
	}
	if !mac.IsUnicast() {
		return fmt.Errorf("%w: static neighbor %v: MAC %v is not unicast", ErrBadConfig, addr, mac)
	}
	r.mu.Lock()
	r.entries[addr.Unmap()] = &entry{state: StatePermanent, mac: mac}
	r.publish()
	r.mu.Unlock()
	return nil
}

// Forget drops an address (a real server removed from the configuration).
func (r *Resolver) Forget(addr netip.Addr) {
	addr = addr.Unmap()
	r.mu.Lock()
	if e, ok := r.entries[addr]; ok {
		delete(r.entries, addr)
		if e.usable() {
			r.publish()
		}
	}
	r.mu.Unlock()
}

// EntryInfo is one entry of the table, for display.
type EntryInfo struct {
	Addr      netip.Addr
	State     State
	MAC       MAC
	Confirmed time.Time
}

// Entries returns a snapshot of the table, in no particular order.
func (r *Resolver) Entries() []EntryInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]EntryInfo, 0, len(r.entries))
	for a, e := range r.entries {
		out = append(out, EntryInfo{Addr: a, State: e.state, MAC: e.mac, Confirmed: e.confirmed})
	}
	return out
}

// Stats returns a snapshot of the counters.
func (r *Resolver) Stats() ResolverStats {
	return ResolverStats{
		Requests:   r.requests.Load(),
		SendErrors: r.sendErrs.Load(),
		Accepted:   r.accepted.Load(),
		Rejected:   r.rejected.Load(),
	}
}

func (r *Resolver) kick() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// publish rebuilds the Lookup table from the entries. Caller holds mu.
func (r *Resolver) publish() {
	t := make(map[netip.Addr]MAC, len(r.entries))
	for a, e := range r.entries {
		if e.usable() {
			t[a] = e.mac
		}
	}
	r.table.Store(&t)
}

// Tick sends the requests due at now (first requests, retries, refreshes,
// re-asks of failed entries), moves entries between states, reports
// events and returns when it next needs to run and the Sender's errors.
func (r *Resolver) Tick(now time.Time) (next time.Time, err error) {
	var errs []error
	r.mu.Lock()
	changed := false
	for addr, e := range r.entries {
		if e.state == StatePermanent {
			continue
		}
		r.clockSetBack(e, now)
		if !e.next.IsZero() && now.Before(e.next) {
			next = earliest(next, e.next)
			continue
		}
		unicast := false
		switch e.state {
		case StateReachable:
			if now.Before(e.confirmed.Add(r.cfg.Lifetime)) {
				// Refresh: unicast to the known MAC, like Linux's
				// NUD probes, and not counted toward failure. A
				// claim check (verify) is broadcast instead, so the
				// claimant can answer too.
				unicast, e.verify = !e.verify, false
				e.unanswered++
				e.next = e.confirmed.Add(r.cfg.Lifetime)
				if e.unanswered < r.cfg.MaxProbes {
					e.next = earliest(now.Add(r.refresh), e.next)
				}
				if refreshAt := e.confirmed.Add(r.cfg.RefreshAfter); e.next.Before(refreshAt) {
					e.next = refreshAt // a claim check keeps the refresh schedule
				}
				break
			}
			e.state, e.unanswered, e.verify = StateStale, 0, false
			fallthrough
		case StateStale, StateIncomplete:
			if e.unanswered >= r.cfg.MaxProbes {
				r.queue(Event{Kind: EventFailed, Addr: addr, OldMAC: e.mac})
				changed = changed || e.usable()
				e.state, e.mac = StateFailed, MAC{}
				e.next = now.Add(r.cfg.FailedRetry)
				next = earliest(next, e.next)
				continue
			}
			e.unanswered++
			e.next = now.Add(r.cfg.RetryInterval)
		case StateFailed:
			e.next = now.Add(r.cfg.FailedRetry)
		}
		next = earliest(next, e.next)
		if er := r.ask(addr, e, unicast, now); er != nil {
			errs = append(errs, er)
		}
	}
	if changed {
		r.publish()
	}
	r.mu.Unlock()
	r.emit()
	return next, errors.Join(errs...)
}

// clockSetBack brings e's times back to now where they are ahead of it
// by more than any schedule puts them: HandleAt's come from the batches'
// wall clock, and a clock set back (an NTP step at boot) left the entry
// neither refreshed nor found failed until the clock caught up, an hour
// for a step of an hour. A refresh is then due at once.
func (r *Resolver) clockSetBack(e *entry, now time.Time) {
	if e.confirmed.After(now) {
		e.confirmed = now
	}
	if e.asked.After(now) {
		e.asked = now
	}
	if e.next.Sub(now) > r.horizon {
		e.next = now
	}
}

// ask sends one request for addr: broadcast (ARP) or to the solicited-node
// group (NDP), or unicast to the known MAC for a refresh. Caller holds mu.
func (r *Resolver) ask(addr netip.Addr, e *entry, unicast bool, now time.Time) error {
	var n int
	if addr.Is4() {
		p := ARPPacket{
			Ethernet:  Ethernet{Dst: broadcast, Src: r.cfg.MAC, VLAN: r.cfg.VLAN},
			Op:        OpRequest,
			SenderMAC: r.cfg.MAC,
			SenderIP:  r.sip4,
			TargetIP:  addr,
		}
		if unicast {
			p.Ethernet.Dst = e.mac
		}
		n = p.Encode(r.buf[:])
	} else {
		sn := solicitedNode(addr)
		p := NDPPacket{
			Ethernet:    Ethernet{Dst: multicastMAC(sn), Src: r.cfg.MAC, VLAN: r.cfg.VLAN},
			Src:         r.sip6,
			Dst:         sn,
			HopLimit:    255,
			Type:        TypeNeighborSolicitation,
			Target:      addr,
			SourceLL:    r.cfg.MAC,
			HasSourceLL: !r.sip6.IsUnspecified(), // RFC 4861: never from ::
		}
		// A solicitation from :: goes to the solicited-node group
		// always (RFC 4861 7.1.1: a unicast one is invalid, and dropped).
		if unicast && !r.sip6.IsUnspecified() {
			p.Ethernet.Dst, p.Dst = e.mac, addr
		}
		n = p.Encode(r.buf[:])
	}
	e.asked, e.outstanding = now, true
	if n == 0 {
		return nil // cannot happen: buf is MaxFrameLen
	}
	r.requests.Add(1)
	if err := r.cfg.Sender.Send(r.buf[:n]); err != nil {
		r.sendErrs.Add(1)
		return fmt.Errorf("resolve %v: %w", addr, err)
	}
	return nil
}

// queue records an event for emit. Caller holds mu.
func (r *Resolver) queue(ev Event) {
	if r.cfg.OnEvent != nil {
		r.evq = append(r.evq, ev)
	}
}

// emit hands the queued events to OnEvent, oldest first. Caller holds
// neither lock; OnEvent runs with neither held (it may take mu).
func (r *Resolver) emit() {
	if r.cfg.OnEvent == nil {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	for {
		r.mu.Lock()
		if len(r.evq) == 0 {
			r.mu.Unlock()
			return
		}
		ev := r.evq[0]
		r.evq = r.evq[:copy(r.evq, r.evq[1:])]
		r.mu.Unlock()
		r.cfg.OnEvent(ev)
	}
}

// Handle takes one received frame and learns from it if it answers one of
// our requests: an ARP reply from the asked IPv4 address to our MAC and IP
// (or to 0.0.0.0 when we ask without an IP), or a neighbor advertisement
// for the asked IPv6 address with a target link-layer option, to our MAC.
// It returns true if the frame was accepted. Any other ARP/NDP frame that
// claims a different MAC for a wanted address is rejected and triggers a
// fresh request (see Resolver). Handle does not allocate.
func (r *Resolver) Handle(frame []byte) bool { return r.HandleAt(frame, r.cfg.Clock.Now()) }

// HandleAt is Handle for a frame received at now: the director's step
// passes the batch's time, so the data path reads no clock of its own.
func (r *Resolver) HandleAt(frame []byte, now time.Time) bool {
	var eth Ethernet
	etype, _, f := parseEthernet(frame, &eth)
	if !f.ok() || eth.Src == r.cfg.MAC {
		return false
	}
	var (
		addr        netip.Addr
		mac         MAC
		isAnswer    bool
		confirmOnly bool // an answer that may confirm e.mac, nothing else
		// weak: an advertisement with Override clear (a proxy's, RFC
		// 4861 7.2.8), which must not replace a valid entry's MAC
		// (7.2.5), nor make us check it: the proxy would answer every
		// check again.
		weak bool
	)
	switch etype {
	case wire.EtherTypeARP:
		var p ARPPacket
		if !parseARP(frame, &p).ok() || p.SenderMAC == r.cfg.MAC {
			return false
		}
		addr, mac = p.SenderIP, p.SenderMAC
		isAnswer = p.Op == OpReply && p.TargetMAC == r.cfg.MAC && p.TargetIP == r.sip4 &&
			(eth.Dst == r.cfg.MAC || eth.Dst == broadcast) && eth.Src == p.SenderMAC
	case wire.EtherTypeIPv6:
		var p NDPPacket
		if !parseNDP(frame, &p).ok() {
			return false
		}
		switch p.Type {
		case TypeNeighborAdvertisement:
			if !p.HasTargetLL {
				// Linux answers a unicast solicitation (our refresh)
				// with a solicited advertisement without target
				// link-layer option (ndisc_recv_ns: inc_opt only for a
				// multicast one). RFC 4861 7.2.5: it confirms the MAC
				// we have. Dropping it left every refresh unanswered,
				// so each IPv6 entry went stale once per Lifetime.
				// It only confirms, from that very MAC, never changes.
				if p.Flags&FlagSolicited == 0 || r.sip6.IsUnspecified() || p.Dst != r.sip6 || eth.Dst != r.cfg.MAC {
					return false
				}
				addr, mac, isAnswer, confirmOnly = p.Target, eth.Src, true, true
				break
			}
			addr, mac, weak = p.Target, p.TargetLL, p.Flags&FlagOverride == 0
			if r.sip6.IsUnspecified() {
				// We asked from ::, so the answer goes to all-nodes.
				isAnswer = p.Dst == allNodes
			} else {
				isAnswer = p.Dst == r.sip6 && eth.Dst == r.cfg.MAC
			}
		case TypeNeighborSolicitation:
			switch {
			case p.HasSourceLL:
				addr, mac = p.Src, p.SourceLL // a claim, never an answer
			case p.Src.IsUnspecified() && !r.sip6.IsUnspecified():
				// Duplicate address detection: a station is bringing
				// the target up, from eth.Src. A Linux server whose
				// address comes up on a new NIC sends this and no
				// advertisement (ndisc_notify is off by default): a
				// claim, checked like a gratuitous ARP, or the old MAC
				// stayed in use until the entry went stale. Not when we
				// solicit from :: ourselves: another director doing so
				// looks the same, and two would check each other's
				// checks forever.
				addr, mac = p.Target, eth.Src
			default:
				return false
			}
		}
	default:
		return false
	}
	if !mac.IsUnicast() {
		return false
	}
	var ev Event
	r.mu.Lock()
	e, ok := r.entries[addr]
	if !ok || e.state == StatePermanent || confirmOnly && (!e.usable() || mac != e.mac) {
		r.mu.Unlock()
		return false
	}
	if weak && e.usable() && mac != e.mac {
		r.rejected.Add(1)
		r.mu.Unlock()
		return false
	}
	if isAnswer && !e.outstanding && e.usable() && mac != e.mac && now.Before(e.asked.Add(r.cfg.RetryInterval)) {
		// A second answer to a request already answered, with another
		// MAC: a proxy ARP router answering for the server, after it.
		// The first answer wins, as in Linux (arp_process, locktime:
		// "prevents arp thrashing"); taking this one as a claim made a
		// check every RetryInterval, forever, each answered by both.
		r.rejected.Add(1)
		r.mu.Unlock()
		return false
	}
	if !isAnswer || !e.outstanding {
		if mac != e.mac || !e.usable() {
			r.rejected.Add(1)
			// Someone claims addr is at another MAC: ask rather than
			// believe it, at most once per RetryInterval: now, or when
			// the last request is that old (a claim soon after a
			// refresh, as a server's new NIC announces itself, must not
			// wait for the next refresh).
			if e.usable() {
				at := e.asked.Add(r.cfg.RetryInterval)
				if !now.Before(at) {
					at = time.Time{}
				}
				// Wake Run only when the check moved: waking it on every
				// claim of a flood made it walk the whole table and take
				// mu, which the workers' Handle needs, once per frame.
				moved := false
				if !e.verify || at.Before(e.next) {
					moved = !at.Equal(e.next)
					e.next = at
				}
				e.verify = true
				r.mu.Unlock()
				if moved {
					r.kick()
				}
				return false
			}
			if e.state == StateFailed {
				// A failed server that comes back announces itself
				// (gratuitous ARP at boot): ask now, at most once per
				// RetryInterval, rather than after up to FailedRetry
				// more seconds out of scheduling.
				moved := false
				if at := e.asked.Add(r.cfg.RetryInterval); !now.Before(at) {
					moved = !e.next.IsZero()
					e.next = time.Time{}
				} else if !e.next.IsZero() && at.Before(e.next) {
					moved = true
					e.next = at
				}
				r.mu.Unlock()
				if moved {
					r.kick()
				}
				return false
			}
		}
		r.mu.Unlock()
		return false
	}
	r.accepted.Add(1)
	switch {
	case !e.usable():
		ev = Event{Kind: EventResolved, Addr: addr, MAC: mac}
	case e.mac != mac:
		ev = Event{Kind: EventChanged, Addr: addr, MAC: mac, OldMAC: e.mac}
	}
	e.state, e.mac, e.confirmed = StateReachable, mac, now
	e.next = now.Add(r.cfg.RefreshAfter)
	e.outstanding, e.unanswered = false, 0
	if ev.Kind != 0 {
		r.publish()
		r.queue(ev)
	}
	r.mu.Unlock()
	if ev.Kind != 0 {
		r.emit()
	}
	return true
}

// Run calls Tick whenever something is due or an address is wanted (or a
// claim needs checking), until ctx is done. Send errors are counted
// (Stats), not fatal: the next retry tries again.
func (r *Resolver) Run(ctx context.Context) error {
	return runTicks(ctx, r.cfg.Clock, r.wake, r.Tick)
}

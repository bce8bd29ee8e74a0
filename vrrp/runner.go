package vrrp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Conn moves adverts: whole IP packets, header included, both ways (an
// IPv6 Conn strips the header it is given and builds one for what it
// reads, since raw IPv6 sockets carry no header).
type Conn interface {
	// Send writes one packet (built by Advert.AppendIPv4 or AppendIPv6).
	Send(pkt []byte) error
	// Recv reads one packet into b; it returns an error once the Conn
	// is closed.
	Recv(b []byte) (int, error)
	Close() error
}

// Family names the address family of a virtual router whose own address
// is self: "ipv4" or "ipv6" (log and metric labels).
func Family(self netip.Addr) string {
	if self.Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// Transition is a state change, handed to RunnerConfig.OnChange.
type Transition struct {
	From, To State
	Reason   string
	At       time.Time
}

// RunnerConfig configures a Runner.
type RunnerConfig struct {
	Machine *Machine
	Conn    Conn
	// Self is the source address of the adverts (Config.Self).
	Self netip.Addr
	// OnChange is called after every transition, once the advert that
	// may go with it is sent (RFC 5798 6.4.2: a new master sends its
	// advert, then its gratuitous ARP; 6.4.3: a stopping one its
	// priority-0 advert, then goes to Initialize), on the runner's
	// goroutine (on SetLink's caller's for a change of the link), with the
	// runner's lock held: the director starts or stops answering ARP
	// here. It must not send for long: the runner waits for it.
	OnChange func(Transition)
	// OnReassert is called, on the runner's goroutine with its lock held,
	// when a master must announce the VIPs again (Output.Reassert), with
	// the reason, after the advert that makes the other master yield.
	OnReassert func(reason string)
	Clock      func() time.Time // default time.Now
	Logger     *slog.Logger     // default slog.Default()
}

// Runner drives a Machine from a Conn and the clock until its context
// ends; then it sends the priority-0 advert (if master) and closes the
// Conn. Stats may be called from any goroutine.
type Runner struct {
	cfg     RunnerConfig
	mu      sync.Mutex // guards the machine and the counters below
	sendErr uint64
	id      uint16
	buf     []byte
	// wake tells Run that SetLink changed the machine's timers.
	wake chan struct{}
	// The log of adverts ignored for their address list (logAddrMismatch):
	// the keys of the mismatches logged (a ring), and when the last was.
	mismatchSeen [8]uint64
	mismatchNext int
	mismatchLog  time.Time
}

// Bounds of the log of adverts ignored for their address list: a
// mismatch not logged before (another peer, or another list) is logged
// at once, but not within mismatchNewEvery of the last log; one logged
// before, again once mismatchAgainEvery has passed since the last log.
// keepalived logs every such advert (up to 10 a second per peer at
// drlb's intervals).
const (
	mismatchNewEvery   = time.Second
	mismatchAgainEvery = time.Minute
)

// NewRunner checks cfg.
func NewRunner(cfg RunnerConfig) (*Runner, error) {
	if cfg.Machine == nil || cfg.Conn == nil {
		return nil, errors.New("vrrp: a runner needs a Machine and a Conn")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Runner{cfg: cfg, buf: make([]byte, 0, ipv6Len+headerLen+16*MaxAddrs), wake: make(chan struct{}, 1)}, nil
}

// RunnerStats are the machine's Stats and the Conn's send errors.
type RunnerStats struct {
	Stats
	SendErrors uint64
}

// Stats reads the counters.
func (r *Runner) Stats() RunnerStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RunnerStats{Stats: r.cfg.Machine.Stats(), SendErrors: r.sendErr}
}

// SetAddrs changes the addresses the adverts carry, and whether an
// advert with another list is taken (Machine.SetAddrs).
func (r *Runner) SetAddrs(addrs []netip.Addr, takeOther bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Machine.SetAddrs(addrs, takeOther)
}

// SetPriority changes the router's priority (Machine.SetPriority): a
// master's advert with it goes out at once.
func (r *Runner) SetPriority(p uint8) error {
	var err error
	r.step(func(now time.Time) Output {
		out, e := r.cfg.Machine.SetPriority(now, p)
		err = e
		return out
	})
	r.wakeUp() // the timer moved
	return err
}

// SetPreemptHold holds preemption back or lets it go
// (Machine.SetPreemptHold); a released hold takes effect with the next
// advert of a lower-priority master.
func (r *Runner) SetPreemptHold(hold bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.Machine.SetPreemptHold(hold)
}

// SetLink reports the interface's link going down or coming back up
// (Machine.LinkDown, LinkUp), with the reason to log. It may be called
// before Run, and from any goroutine.
func (r *Runner) SetLink(up bool, reason string) {
	event := r.cfg.Machine.LinkDown
	if up {
		event = r.cfg.Machine.LinkUp
	}
	r.step(func(now time.Time) Output { return event(now, reason) })
	r.wakeUp()
}

// wakeUp makes Run wait for the machine's timer again after an event
// moved it.
func (r *Runner) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already waiting
	}
}

// step hands the machine one event at the clock's time and acts on its
// Output, under r.mu.
func (r *Runner) step(event func(now time.Time) Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.cfg.Clock()
	r.apply(event(now), now)
}

// apply acts on one Output: with r.mu held. The advert goes first: a new
// master's gratuitous ARP (OnChange), 5 per VIP, sent before it delayed
// the advert that tells the backups, and RFC 5798 6.4.2 orders it after.
func (r *Runner) apply(out Output, now time.Time) {
	if out.Send {
		r.send()
	}
	if out.Changed {
		r.cfg.Logger.Info("vrrp: "+out.From.String()+" -> "+out.To.String(), "reason", out.Reason,
			"family", Family(r.cfg.Self), "vrid", r.cfg.Machine.cfg.VRID, "priority", r.cfg.Machine.cfg.Priority)
		if r.cfg.OnChange != nil {
			r.cfg.OnChange(Transition{From: out.From, To: out.To, Reason: out.Reason, At: now})
		}
	}
	if out.Reassert != "" && r.cfg.OnReassert != nil {
		r.cfg.OnReassert(out.Reassert)
	}
	if out.AddrMismatch {
		r.logAddrMismatch(now)
	}
}

// logAddrMismatch logs the advert the machine just ignored for its
// address list, within the bounds above: with r.mu held. Nothing is
// allocated unless it logs.
func (r *Runner) logAddrMismatch(now time.Time) {
	m := r.cfg.Machine
	key := mismatchKey(m.mismatchFrom, m.addrs[:m.mismatchN], m.cfg.Addrs)
	seen := false
	for _, k := range r.mismatchSeen {
		seen = seen || k == key
	}
	every := mismatchNewEvery
	if seen {
		every = mismatchAgainEvery
	}
	if !r.mismatchLog.IsZero() && now.Sub(r.mismatchLog) < every {
		return
	}
	r.mismatchLog = now
	if !seen {
		r.mismatchSeen[r.mismatchNext] = key
		r.mismatchNext = (r.mismatchNext + 1) % len(r.mismatchSeen)
	}
	d := m.LastAddrMismatch()
	if m.cfg.TakeOtherAddrs {
		r.cfg.Logger.Warn("vrrp: an advert for our virtual router carries another address list (a reload that changed the VIPs on one director and not yet on the other?): taken, since the list follows the VIPs; reload the other director too",
			"peer", d.From, "family", Family(r.cfg.Self), "vrid", m.cfg.VRID, "ours", d.Ours, "theirs", d.Theirs,
			"missing", d.Missing, "unexpected", d.Unexpected, "taken", m.addrListTaken)
		return
	}
	r.cfg.Logger.Warn("vrrp: ignoring an advert for our virtual router whose address list differs from ours, as keepalived does (addr_list_err): while that lasts, that router and this one may both be MASTER; make both lists the same (virtual_ipaddress, or the VIPs)",
		"peer", d.From, "family", Family(r.cfg.Self), "vrid", m.cfg.VRID, "ours", d.Ours, "theirs", d.Theirs,
		"missing", d.Missing, "unexpected", d.Unexpected, "ignored", m.ignored[Reason(ErrAddrList)])
}

// mismatchKey tells one advert's sender and address list, and ours (a
// reload changes it, and what differs with it), from another's
// (FNV-1a), without allocating.
func mismatchKey(from netip.Addr, addrs, ours []netip.Addr) uint64 {
	h := uint64(14695981039346656037)
	mix := func(a netip.Addr) {
		for _, b := range a.As16() {
			h = (h ^ uint64(b)) * 1099511628211
		}
	}
	mix(from)
	for _, a := range addrs {
		mix(a)
	}
	mix(netip.Addr{}) // between the two lists
	for _, a := range ours {
		mix(a)
	}
	return h
}

// send sends the machine's advert: with r.mu held.
func (r *Runner) send() {
	a := r.cfg.Machine.Advert()
	var pkt []byte
	var err error
	if r.cfg.Self.Is4() {
		r.id++
		pkt, err = a.AppendIPv4(r.buf[:0], r.cfg.Self, r.id)
	} else {
		pkt, err = a.AppendIPv6(r.buf[:0], r.cfg.Self.WithZone(""))
	}
	if err == nil {
		err = r.cfg.Conn.Send(pkt)
	}
	if err != nil {
		r.sendErr++
		if r.sendErr == 1 || r.sendErr%100 == 0 {
			r.cfg.Logger.Warn("vrrp: sending an advert failed", "err", err, "errors", r.sendErr)
		}
	}
}

// packet is what the reader goroutine of Run read: a packet or an error.
type packet struct {
	b   []byte
	err error
}

// Run starts the machine and runs it until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	in := make(chan packet, 16)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			// Room for the largest advert, not an MTU: an IPv6 one of
			// 91 addresses or more is over 1500 bytes (fragmented and
			// reassembled), and cut short it would be refused as
			// malformed, every one of the master's: two masters.
			b := make([]byte, maxAdvertLen)
			n, err := r.cfg.Conn.Recv(b)
			n = max(0, min(n, len(b)))
			var errno syscall.Errno
			if errors.As(err, &errno) && (errno.Temporary() || errno == syscall.ENOBUFS || errno == syscall.ENOMEM) {
				// A passing shortage is no reason to leave the election.
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				continue
			}
			select {
			case in <- packet{b[:n], err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	m := r.cfg.Machine
	// receive hands p to the machine; a read error stops it, and is
	// Run's to return.
	receive := func(p packet) error {
		if p.err != nil {
			r.step(m.Stop)
			r.cfg.Conn.Close()
			return p.err
		}
		r.step(func(now time.Time) Output { return m.Receive(now, p.b) })
		return nil
	}
	r.step(m.Start)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// The takeover due at deferFor may be deferred for reading until
	// deferUntil at most (maxDefer).
	var deferFor, deferUntil time.Time
	for {
		r.mu.Lock()
		next := m.Next()
		r.mu.Unlock()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(r.cfg.Clock()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			r.step(m.Stop)
			r.cfg.Conn.Close()
			return nil
		case p := <-in:
			if err := receive(p); err != nil {
				return err
			}
		case <-r.wake: // the timers changed: wait again
		case <-timer.C:
			// Packets that are no advert for this virtual router (other
			// VRIDs, malformed ones, a lower-priority master's with
			// preempt) leave the master-down timer where it was: without
			// a bound, a steady stream of them (many VRIDs on the LAN, a
			// storm, an attacker) found one waiting at every look and
			// deferred the takeover for as long as it lasted, the master
			// dead. A takeover is deferred for maxDefer at most.
			now := time.Now()
			if !next.Equal(deferFor) {
				deferFor, deferUntil = next, now.Add(maxDefer)
			}
			if !now.Before(deferUntil) {
				r.step(m.Tick)
				continue
			}
			if p, ok := r.arrived(in); ok {
				// An advert came before the takeover: it goes first, and
				// the loop looks at the timer again.
				if err := receive(p); err != nil {
					return err
				}
				continue
			}
			r.step(m.Tick)
		}
	}
}

// pendingWait is how long a takeover waits for the reader to deliver an
// advert the socket holds (Pender).
const pendingWait = 20 * time.Millisecond

// maxDefer is how long a takeover may be deferred for reading what the
// reader and the socket hold: far more than a full socket buffer of
// adverts takes to read, far less than a master-down interval of
// keepalived's default 1 s interval.
const maxDefer = 100 * time.Millisecond

// Pender is a Conn that can tell whether a packet waits in its receive
// queue (the Linux Conn: SIOCINQ).
type Pender interface{ Pending() bool }

// arrived returns a packet that arrived before a backup's master-down
// timer ran out, if any. keepalived reads a readable socket before it
// looks at its timers; here the reader goroutine and the timer race, and
// a director paused past the master-down interval (SIGSTOP, a VM stalled,
// a host starved of CPU) found the timer due with the master's adverts
// queued in its socket, became MASTER, sent its advert and gratuitous ARP,
// and yielded at the next advert: a flap, the master reasserting the VIPs
// too. So before a backup takes over, the packets the reader holds go
// first, and one the socket still holds is waited for (pendingWait).
func (r *Runner) arrived(in <-chan packet) (packet, bool) {
	r.mu.Lock()
	backup := r.cfg.Machine.State() == Backup
	r.mu.Unlock()
	if !backup {
		return packet{}, false
	}
	select {
	case p := <-in:
		return p, true
	default:
	}
	if pc, ok := r.cfg.Conn.(Pender); !ok || !pc.Pending() {
		return packet{}, false
	}
	select {
	case p := <-in:
		return p, true
	case <-time.After(pendingWait):
		return packet{}, false
	}
}

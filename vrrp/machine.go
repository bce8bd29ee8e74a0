package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is a VRRP router's state (RFC 5798 6.4).
type State uint8

const (
	Init State = iota
	Backup
	Master
	// Fault: the interface is down (keepalived's FAULT): the router
	// can neither hear nor be heard, so it takes no part in the
	// election until the link is back (LinkDown, LinkUp).
	Fault
)

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Config is one virtual router.
type Config struct {
	VRID     uint8
	Priority uint8 // 1..254: 255 (the address owner) is refused, as in DR
	// Interval is this router's advert interval (whole centiseconds).
	Interval time.Duration
	// Preempt lets this router take over from a master of lower priority;
	// not before PreemptDelay after Start (or the link back up), and, as
	// keepalived, once it followed a master of a priority not below its
	// own (or was master itself), not before PreemptDelay after the first
	// advert of a lower priority.
	Preempt      bool
	PreemptDelay time.Duration
	// Self is the router's own address: the source of its adverts, and
	// the tie-break between equal priorities. Its family is the virtual
	// router's: an IPv4 address, or the interface's IPv6 link-local
	// address (RFC 5798 5.1.2.1) for an IPv6 virtual router.
	Self netip.Addr
	// Addrs are the virtual addresses the adverts carry (the VIPs of
	// Self's family). An advert whose list differs (another count, or
	// one of these missing; the order does not matter) is ignored, as
	// keepalived ignores it (its addr_list_err): Reason "addr_list".
	Addrs []netip.Addr
	// SkipCheckAdvAddr is keepalived's skip_check_adv_addr: a backup
	// takes the adverts of the master it follows without comparing
	// their addresses; those of any other router, and every advert a
	// master hears, are compared all the same.
	SkipCheckAdvAddr bool
	// TakeOtherAddrs: an advert whose address list differs is taken
	// into the election all the same, and counted (AddrListTaken), for
	// a list that follows the director's VIPs (YAML's, every IPv6 one):
	// a reload adding a VIP changes it on one director before the
	// other, and ignoring the other's adverts made both MASTER until
	// the second reload. keepalived's own list (virtual_ipaddress) is
	// checked as keepalived checks it.
	TakeOtherAddrs bool
}

// ErrBadConfig wraps every problem NewMachine finds.
var ErrBadConfig = errors.New("vrrp: bad config")

// Output is what a call asks the caller to do.
type Output struct {
	// Send: send Machine.Advert now.
	Send bool
	// Changed: the state went From -> To, for Reason.
	Changed  bool
	From, To State
	Reason   string
	// Reassert, while master, says why the VIPs must be announced again
	// although the state did not change: another master of a lower
	// priority was heard (a split brain ending, e.g. a link back up),
	// and the router may have moved its ARP entry to it. keepalived
	// does the same (its garp_lower_prio_repeat).
	Reassert string
	// AddrMismatch: the packet was an advert for this virtual router
	// whose address list differs from ours, ignored and counted
	// ("addr_list"); Machine.LastAddrMismatch says from whom and what.
	AddrMismatch bool
}

// Stats are the machine's counters and where the election stands.
type Stats struct {
	State          State
	Since          time.Time // of the last transition
	Priority       uint8
	Master         netip.Addr // zero while unknown (no advert heard yet)
	MasterPriority uint8
	// MasterInterval is the master's advert interval (ours while master).
	MasterInterval time.Duration
	Transitions    uint64
	Received       uint64            // adverts for our VRID, accepted for the election
	Sent           uint64            // adverts asked for (Output.Send)
	Ignored        map[string]uint64 // by Reason
	// AddrListTaken counts adverts whose address list differs from ours,
	// taken all the same (Config.TakeOtherAddrs).
	AddrListTaken uint64
}

// Machine is one VRRP virtual router: RFC 5798's state machine, driven by
// the caller's clock. It is not safe for concurrent use.
type Machine struct {
	cfg   Config
	state State
	since time.Time
	// preemptAt is when preempt_delay lets this router preempt a master
	// of a lower priority; zero: not counting (it starts at the next
	// advert of a lower priority).
	preemptAt time.Time

	masterInterval time.Duration
	master         netip.Addr
	masterPrio     uint8
	// downAt is the master-down timer (BACKUP), advertAt the advert timer
	// (MASTER); zero when not running.
	downAt, advertAt time.Time
	stopping         bool
	// holdPreempt keeps this router from preempting a running master
	// (SetPreemptHold): the director holds it until its connection table
	// is synced from the peers.
	holdPreempt bool
	// linkDown is set between LinkDown and LinkUp, faultWhy is
	// LinkDown's reason (Start goes to Fault while the link is down).
	linkDown bool
	faultWhy string

	transitions, received, sent uint64
	ignored                     map[string]uint64
	addrs                       [MaxAddrs]netip.Addr // Receive's parse buffer
	// mismatchFrom sent the last advert ignored for its address list,
	// the first mismatchN of addrs (until the next Receive).
	mismatchFrom netip.Addr
	mismatchN    int
	// addrListTaken counts adverts taken with another address list.
	addrListTaken uint64
}

// NewMachine checks cfg; the machine starts in Init.
func NewMachine(cfg Config) (*Machine, error) {
	switch {
	case cfg.VRID == 0:
		return nil, fmt.Errorf("%w: virtual router id 0", ErrBadConfig)
	case cfg.Priority == 0 || cfg.Priority == 255:
		return nil, fmt.Errorf("%w: priority %d, want 1..254", ErrBadConfig, cfg.Priority)
	case cfg.Interval < Centisecond || cfg.Interval > MaxInterval || cfg.Interval%Centisecond != 0:
		return nil, fmt.Errorf("%w: advert interval %v", ErrBadConfig, cfg.Interval)
	case !cfg.Self.Is4() && !(cfg.Self.Is6() && cfg.Self.IsLinkLocalUnicast()):
		return nil, fmt.Errorf("%w: own address %v is neither IPv4 nor IPv6 link-local", ErrBadConfig, cfg.Self)
	case cfg.PreemptDelay < 0:
		return nil, fmt.Errorf("%w: negative preempt delay", ErrBadConfig)
	}
	cfg.Self = cfg.Self.WithZone("")
	if err := checkAddrs(cfg.Self, cfg.Addrs); err != nil {
		return nil, err
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	return &Machine{cfg: cfg, masterInterval: cfg.Interval, ignored: map[string]uint64{}}, nil
}

// State is the current state.
func (m *Machine) State() State { return m.state }

// Advert is the advert to send when an Output says Send: priority 0 once
// Stop was called.
func (m *Machine) Advert() Advert {
	a := Advert{VRID: m.cfg.VRID, Priority: m.cfg.Priority, Interval: m.cfg.Interval, Addrs: m.cfg.Addrs}
	if m.stopping {
		a.Priority = 0
	}
	return a
}

// SetAddrs changes the addresses the adverts carry (a reload changed the
// VIPs), and Config.TakeOtherAddrs (the same file turned from YAML into a
// keepalived.conf, or back); they go out with the next advert.
func (m *Machine) SetAddrs(addrs []netip.Addr, takeOther bool) error {
	if err := checkAddrs(m.cfg.Self, addrs); err != nil {
		return err
	}
	m.cfg.Addrs, m.cfg.TakeOtherAddrs = slices.Clone(addrs), takeOther
	return nil
}

// SetPriority changes this router's priority, as keepalived applies a
// new priority on reload. A master sends an advert with it at once: a
// backup of a higher priority with preempt then stops following it and
// takes over after its master-down interval (lowering a master's
// priority is how an operator hands the VIPs over for maintenance). A
// backup's new priority counts from the next advert it hears: one of a
// lower priority no longer resets its timer, with preempt.
func (m *Machine) SetPriority(now time.Time, p uint8) (Output, error) {
	var out Output
	if p == 0 || p == 255 {
		return out, fmt.Errorf("%w: priority %d, want 1..254", ErrBadConfig, p)
	}
	if p == m.cfg.Priority {
		return out, nil
	}
	m.cfg.Priority = p
	if m.state == Master {
		m.masterPrio = p
		m.advertAt = now.Add(m.cfg.Interval)
		m.send(&out)
	}
	return out, nil
}

// checkAddrs refuses addresses an advert from self cannot carry.
func checkAddrs(self netip.Addr, addrs []netip.Addr) error {
	if len(addrs) > MaxAddrs {
		return fmt.Errorf("%w: %d addresses, at most %d", ErrBadConfig, len(addrs), MaxAddrs)
	}
	for _, a := range addrs {
		if a.Is4() != self.Is4() {
			return fmt.Errorf("%w: address %v in the virtual router of %v: one address family per virtual router", ErrBadConfig, a, self)
		}
	}
	return nil
}

// IPv6 says whether this is an IPv6 virtual router (Self is IPv6).
func (m *Machine) IPv6() bool { return m.cfg.Self.Is6() }

// SetPreemptHold holds preemption back (hold) or lets it go: while held,
// a backup follows a master of lower priority as if preempt were off. It
// does not keep a backup from taking over when no master is heard.
func (m *Machine) SetPreemptHold(hold bool) { m.holdPreempt = hold }

// skew is RFC 5798's Skew_Time for the master's interval.
func (m *Machine) skew() time.Duration {
	return time.Duration(256-int(m.cfg.Priority)) * m.masterInterval / 256
}

// MasterDownInterval is 3 * the master's advert interval + skew.
func (m *Machine) MasterDownInterval() time.Duration { return 3*m.masterInterval + m.skew() }

// Next is when Tick must be called next (zero: no timer runs).
func (m *Machine) Next() time.Time {
	switch m.state {
	case Backup:
		return m.downAt
	case Master:
		return m.advertAt
	}
	return time.Time{}
}

func (m *Machine) become(now time.Time, to State, reason string, out *Output) {
	if m.state == to {
		return
	}
	out.Changed, out.From, out.To, out.Reason = true, m.state, to, reason
	m.state, m.since = to, now
	m.transitions++
	switch to {
	case Master:
		m.downAt = time.Time{}
		m.advertAt = now.Add(m.cfg.Interval)
		m.master, m.masterPrio, m.masterInterval = m.cfg.Self, m.cfg.Priority, m.cfg.Interval
		m.send(out)
	case Backup:
		m.advertAt = time.Time{}
		m.downAt = now.Add(m.MasterDownInterval())
		m.preemptAt = time.Time{} // keepalived: the delay counts from the next lower advert
	case Init, Fault:
		m.advertAt, m.downAt = time.Time{}, time.Time{}
	}
}

func (m *Machine) send(out *Output) {
	out.Send = true
	m.sent++
}

// Start leaves Init for Backup (RFC 5798 6.4.1: only the address owner,
// refused here, starts as master), with the master-down timer running;
// for Fault while the link is down.
func (m *Machine) Start(now time.Time) Output {
	var out Output
	if m.state != Init {
		return out
	}
	m.stopping = false
	if m.linkDown {
		m.become(now, Fault, "start: "+m.faultWhy, &out)
		return out
	}
	m.wait(now, "start", &out)
	return out
}

// wait enters Backup as at start: the master-down timer runs with our own
// interval, and preempt_delay counts from now.
func (m *Machine) wait(now time.Time, why string, out *Output) {
	m.masterInterval = m.cfg.Interval
	m.master, m.masterPrio = netip.Addr{}, 0
	m.become(now, Backup, why+": waiting for a master's advert for the master-down interval ("+m.MasterDownInterval().String()+")", out)
	m.preemptAt = now.Add(m.cfg.PreemptDelay)
}

// LinkDown is the interface losing its carrier or being set down
// (reason says which): a running router leaves for Fault, as keepalived
// does, whatever its state. A master stops answering for the VIPs and
// sends nothing (nothing would arrive); the backups, hearing no advert,
// take over. Before Start, Start goes to Fault.
func (m *Machine) LinkDown(now time.Time, reason string) Output {
	var out Output
	m.linkDown, m.faultWhy = true, reason
	if m.state == Backup || m.state == Master {
		m.become(now, Fault, reason, &out)
	}
	return out
}

// LinkUp is the link back: Fault leaves for Backup as at Start (the
// master-down timer from now, preempt_delay counting again), so a router
// of the highest priority waits to hear the master the others elected
// meanwhile before it preempts, instead of claiming the VIPs at once.
func (m *Machine) LinkUp(now time.Time, reason string) Output {
	var out Output
	m.linkDown, m.faultWhy = false, ""
	if m.state == Fault {
		m.wait(now, reason, &out)
	}
	return out
}

// Stop is the shutdown event: a master sends one advert with priority 0
// so the backups take over after their skew time, not the master-down
// interval; every state goes back to Init.
func (m *Machine) Stop(now time.Time) Output {
	var out Output
	if m.state == Master {
		m.stopping = true
		m.send(&out)
	}
	m.become(now, Init, "stop", &out)
	return out
}

// Tick runs the timer due at now, if any.
func (m *Machine) Tick(now time.Time) Output {
	var out Output
	switch {
	case m.state == Backup && !m.downAt.IsZero() && !now.Before(m.downAt):
		why := "no advert from a master for the master-down interval (" + m.MasterDownInterval().String() + ")"
		if m.master.IsValid() {
			why = fmt.Sprintf("no advert from master %v (priority %d) for the master-down interval (%v)", m.master, m.masterPrio, m.MasterDownInterval())
		}
		m.become(now, Master, why, &out)
	case m.state == Master && !m.advertAt.IsZero() && !now.Before(m.advertAt):
		m.send(&out)
		m.advertAt = now.Add(m.cfg.Interval)
	}
	return out
}

// Receive handles one received packet of the machine's family, header
// included (ParseIPv4, ParseIPv6). Packets that are not a valid advert for
// this virtual router are ignored and counted by reason.
func (m *Machine) Receive(now time.Time, pkt []byte) Output {
	var out Output
	parse := ParseIPv4
	if m.IPv6() {
		parse = ParseIPv6
	}
	p, err := parse(pkt, m.addrs[:0])
	if err == nil && p.VRID != m.cfg.VRID {
		err = ErrVRID
	}
	if err == nil && p.Src == m.cfg.Self {
		return out // our own advert, looped back: not an event
	}
	if err == nil && !m.skipAddrCheck(p.Src) && !sameAddrs(m.cfg.Addrs, p.Addrs) {
		// As keepalived (vrrp_check_packet: addr_list_err, the packet
		// dropped), whatever the state and the priority: a backup
		// hearing only these takes over, a master stays master. Unless
		// the list follows the VIPs (TakeOtherAddrs): counted, taken.
		out.AddrMismatch = true
		m.mismatchFrom, m.mismatchN = p.Src, len(p.Addrs)
		if m.cfg.TakeOtherAddrs {
			if m.state != Init && m.state != Fault { // else not taken at all
				m.addrListTaken++
			}
		} else {
			err = ErrAddrList
		}
	}
	if err != nil {
		m.ignored[Reason(err)]++
		return out
	}
	if m.state == Init || m.state == Fault {
		return out
	}
	m.received++
	a := p.Advert
	switch m.state {
	case Backup:
		if a.Priority == 0 {
			// The master resigned: take over after the skew time.
			m.downAt = now.Add(m.skew())
			return out
		}
		// preempt_delay as keepalived's: an advert of a priority not
		// below ours stops it; the first of a lower one starts it.
		delayed := false
		if m.cfg.PreemptDelay > 0 {
			switch {
			case a.Priority >= m.cfg.Priority:
				m.preemptAt = time.Time{}
			case m.preemptAt.IsZero():
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
				delayed = true
			default:
				delayed = now.Before(m.preemptAt)
			}
		}
		preempt := m.cfg.Preempt && !m.holdPreempt && !delayed
		if !preempt || a.Priority >= m.cfg.Priority {
			if a.Interval > 0 {
				m.masterInterval = a.Interval
			}
			m.master, m.masterPrio = p.Src, a.Priority
			m.downAt = now.Add(m.MasterDownInterval())
		}
		// A lower priority with preemption: discarded, so the
		// master-down timer runs out and this router takes over.
	case Master:
		switch {
		case a.Priority == 0:
			// Another master resigned: make sure the backups hear us.
			m.send(&out)
			m.advertAt = now.Add(m.cfg.Interval)
		case a.Priority > m.cfg.Priority || a.Priority == m.cfg.Priority && p.Src.Compare(m.cfg.Self) > 0:
			if a.Interval > 0 {
				m.masterInterval = a.Interval
			}
			m.master, m.masterPrio = p.Src, a.Priority
			why := fmt.Sprintf("advert from %v with priority %d, above ours (%d)", p.Src, a.Priority, m.cfg.Priority)
			if a.Priority == m.cfg.Priority {
				why = fmt.Sprintf("advert from %v with our priority (%d) and a higher address", p.Src, a.Priority)
			}
			m.become(now, Backup, why, &out)
			m.master, m.masterPrio = p.Src, a.Priority
		default:
			// Another master of a lower priority: it yields on our
			// advert, sent at once (as keepalived does); the VIPs are
			// announced again, for the router may have followed it.
			m.send(&out)
			m.advertAt = now.Add(m.cfg.Interval)
			out.Reassert = fmt.Sprintf("advert from %v with priority %d, below ours (%d): another master", p.Src, a.Priority, m.cfg.Priority)
			if a.Priority == m.cfg.Priority {
				// The tie went to our higher address: "below ours"
				// would misstate it in the log.
				out.Reassert = fmt.Sprintf("advert from %v with our priority (%d) and a lower address: another master", p.Src, a.Priority)
			}
		}
	}
	return out
}

// skipAddrCheck: keepalived's skip_check_adv_addr spares a backup the
// check of its master's adverts.
func (m *Machine) skipAddrCheck(src netip.Addr) bool {
	return m.cfg.SkipCheckAdvAddr && m.state == Backup && m.master.IsValid() && src == m.master
}

// sameAddrs is keepalived's check of an advert's addresses: as many as
// ours, and each of ours among them, in any order (the same order is
// the common case, and costs one pass).
func sameAddrs(ours, theirs []netip.Addr) bool {
	if len(ours) != len(theirs) {
		return false
	}
	i := 0
	for i < len(ours) && ours[i] == theirs[i] {
		i++
	}
	for _, a := range ours[i:] {
		if !slices.Contains(theirs, a) {
			return false
		}
	}
	return true
}

// AddrMismatch is an advert ignored for its address list: who sent it,
// our list and theirs, and what differs.
type AddrMismatch struct {
	From         netip.Addr
	Ours, Theirs []netip.Addr
	// Missing are ours the advert lacks, Unexpected its addresses that
	// are not ours.
	Missing, Unexpected []netip.Addr
}

// LastAddrMismatch describes the packet of the last Receive whose Output
// said AddrMismatch (call it before the next Receive).
func (m *Machine) LastAddrMismatch() AddrMismatch {
	d := AddrMismatch{From: m.mismatchFrom, Ours: slices.Clone(m.cfg.Addrs), Theirs: slices.Clone(m.addrs[:m.mismatchN])}
	for _, a := range d.Ours {
		if !slices.Contains(d.Theirs, a) {
			d.Missing = append(d.Missing, a)
		}
	}
	for _, a := range d.Theirs {
		if !slices.Contains(d.Ours, a) && !slices.Contains(d.Unexpected, a) {
			d.Unexpected = append(d.Unexpected, a)
		}
	}
	return d
}

// Stats returns the counters and where the election stands.
func (m *Machine) Stats() Stats {
	s := Stats{State: m.state, Since: m.since, Priority: m.cfg.Priority, MasterInterval: m.masterInterval,
		Transitions: m.transitions, Received: m.received, Sent: m.sent, Ignored: make(map[string]uint64, len(Reasons)),
		AddrListTaken: m.addrListTaken}
	for _, r := range Reasons {
		s.Ignored[r] = m.ignored[r]
	}
	switch m.state {
	case Master:
		s.Master, s.MasterPriority = m.cfg.Self, m.cfg.Priority
	case Backup:
		s.Master, s.MasterPriority = m.master, m.masterPrio
	}
	return s
}

package arp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Gratuitous writes into out an announcement that vip is at mac and
// returns the frame's length, or 0 if out is too short or vip is not a
// unicast address. For IPv4 it is a gratuitous ARP request, broadcast,
// sender IP = target IP = vip, as keepalived sends it (requests are
// accepted by more stacks than gratuitous replies). For IPv6 it is an
// unsolicited neighbor advertisement from vip to all-nodes (ff02::1) with
// the override flag and a target link-layer option, so neighbors replace
// their cached entry (RFC 4861 7.2.6). The frame carries vlan's tag if it
// is tagged. Gratuitous does not allocate.
func Gratuitous(mac MAC, vip netip.Addr, vlan VLAN, out []byte) int {
	if checkUnicast(vip) != nil {
		return 0
	}
	vip = vip.Unmap()
	if vip.Is4() {
		p := ARPPacket{
			Ethernet:  Ethernet{Dst: broadcast, Src: mac, VLAN: vlan},
			Op:        OpRequest,
			SenderMAC: mac,
			SenderIP:  vip,
			TargetIP:  vip,
		}
		return p.Encode(out)
	}
	p := NDPPacket{
		Ethernet:    Ethernet{Dst: multicastMAC(allNodes), Src: mac, VLAN: vlan},
		Src:         vip,
		Dst:         allNodes,
		HopLimit:    255,
		Type:        TypeNeighborAdvertisement,
		Flags:       FlagOverride,
		Target:      vip,
		TargetLL:    mac,
		HasTargetLL: true,
	}
	return p.Encode(out)
}

// Announcer defaults, as keepalived's (garp_master_repeat 5, 1 s apart).
const (
	DefaultAnnounceCount    = 5
	DefaultAnnounceInterval = time.Second
)

// AnnouncerConfig configures an Announcer.
type AnnouncerConfig struct {
	MAC      MAC
	VLAN     VLAN          // tag of the announcements, if the port sends tagged frames
	Count    int           // announcements per VIP per Announce; default 5
	Interval time.Duration // between two announcements of a VIP; default 1s
	Sender   Sender        // required
	Clock    Clock         // default SystemClock
	// Owned, if set, says whether a VIP is still the director's: one it
	// no longer owns (a reload removed it, HA gave it up) is dropped
	// from the schedule instead of announced. Its remaining
	// announcements would draw the router's traffic back to a director
	// that no longer answers for the VIP, and the router's ARP entry
	// would stay on it after another station announced the VIP.
	Owned func(netip.Addr) bool
}

// Announcer sends Count gratuitous announcements per VIP, Interval apart,
// each time Announce is called (at start, on a configuration change, on a
// conflict, on failover). Tick drives it; Run is a loop around Tick.
type Announcer struct {
	cfg  AnnouncerConfig
	wake chan struct{}

	mu      sync.Mutex
	pending map[netip.Addr]*schedule
	buf     [MaxFrameLen]byte

	sent, errs atomic.Uint64
}

type schedule struct {
	left int
	next time.Time // zero: at the next Tick
}

// NewAnnouncer checks cfg and applies defaults.
func NewAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	if !cfg.MAC.IsUnicast() {
		return nil, fmt.Errorf("%w: announcer MAC %v is not a unicast address", ErrBadConfig, cfg.MAC)
	}
	if cfg.Sender == nil {
		return nil, fmt.Errorf("%w: announcer has no Sender", ErrBadConfig)
	}
	if cfg.Count < 0 || cfg.Interval < 0 {
		return nil, fmt.Errorf("%w: announcer count %d / interval %v is negative", ErrBadConfig, cfg.Count, cfg.Interval)
	}
	if cfg.Count == 0 {
		cfg.Count = DefaultAnnounceCount
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultAnnounceInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	return &Announcer{cfg: cfg, wake: make(chan struct{}, 1), pending: map[netip.Addr]*schedule{}}, nil
}

// Announce (re)starts the schedule of each VIP: Count announcements, the
// first at the next Tick. Invalid addresses are an error and are skipped.
func (a *Announcer) Announce(vips ...netip.Addr) error {
	var errs []error
	a.mu.Lock()
	for _, v := range vips {
		if err := checkUnicast(v); err != nil {
			errs = append(errs, fmt.Errorf("%w: announce %v: %v", ErrBadConfig, v, err))
			continue
		}
		a.pending[v.Unmap()] = &schedule{left: a.cfg.Count}
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return errors.Join(errs...)
}

// Withdraw drops the remaining announcements of each VIP: once it
// returns, none of them is sent (a Tick sending holds the lock Withdraw
// waits for).
func (a *Announcer) Withdraw(vips ...netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, v := range vips {
		delete(a.pending, v.Unmap())
	}
}

// Pending reports how many announcements are still to be sent.
func (a *Announcer) Pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.pending {
		n += s.left
	}
	return n
}

// Sent is the number of announcements sent; Errors the Sender failures.
func (a *Announcer) Sent() uint64   { return a.sent.Load() }
func (a *Announcer) Errors() uint64 { return a.errs.Load() }

// Tick sends every announcement due at now and returns when the next one
// is due (zero when none is pending) and the Sender's errors, if any. A
// failed send still counts as one of the Count: the schedule moves on.
func (a *Announcer) Tick(now time.Time) (next time.Time, err error) {
	var errs []error
	a.mu.Lock()
	defer a.mu.Unlock()
	for vip, s := range a.pending {
		if !s.next.IsZero() && now.Before(s.next) {
			next = earliest(next, s.next)
			continue
		}
		if a.cfg.Owned != nil && !a.cfg.Owned(vip) {
			delete(a.pending, vip)
			continue
		}
		if n := Gratuitous(a.cfg.MAC, vip, a.cfg.VLAN, a.buf[:]); n > 0 {
			if e := a.cfg.Sender.Send(a.buf[:n]); e != nil {
				a.errs.Add(1)
				errs = append(errs, fmt.Errorf("announce %v: %w", vip, e))
			} else {
				a.sent.Add(1)
			}
		}
		s.left--
		if s.left <= 0 {
			delete(a.pending, vip)
			continue
		}
		s.next = now.Add(a.cfg.Interval)
		next = earliest(next, s.next)
	}
	return next, errors.Join(errs...)
}

// Run calls Tick whenever an announcement is due or Announce is called,
// until ctx is done. Send errors are counted (Errors), not fatal: a
// missed announcement is repeated by the next one.
func (a *Announcer) Run(ctx context.Context) error {
	return runTicks(ctx, a.cfg.Clock, a.wake, a.Tick)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

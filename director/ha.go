package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/vrrp"
)

// Gratuitous ARP on becoming master, as keepalived's garp_master_repeat
// (haGARPCount at once) and garp_master_delay (the same again
// haGARPRepeat later, for caches that ignored or missed the first burst).
const (
	haGARPCount  = 5
	haGARPRepeat = 2 * time.Second
)

// haShutdownGrace is how long a director that stops keeps forwarding
// after resigning (priority-0 advert): the backup takes over after its
// skew time (under one advert interval) and moves the router with
// gratuitous ARP; frames the router still sends here meanwhile are
// forwarded, not lost.
const haShutdownGrace = 500 * time.Millisecond

// haRun is the VRRP side of a director with an ha: block: the runner
// electing the master, and what the director does on a transition. Only
// the MASTER answers ARP/NDP for the VIPs; both forward whatever reaches
// them (a router's stale cache), since the director's kernel never holds
// the VIPs anyway.
type haRun struct {
	d      *Director
	cfg    config.HA
	runner *vrrp.Runner
	log    *slog.Logger

	// mu orders transitions against Apply's change of the responder's
	// VIPs; master and gen change under it. gen counts transitions, so a
	// repeat burst scheduled as master is dropped once that is over.
	mu     sync.Mutex
	master atomic.Bool
	gen    atomic.Uint64
	buf    [arp.MaxFrameLen]byte
	// reasserted is when the VIPs were last announced again for another
	// master (UnixNano), so that one that keeps talking costs one burst
	// per haGARPRepeat.
	reasserted atomic.Int64

	// resign ends the election before the director stops (serve).
	resign     chan struct{}
	resignOnce sync.Once
	resigned   chan struct{} // closed when the runner has stopped
}

// ipv4VIPs are the addresses a VRRP (IPv4) advert carries.
func ipv4VIPs(cfg *config.Config) []netip.Addr {
	var out []netip.Addr
	for _, v := range cfg.VIPs() {
		if v.Is4() {
			out = append(out, v)
		}
	}
	return out
}

// newHA builds the VRRP side for cfg.HA on conn, adverts from self.
func newHA(d *Director, cfg *config.Config, conn vrrp.Conn, self netip.Addr) (*haRun, error) {
	h := cfg.HA
	if conn == nil {
		return nil, errors.New("director: ha: needs a VRRP connection (Options.VRRP)")
	}
	if !self.Is4() {
		return nil, fmt.Errorf("director: ha: the interface needs an IPv4 address to send VRRP adverts from (have %v)", self)
	}
	m, err := vrrp.NewMachine(vrrp.Config{VRID: uint8(h.VRID), Priority: uint8(h.Priority), Interval: h.AdvertInterval,
		Preempt: h.Preempt, PreemptDelay: h.PreemptDelay, Self: self, Addrs: ipv4VIPs(cfg)})
	if err != nil {
		return nil, err
	}
	r := &haRun{d: d, cfg: *h, log: d.log, resign: make(chan struct{}), resigned: make(chan struct{})}
	r.runner, err = vrrp.NewRunner(vrrp.RunnerConfig{Machine: m, Conn: conn, Self: self, OnChange: r.changed, OnReassert: r.reassert, Logger: d.log})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ownedVIPs are the VIPs the director answers ARP/NDP for and announces
// now: none while an ha: director is not MASTER, none with bgp:.
func (d *Director) ownedVIPs(cfg *config.Config) []netip.Addr {
	if d.ha != nil && !d.ha.master.Load() {
		return nil
	}
	return arpVIPs(cfg)
}

// setResponderVIPs gives the responder the VIPs the director owns now,
// ordered against HA transitions.
func (d *Director) setResponderVIPs(cfg *config.Config) error {
	if d.ha != nil {
		d.ha.mu.Lock()
		defer d.ha.mu.Unlock()
	}
	return d.responder.SetVIPs(d.ownedVIPs(cfg))
}

// changed is the runner's OnChange: take or give up the VIPs.
func (h *haRun) changed(t vrrp.Transition) {
	h.mu.Lock()
	gen := h.gen.Add(1)
	master := t.To == vrrp.Master
	h.master.Store(master)
	cfg := h.d.cur.Load()
	vips := h.d.ownedVIPs(cfg)
	err := h.d.responder.SetVIPs(vips)
	h.mu.Unlock()
	if err != nil {
		h.log.Error("ha: the ARP responder kept its VIPs", "err", err)
	}
	if !master {
		h.log.Info("ha: not master: no ARP/NDP answers for the VIPs; frames that still reach this director are forwarded",
			"state", t.To.String(), "reason", t.Reason)
		return
	}
	h.burst(gen, vips)
	h.log.Info("ha: master: answering ARP/NDP for the VIPs, gratuitous ARP sent", "vips", vips, "count", haGARPCount,
		"again_in", haGARPRepeat, "reason", t.Reason)
	time.AfterFunc(haGARPRepeat, func() { h.burst(gen, vips) })
}

// reassert is the runner's OnReassert: as master, another master of a
// lower priority was heard (a split brain ends: a link came back up). It
// yields on our advert, but the router may have moved its ARP entry to
// it meanwhile: announce the VIPs again, as on becoming master.
func (h *haRun) reassert(reason string) {
	now := time.Now().UnixNano()
	if last := h.reasserted.Load(); last != 0 && now-last < int64(haGARPRepeat) {
		return
	}
	h.reasserted.Store(now)
	h.mu.Lock()
	gen := h.gen.Load()
	vips := h.d.ownedVIPs(h.d.cur.Load())
	h.mu.Unlock()
	h.burst(gen, vips)
	h.log.Info("ha: master: gratuitous ARP sent again", "vips", vips, "count", haGARPCount, "again_in", haGARPRepeat, "reason", reason)
	time.AfterFunc(haGARPRepeat, func() { h.burst(gen, vips) })
}

// burst sends haGARPCount gratuitous ARP / unsolicited NA per VIP, unless
// a transition happened since gen.
func (h *haRun) burst(gen uint64, vips []netip.Addr) {
	vlan := vlanOf(h.d.cur.Load())
	for range haGARPCount {
		for _, v := range vips {
			h.mu.Lock()
			if h.gen.Load() != gen {
				h.mu.Unlock()
				return
			}
			n := arp.Gratuitous(h.d.mac, v, vlan, h.buf[:])
			var err error
			if n > 0 {
				err = h.d.send(h.buf[:n])
			}
			h.mu.Unlock()
			if err != nil {
				h.log.Warn("ha: gratuitous ARP", "vip", v, "err", err)
			}
		}
	}
}

// vipsAdded announces VIPs a reload added, if this director is master.
func (h *haRun) vipsAdded(cfg *config.Config, added []netip.Addr) {
	if err := h.runner.SetAddrs(ipv4VIPs(cfg)); err != nil {
		h.log.Error("ha: adverts keep the old VIPs", "err", err)
	}
	if len(added) > 0 && h.master.Load() {
		h.burst(h.gen.Load(), added)
	}
}

// defend answers another station's claim on a VIP while master.
func (h *haRun) defend() {
	if h.master.Load() {
		go h.burst(h.gen.Load(), h.d.ownedVIPs(h.d.cur.Load()))
	}
}

// run runs the election until ctx ends or serve resigns (then, if master,
// it sends the priority-0 advert).
func (h *haRun) run(ctx context.Context) {
	defer close(h.resigned)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-h.resign:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := h.runner.Run(ctx); err != nil && ctx.Err() == nil {
		h.log.Error("ha: VRRP stopped: this director no longer answers ARP for the VIPs", "err", err)
	}
}

// serve runs d until ctx ends; then, if master, it resigns first (the
// backup takes over after its skew time) and keeps forwarding for
// haShutdownGrace before stopping d (SIGTERM breaks no flow).
func (h *haRun) serve(ctx context.Context, d *Director) error {
	inner, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-inner.Done():
			return
		case <-ctx.Done():
		}
		wasMaster := h.master.Load()
		h.resignOnce.Do(func() { close(h.resign) })
		select {
		case <-h.resigned:
		case <-inner.Done():
			return
		}
		if wasMaster {
			h.log.Info("ha: resigned (priority 0 sent); forwarding on while the backup takes over", "grace", haShutdownGrace)
			select {
			case <-inner.Done():
			case <-time.After(haShutdownGrace):
			}
		}
		cancel()
	}()
	return d.Serve(inner)
}

// status is the HA side of a Snapshot (nil-safe).
func (h *haRun) status() *control.HAStatus {
	if h == nil {
		return nil
	}
	st := h.runner.Stats()
	return &control.HAStatus{State: st.State.String(), VRID: h.cfg.VRID, Priority: int(st.Priority), Master: st.Master,
		MasterPriority: int(st.MasterPriority), AdvertInterval: st.MasterInterval.Seconds(), Since: st.Since,
		Transitions: st.Transitions, Received: st.Received, Sent: st.Sent, SendErrors: st.SendErrors, Ignored: st.Ignored,
		Sync: h.d.sync.status()}
}

// openHA opens the VRRP socket on the interface for a config with ha:
// (Run; tests pass Options.VRRP themselves).
func openHA(cfg *config.Config, opts *Options) error {
	if cfg.HA == nil || opts.VRRP != nil {
		return nil
	}
	if s := cfg.HA.Sync; s != nil && opts.Sync == nil {
		if err := openSync(s, opts); err != nil {
			return err
		}
	}
	conn, err := vrrp.Open(cfg.Interface, opts.IPv4)
	if err != nil {
		if opts.Sync != nil {
			opts.Sync.Close()
		}
		return fmt.Errorf("director: ha: %w", err)
	}
	opts.VRRP = conn
	return nil
}

// openSync reads the sync key and opens the sync socket on the
// director's IPv4 address (Run).
func openSync(s *config.HASync, opts *Options) error {
	for _, p := range s.Peers {
		if !p.Unmap().Is4() {
			return fmt.Errorf("director: ha.sync.peers: %v: IPv6 peers are not supported yet (sync runs over the director's IPv4 address)", p)
		}
	}
	if !opts.IPv4.IsValid() {
		return errors.New("director: ha.sync: the interface needs an IPv4 address to sync from")
	}
	key, err := ReadSyncKey(s.KeyFile)
	if err != nil {
		return fmt.Errorf("director: %w", err)
	}
	conn, err := connsync.ListenUDP(opts.IPv4)
	if err != nil {
		return fmt.Errorf("director: ha.sync: %w", err)
	}
	opts.Sync, opts.SyncKey = conn, key
	return nil
}

package director

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/internal/monotime"
	"github.com/drlb/drlb/vrrp"
)

// Gratuitous ARP on becoming master, as keepalived's garp_master_repeat
// (haGARPCount at once) and garp_master_delay (the same again
// haGARPRepeat later, for caches that ignored or missed the first burst;
// keepalived's default delay is 5 s, drlb's own is shorter).
const (
	haGARPCount  = 5
	haGARPRepeat = 2 * time.Second
)

// haShutdownGrace is how long, beyond one advert interval, a director
// that stops keeps forwarding after resigning (priority-0 advert): the
// backup takes over after its skew time ((256-priority)/256 of the
// interval it learnt from us: 609 ms for priority 100 at keepalived's
// default 1 s) and then moves the router with gratuitous ARP; frames the
// router still sends here meanwhile are forwarded, not lost.
const haShutdownGrace = 500 * time.Millisecond

// shutdownGrace is how long a resigning master with advert interval
// interval forwards on: the backup's skew time is under one interval.
func shutdownGrace(interval time.Duration) time.Duration { return interval + haShutdownGrace }

// haRun is the VRRP side of a director with an ha: block: the runners
// electing the master, one virtual router per address family of the VIPs
// (keepalived's vrrp_instance per family; they share the VRID, being
// separate protocols), and what the director does on a transition. Only
// the MASTER of a family answers ARP (IPv4) or NDP (IPv6) for that
// family's VIPs; both forward whatever reaches them (a router's stale
// cache), since the director's kernel never holds the VIPs anyway.
type haRun struct {
	d    *Director
	cfg  config.HA
	inst []*haInstance // IPv4 first; at least one
	log  *slog.Logger

	// mu orders transitions against Apply's change of the responder's
	// VIPs; the instances' master and gen change under it.
	mu  sync.Mutex
	buf [arp.MaxFrameLen]byte

	// resign ends the election before the director stops (serve).
	resign     chan struct{}
	resignOnce sync.Once
	resigned   chan struct{} // closed when the runner has stopped
}

// haInstance is one virtual router: the VIPs of one address family.
type haInstance struct {
	v6     bool // IPv6: adverts from the link-local address to ff02::12
	runner *vrrp.Runner
	// role changes under haRun.mu: whether master, and the generation,
	// which counts transitions, so that a repeat burst scheduled as master
	// is dropped once that is over.
	role role
	// reasserted spaces the VIPs announced again for another master, so
	// that one that keeps talking costs one burst per haGARPRepeat.
	reasserted monotime.Limit
}

func (i *haInstance) family() string {
	if i.v6 {
		return "ipv6"
	}
	return "ipv4"
}

// familyVIPs are the VIPs of one family among vips.
func familyVIPs(vips []netip.Addr, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, v := range vips {
		if v.Unmap().Is4() != v6 {
			out = append(out, v.Unmap())
		}
	}
	return out
}

// advertAddrs are the addresses the adverts of cfg's virtual router of
// one family carry: a keepalived.conf's virtual_ipaddress for IPv4
// (config.HA.Addrs: a keepalived peer drops adverts whose list differs
// from its own, whatever VIPs drlb serves), else that family's VIPs. What
// the director answers ARP/NDP for is the VIPs either way (ownedVIPs).
func advertAddrs(cfg *config.Config, v6 bool) []netip.Addr {
	if h := cfg.HA; h != nil && !v6 && len(h.Addrs) > 0 {
		return slices.Clone(h.Addrs)
	}
	return familyVIPs(cfg.VIPs(), v6)
}

// addrsFollowVIPs: the adverts of family v6 carry the VIPs (advertAddrs),
// not a keepalived.conf's virtual_ipaddress, so a reload adding a VIP
// changes the list on one director before the other: an advert with
// another list is taken (vrrp.Config.TakeOtherAddrs), where keepalived's
// check would make both directors MASTER until the second reload.
func addrsFollowVIPs(cfg *config.Config, v6 bool) bool {
	h := cfg.HA
	return h == nil || v6 || len(h.Addrs) == 0
}

// haFamilies are the address families of cfg's VIPs, IPv4 first: one
// virtual router each (IPv4 alone when there is no VIP at all).
func haFamilies(cfg *config.Config) (v4, v6 bool) {
	vips := cfg.VIPs()
	v4 = len(familyVIPs(vips, false)) > 0
	v6 = len(familyVIPs(vips, true)) > 0
	return v4 || !v6, v6
}

// newHA builds the VRRP side for cfg.HA: an IPv4 virtual router on
// opts.VRRP, adverts from opts.IPv4, if there are IPv4 VIPs; an IPv6 one
// on opts.VRRP6, adverts from the link-local opts.IPv6, if there are IPv6
// VIPs.
func newHA(d *Director, cfg *config.Config, opts *Options) (*haRun, error) {
	h := cfg.HA
	r := &haRun{d: d, cfg: *h, log: d.log, resign: make(chan struct{}), resigned: make(chan struct{})}
	v4, v6 := haFamilies(cfg)
	for _, fam := range []struct {
		on   bool
		v6   bool
		conn vrrp.Conn
		self netip.Addr
	}{{v4, false, opts.VRRP, opts.IPv4}, {v6, true, opts.VRRP6, opts.IPv6}} {
		if !fam.on {
			continue
		}
		switch {
		case fam.conn == nil && !fam.v6:
			return nil, errors.New("director: ha: needs a VRRP connection (Options.VRRP)")
		case fam.conn == nil:
			return nil, errors.New("director: ha: IPv6 VIPs need an IPv6 VRRP connection (Options.VRRP6)")
		case !fam.v6 && !fam.self.Is4():
			return nil, fmt.Errorf("director: ha: interface %s needs an IPv4 address to send VRRP adverts for the IPv4 VIPs from (have %v)", cfg.Interface, fam.self)
		case fam.v6 && !(fam.self.Is6() && fam.self.IsLinkLocalUnicast()):
			return nil, fmt.Errorf("director: ha: interface %s needs an IPv6 link-local address to send VRRP adverts for the IPv6 VIPs from (have %v)", cfg.Interface, fam.self)
		}
		m, err := vrrp.NewMachine(vrrp.Config{VRID: uint8(h.VRID), Priority: uint8(h.Priority), Interval: h.AdvertInterval,
			Preempt: h.Preempt, PreemptDelay: h.PreemptDelay, Self: fam.self, Addrs: advertAddrs(cfg, fam.v6),
			SkipCheckAdvAddr: h.SkipCheckAdvAddr, TakeOtherAddrs: addrsFollowVIPs(cfg, fam.v6)})
		if err != nil {
			return nil, err
		}
		inst := &haInstance{v6: fam.v6}
		inst.runner, err = vrrp.NewRunner(vrrp.RunnerConfig{Machine: m, Conn: fam.conn, Self: fam.self,
			OnChange: func(t vrrp.Transition) { r.changed(inst, t) }, OnReassert: func(reason string) { r.reassert(inst, reason) }, Logger: d.log})
		if err != nil {
			return nil, err
		}
		r.inst = append(r.inst, inst)
	}
	return r, nil
}

// instance is the virtual router of v's family (nil if none).
func (h *haRun) instance(v netip.Addr) *haInstance {
	for _, i := range h.inst {
		if i.v6 != v.Unmap().Is4() {
			return i
		}
	}
	return nil
}

// role is a virtual router's role for the director, whether it is master
// and its generation, in one word (gen<<1 | master) so that the two are
// read together without a lock. Read one at a time, a transition between
// the two reads paired BACKUP's generation with MASTER's flag, and a burst
// scheduled with it went out from a backup; read under haRun.mu, the ARP
// conflict callback (defend), which runs on a worker's receive path,
// waited behind the bursts' sends.
type role struct{ v atomic.Uint64 }

// load returns whether the router is master, and its generation.
func (r *role) load() (master bool, gen uint64) {
	v := r.v.Load()
	return v&1 != 0, v >> 1
}

// master says whether the router is master.
func (r *role) master() bool { return r.v.Load()&1 != 0 }

// set records a transition to master or not (a new generation) and
// returns that generation. Transitions are set under haRun.mu.
func (r *role) set(master bool) uint64 {
	gen := r.v.Load()>>1 + 1
	v := gen << 1
	if master {
		v |= 1
	}
	r.v.Store(v)
	return gen
}

// newFamily says which VIP of cfg has no virtual router of its family
// (a reload added the first IPv6 or IPv4 VIP: a restart starts one).
func (h *haRun) newFamily(cfg *config.Config) (netip.Addr, bool) {
	for _, v := range cfg.VIPs() {
		if h.instance(v) == nil {
			return v, true
		}
	}
	return netip.Addr{}, false
}

// setPreemptHold holds every virtual router's preemption (sync's bulk
// copy).
func (h *haRun) setPreemptHold(hold bool) {
	for _, i := range h.inst {
		i.runner.SetPreemptHold(hold)
	}
}

// linkChanged is the interface's link going down or coming back up
// (watchLink): each virtual router leaves for FAULT, or comes back as
// BACKUP and preempts, if it may, after the master-down interval. With
// sync, a director whose link is back copies the table from its peers
// again first, since it missed the updates for the connections the
// others carried meanwhile, and holds preemption until it has (or the
// bulk request times out), as at start.
func (h *haRun) linkChanged(up bool, reason string) {
	if up && h.d.sync != nil {
		h.d.sync.bulkAgain() // holds preemption until the copy is in
	}
	for _, i := range h.inst {
		i.runner.SetLink(up, reason)
	}
}

// ownedVIPs are the VIPs the director answers ARP/NDP for and announces
// now: with ha:, those of the families whose virtual router is MASTER;
// none with bgp:.
func (d *Director) ownedVIPs(cfg *config.Config) []netip.Addr {
	vips := arpVIPs(cfg)
	if d.ha == nil {
		return vips
	}
	var out []netip.Addr
	for _, v := range vips {
		if i := d.ha.instance(v); i != nil && i.role.master() {
			out = append(out, v)
		}
	}
	return out
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

// changed is inst's runner's OnChange: take or give up its family's VIPs.
// The runner has sent the new master's advert already (RFC 5798 6.4.2:
// the advert, then gratuitous ARP), and the burst runs on a goroutine of
// its own after it: its 5 frames per VIP, up to 1275, sent here held the
// runner's lock, and so its next advert and the adverts it hears.
func (h *haRun) changed(inst *haInstance, t vrrp.Transition) {
	h.mu.Lock()
	master := t.To == vrrp.Master
	gen := inst.role.set(master)
	cfg := h.d.cur.Load()
	owned := h.d.ownedVIPs(cfg)
	err := h.d.responder.SetVIPs(owned)
	vips := familyVIPs(owned, inst.v6)
	h.mu.Unlock()
	what := "ARP"
	if inst.v6 {
		what = "NDP"
	}
	if err != nil {
		h.log.Error("ha: the ARP responder kept its VIPs", "family", inst.family(), "err", err)
	}
	if !master {
		h.log.Info("ha: not master: no "+what+" answers for the "+inst.family()+" VIPs; frames that still reach this director are forwarded",
			"family", inst.family(), "state", t.To.String(), "reason", t.Reason)
		return
	}
	go h.burst(inst, gen, vips)
	burst := "gratuitous ARP"
	if inst.v6 {
		burst = "unsolicited NA"
	}
	h.log.Info("ha: master: answering "+what+" for the "+inst.family()+" VIPs, "+burst+" sent", "family", inst.family(), "vips", vips,
		"count", haGARPCount, "again_in", haGARPRepeat, "reason", t.Reason)
	time.AfterFunc(haGARPRepeat, func() { h.burst(inst, gen, vips) })
}

// reassert is the runner's OnReassert: as master, another master of a
// lower priority was heard (a split brain ends: a link came back up). It
// yields on our advert, but the router may have moved its ARP entry to
// it meanwhile: announce the VIPs again, as on becoming master.
func (h *haRun) reassert(inst *haInstance, reason string) {
	if !inst.reasserted.Allow(haGARPRepeat) { // monotonic: a wall clock set back would hold it off that long
		return
	}
	h.mu.Lock()
	_, gen := inst.role.load()
	vips := familyVIPs(h.d.ownedVIPs(h.d.cur.Load()), inst.v6)
	h.mu.Unlock()
	go h.burst(inst, gen, vips) // after the advert the runner sent, off its lock (changed)
	h.log.Info("ha: master: VIPs announced again", "family", inst.family(), "vips", vips, "count", haGARPCount, "again_in", haGARPRepeat, "reason", reason)
	time.AfterFunc(haGARPRepeat, func() { h.burst(inst, gen, vips) })
}

// burst sends haGARPCount gratuitous ARP / unsolicited NA per VIP while
// inst is master in generation gen: a transition since stops it, and so
// does a gen read while inst was not master (a caller that read the flag
// and the generation apart), so that a backup never claims the VIPs.
func (h *haRun) burst(inst *haInstance, gen uint64, vips []netip.Addr) {
	vlan := vlanOf(h.d.cur.Load())
	for range haGARPCount {
		for _, v := range vips {
			h.mu.Lock()
			if master, now := inst.role.load(); now != gen || !master {
				h.mu.Unlock()
				return
			}
			if !h.d.responder.Owns(v) { // a reload removed it meanwhile
				h.mu.Unlock()
				continue
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

// reload follows a reload from old to cfg: the adverts carry the new
// address list from the next one on, and the VIPs it added are announced,
// for the families whose virtual router is master. A new list is applied,
// as keepalived applies its own on a reload, not refused as a restart:
// the VIPs it follows change live, and a restart would not spare the
// peers the mismatch. But a keepalived peer drops every advert whose list
// differs from its virtual_ipaddress, and becomes master too after its
// master-down interval until it reloads the same list: warned. A new
// priority is applied too (Runner.SetPriority), as keepalived does.
func (h *haRun) reload(old, cfg *config.Config, added []netip.Addr) {
	if from, to := old.HA.Priority, cfg.HA.Priority; from != to {
		// As keepalived on reload: a master's next advert (at once)
		// carries it, and a backup of a higher priority with preempt
		// then takes over; the way to hand the VIPs over for maintenance.
		for _, i := range h.inst {
			if err := i.runner.SetPriority(uint8(to)); err != nil {
				h.log.Error("ha: the virtual router keeps its priority", "family", i.family(), "priority", from, "err", err)
				continue
			}
			h.log.Info("ha: priority changed", "family", i.family(), "from", from, "to", to, "state", i.runner.Stats().State.String())
		}
	}
	for _, i := range h.inst {
		from, to := advertAddrs(old, i.v6), advertAddrs(cfg, i.v6)
		// The same file may turn from YAML into a keepalived.conf (or
		// back): whether the list follows the VIPs goes with it.
		takeFrom, takeTo := addrsFollowVIPs(old, i.v6), addrsFollowVIPs(cfg, i.v6)
		if !slices.Equal(from, to) || takeFrom != takeTo {
			if err := i.runner.SetAddrs(to, takeTo); err != nil {
				h.log.Error("ha: adverts keep the old address list", "family", i.family(), "addrs", from, "err", err)
			} else if !slices.Equal(from, to) {
				h.log.Warn("ha: the adverts carry another address list from now on: a keepalived peer, or a drlb peer with a keepalived.conf's virtual_ipaddress, ignores them until its list is the same (reload it too), and meanwhile takes the VIPs as well; a drlb peer whose list follows its VIPs takes them, and logs the difference",
					"family", i.family(), "from", from, "to", to)
			}
		}
		if add := familyVIPs(added, i.v6); len(add) > 0 {
			if master, gen := i.role.load(); master {
				h.burst(i, gen, add)
				// Again later, as for a new master (changed): for caches
				// that ignored or missed the first burst. The burst stops
				// if this router is no longer master, or skips a VIP
				// removed since.
				time.AfterFunc(haGARPRepeat, func() { h.burst(i, gen, add) })
			}
		}
	}
}

// defend answers another station's claim on a VIP while master, once
// one advert interval later: a peer taking the VIPs over (preempting us)
// may send its gratuitous ARP just before its first advert (drlb did
// before its runner sent the advert first, and the two travel apart), and
// answering at once moved the router back to this director as it
// became BACKUP. If the claim was such a takeover, this router is no
// longer master then, and nothing is sent but a line in the log; if it
// still is (a real server answering ARP, a stray host), the VIPs are
// announced again and the claim is warned about. Only the virtual router
// of the claimed VIP's family is concerned: the two families move
// independently, and a peer taking the IPv4 VIPs over is no claim on the
// IPv6 ones this director still holds.
func (h *haRun) defend(c arp.Conflict) {
	i := h.instance(c.VIP)
	if i == nil {
		return
	}
	master, gen := i.role.load()
	if !master {
		return
	}
	owned := h.d.ownedVIPs(h.d.cur.Load())
	time.AfterFunc(h.cfg.AdvertInterval, func() {
		if master, now := i.role.load(); !master || now != gen {
			h.log.Info("ha: a peer took the VIPs over (its gratuitous ARP came before its advert)", "family", i.family(), "conflict", fmt.Sprintf("%+v", c))
			return
		}
		h.log.Warn(conflictWarning, "family", i.family(), "conflict", fmt.Sprintf("%+v", c))
		h.burst(i, gen, familyVIPs(owned, i.v6))
	})
}

// isMaster says whether any virtual router is master.
func (h *haRun) isMaster() bool {
	for _, i := range h.inst {
		if i.role.master() {
			return true
		}
	}
	return false
}

// run runs the elections until ctx ends or serve resigns (then each
// master sends its priority-0 advert).
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
	var wg sync.WaitGroup
	for _, i := range h.inst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := i.runner.Run(ctx); err != nil && ctx.Err() == nil {
				h.log.Error("ha: VRRP stopped: this director no longer answers ARP/NDP for the "+i.family()+" VIPs",
					"family", i.family(), "err", err)
			}
		}()
	}
	wg.Wait()
}

// serve runs d until ctx ends; then, if master, it resigns first (the
// backup takes over after its skew time) and keeps forwarding for one
// advert interval and haShutdownGrace before stopping d (SIGTERM breaks
// no flow).
func (h *haRun) serve(ctx context.Context, d *Director) error {
	return serveHandingOver(ctx, d, func(running context.Context) time.Duration {
		wasMaster := h.isMaster()
		h.resignOnce.Do(func() { close(h.resign) })
		select {
		case <-h.resigned:
		case <-running.Done():
			return 0
		}
		if !wasMaster {
			return 0
		}
		grace := shutdownGrace(h.cfg.AdvertInterval)
		h.log.Info("ha: resigned (priority 0 sent); forwarding on while the backup takes over", "grace", grace)
		return grace
	})
}

// status is the HA side of a Snapshot (nil-safe): the first virtual
// router, with sync, and the IPv6 one when there are two.
func (h *haRun) status() (first, v6 *control.HAStatus) {
	if h == nil {
		return nil, nil
	}
	out := make([]*control.HAStatus, len(h.inst))
	for n, i := range h.inst {
		st := i.runner.Stats()
		out[n] = &control.HAStatus{Family: i.family(), State: st.State.String(), VRID: h.cfg.VRID, Priority: int(st.Priority), Master: st.Master,
			MasterPriority: int(st.MasterPriority), AdvertInterval: st.MasterInterval.Seconds(), Since: st.Since,
			Transitions: st.Transitions, Received: st.Received, Sent: st.Sent, SendErrors: st.SendErrors, Ignored: st.Ignored,
			AddrListTaken: st.AddrListTaken}
	}
	out[0].Sync = h.d.sync.status()
	if len(out) > 1 {
		v6 = out[1]
	}
	return out[0], v6
}

// openHA opens the VRRP sockets on the interface for a config with ha:,
// one per address family of the VIPs (Run; tests pass Options.VRRP and
// VRRP6 themselves).
func openHA(cfg *config.Config, opts *Options) error {
	if cfg.HA == nil || opts.VRRP != nil || opts.VRRP6 != nil {
		return nil
	}
	if s := cfg.HA.Sync; s != nil && opts.Sync == nil {
		if err := openSync(cfg.Interface, s, opts); err != nil {
			return err
		}
	}
	fail := func(err error) error {
		for _, c := range []io.Closer{opts.Sync, opts.VRRP, opts.VRRP6} {
			if c != nil {
				c.Close()
			}
		}
		return fmt.Errorf("director: ha: %w", err)
	}
	v4, v6 := haFamilies(cfg)
	if v4 {
		conn, err := vrrp.Open(cfg.Interface, opts.IPv4)
		if err != nil {
			return fail(err)
		}
		opts.VRRP = conn
	}
	if v6 {
		if !opts.IPv6.IsValid() {
			return fail(fmt.Errorf("%s has no IPv6 link-local address to send the IPv6 VIPs' adverts from", cfg.Interface))
		}
		conn, err := vrrp.Open(cfg.Interface, opts.IPv6)
		if err != nil {
			return fail(err)
		}
		opts.VRRP6 = conn
	}
	return nil
}

// openSync reads the sync key and opens the sync socket on the
// director's IPv4 address (Run).
func openSync(ifname string, s *config.HASync, opts *Options) error {
	for _, p := range s.Peers {
		if !p.Unmap().Is4() {
			return fmt.Errorf("director: ha.sync.peers: %v: IPv6 peers are not supported yet (sync runs over the director's IPv4 address)", p)
		}
	}
	if !opts.IPv4.IsValid() {
		return fmt.Errorf("director: ha.sync: interface %s needs an IPv4 address to sync from", ifname)
	}
	key, err := ReadSyncKey(s.KeyFile)
	if err != nil {
		return fmt.Errorf("director: %w", err)
	}
	// The peers know this director by the address ha.sync.peers lists
	// for it (they drop what comes from any other: unknown_peer), which
	// need not be the interface's first (a management address added
	// first): that one, if the interface holds it.
	self := opts.IPv4
	for _, a := range interfaceIPv4(ifname) {
		if slices.ContainsFunc(s.Peers, func(p netip.Addr) bool { return p.Unmap() == a }) {
			self = a
			break
		}
	}
	conn, err := connsync.ListenUDP(self)
	if err != nil {
		return fmt.Errorf("director: ha.sync: %w", err)
	}
	opts.Sync, opts.SyncKey, opts.SyncAddr = conn, key, self
	return nil
}

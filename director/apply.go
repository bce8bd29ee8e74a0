package director

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/health"
	"github.com/drlb/drlb/link"
	"golang.org/x/net/bpf"
)

// ErrRestartNeeded is returned by Apply for a change it cannot make live:
// another interface, or another max_conns (the connection table is sized
// at start). Nothing is applied then. The message names the setting, its
// values and its line in the file being loaded (" (line N)", none for a
// setting the file does not set).
var ErrRestartNeeded = errors.New("director: change needs a restart")

// ErrVIPOnHost is returned by Apply for a VIP it would add that an
// interface of the director's host holds: start-up refuses the same.
var ErrVIPOnHost = errors.New("director: an interface of this host holds the VIP")

// ErrInterfaceGone is Serve's error when the director's interface was
// deleted: its sockets and XDP program were bound to that interface (by
// index), and one created again under the same name is another.
var ErrInterfaceGone = errors.New("director: interface deleted")

// Config returns a deep copy of the configuration the director runs now.
func (d *Director) Config() *config.Config { return d.cur.Load().Clone() }

// Apply makes cfg the running configuration, structural changes included:
// services and real servers added or removed, schedulers, weights,
// persistence, drain and connection timeouts, health checks. It validates
// cfg whole first (errors wrap config.ErrInvalid; an interface or
// max_conns change wraps ErrRestartNeeded) and either applies everything
// or nothing. An empty cfg.Interface keeps the running one (ipvsadm rules
// name none). It is safe to call from any goroutine; Applies are
// serialised.
//
// What stays keeps going (see forwarder.Apply): connections to a real
// server that remains (same protocol, VIP, port and address) continue
// whatever moves around it; a removed server's connections end on their
// next packet, which is answered with a TCP reset; weight 0 drains, for
// at most the service's drain_timeout. The data path keeps forwarding
// while the new configuration is prepared: the loop's lock is held only
// for the swap, which does no work per connection.
//
// Before the swap the kernel side admits the new VIPs as well as the
// old ones (every worker's socket filter and XDP VIP map, Run's blackhole
// routes and tc drop); a step the kernel refuses refuses the change,
// with what was widened put back. After it the neighbor layer follows:
// the ARP/NDP responder answers for the new VIPs, the kernel side lets
// the removed ones go, new VIPs are announced with gratuitous ARP, real
// servers added are resolved and removed ones forgotten; health checks
// start for new servers, stop for removed ones and keep their state for
// the others. Every change is logged.
func (d *Director) Apply(cfg *config.Config) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	return d.reloadLocked(cfg)
}

// Reload applies what load returns, as Apply does, with load called
// inside Apply's critical section: of two reloads (SIGHUP, drlb ctl
// --reload) the one that read the file last is applied last, so a file
// read before another reload was applied never replaces it. load's error
// is returned as is (a file's file:line:column), and nothing is applied
// then.
func (d *Director) Reload(load func() (*config.Config, error)) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if load == nil {
		return fmt.Errorf("%w: Reload with nothing to load (nil)", ErrBadOptions)
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	return d.reloadLocked(cfg)
}

// reloadLocked is Apply with d.applyMu held: a whole configuration, whose
// sync key file must hold the key in use.
func (d *Director) reloadLocked(cfg *config.Config) error {
	if err := d.sameSyncKey(cfg); err != nil {
		return err
	}
	return d.apply(cfg)
}

// sameSyncKey refuses a reload whose sync key file holds another key than
// the one in use: the key is read at start, and a rotated file reloaded
// as "applied" kept the old key until a restart of one director made the
// other reject all it sent. Reloads only (Apply): a drlb ctl change
// (Edit) does not read the file again, which may be gone or hold the
// next key already.
func (d *Director) sameSyncKey(cfg *config.Config) error {
	if d.sync == nil || cfg == nil || cfg.HA == nil || cfg.HA.Sync == nil || cfg.HA.Sync.KeyFile == "" {
		return nil
	}
	key, err := ReadSyncKey(cfg.HA.Sync.KeyFile)
	if err != nil {
		return fmt.Errorf("director: %w", err)
	}
	if !bytes.Equal(key, d.sync.key) {
		return fmt.Errorf("%w: ha.sync.key_file %s%s holds another key than the one in use (a new key is taken at start: restart both directors)", ErrRestartNeeded, cfg.HA.Sync.KeyFile,
			cfg.NoteOf("ha.sync.key_file"))
	}
	return nil
}

// Edit applies what edit makes of a copy of the running configuration, as
// Apply does, with no other Apply between the read and the apply: a
// `drlb ctl` change made on the configuration a concurrent reload is
// replacing would undo the reload. edit's error is returned as is, and
// nothing is applied then.
func (d *Director) Edit(edit func(*config.Config) (*config.Config, error)) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	cfg, err := edit(d.cur.Load().Clone())
	if err != nil {
		return err
	}
	return d.apply(cfg)
}

// apply is Apply with d.applyMu held.
func (d *Director) apply(cfg *config.Config) error {
	old := d.cur.Load()
	if cfg == nil {
		return fmt.Errorf("%w: Apply of no configuration (nil)", ErrBadOptions)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.Clone()
	if cfg.Interface == "" {
		cfg.Interface = old.Interface
	}
	hash := FanoutHash(cfg)
	// Settings, not where their blocks sit in the file: a comment added
	// above a block must not make a reload need a restart.
	// A new ha.priority is applied live, as keepalived applies one on
	// reload (haRun.reload): it is left out of what needs a restart.
	bgpChange, haChange := config.BGPChanged(old.BGP, cfg.BGP), config.HAChanged(old.HA, withPriorityOf(cfg.HA, old.HA))
	// Each refusal places the setting in the file being loaded, as the
	// other reload errors do (refuseHeldVIPs): " (line N)", or nothing
	// for a setting the file does not set (a default, a removed block).
	at := cfg.NoteOf
	switch {
	case old.Interface != "" && cfg.Interface != old.Interface: // "": an in-memory port, any name will do
		return fmt.Errorf("%w: interface %s -> %s%s", ErrRestartNeeded, old.Interface, cfg.Interface, at("interface"))
	case cfg.MaxConns != old.MaxConns:
		return fmt.Errorf("%w: max_conns %d -> %d%s (the connection table is sized at start)", ErrRestartNeeded, old.MaxConns, cfg.MaxConns, at("max_conns"))
	case bgpChange == "bgp":
		return fmt.Errorf("%w: the bgp: block was added or removed%s", ErrRestartNeeded, at("bgp"))
	case bgpChange != "":
		// The speaker's sessions are set up at start; VIPs added or
		// removed in the services are announced or withdrawn live.
		return fmt.Errorf("%w: bgp.%s changed%s (the BGP sessions are set up at start)", ErrRestartNeeded, bgpChange,
			config.LineNote(bgpLine(old.BGP, cfg, bgpChange)))
	case haChange == "ha" || haChange != "" && d.ha == nil:
		return fmt.Errorf("%w: the ha: block was added or removed%s", ErrRestartNeeded, at("ha"))
	case haChange != "":
		return fmt.Errorf("%w: ha.%s %s -> %s%s (VRRP and sync are set up at start)", ErrRestartNeeded, haChange,
			haSetting(old.HA, haChange), haSetting(cfg.HA, haChange), config.LineNote(haLine(old.HA, cfg, haChange)))
	case d.ha != nil && haNewFamily(d.ha, cfg):
		v, _ := d.ha.newFamily(cfg)
		return fmt.Errorf("%w: VIP %v%s is the first of its address family: its VRRP virtual router starts with the director", ErrRestartNeeded, v,
			config.LineNote(serviceLine(cfg, func(s config.Service) bool { return s.VIP == v })))
	case old.VLAN != cfg.VLAN:
		return fmt.Errorf("%w: vlan %d -> %d%s (the neighbor layer tags its frames from the start)", ErrRestartNeeded, old.VLAN, cfg.VLAN, at("vlan"))
	case len(d.workers) > 1 && hash != d.hash:
		return fmt.Errorf("%w: the widest persistence netmask changes from /%d (IPv4) /%d (IPv6) to /%d /%d%s: the %d workers share clients by it (run with -workers 1 to change it live)",
			ErrRestartNeeded, bitsOr(d.hash.Bits4, 32), bitsOr(d.hash.Bits6, 128), bitsOr(hash.Bits4, 32), bitsOr(hash.Bits6, 128),
			config.LineNote(widestLine(cfg, d.hash, hash)), len(d.workers))
	}
	// Everything that can fail is done before the swap.
	targets, err := health.Targets(cfg)
	if err != nil {
		return err
	}
	// The kernel side admits old and new VIPs from here until after the
	// swap (widenVIPs); a refusal refuses the change.
	oldVIPs, vips := old.VIPs(), cfg.VIPs()
	added, removed := diffAddrs(oldVIPs, vips)
	if err := d.refuseHeldVIPs(cfg, added); err != nil {
		return err
	}
	if err := d.fitsVIPMaps(vips); err != nil {
		return err
	}
	filters, err := d.vipFilters(oldVIPs, vips, added, removed)
	if err != nil {
		return err
	}
	unwiden, err := d.widenVIPs(oldVIPs, added, filters)
	if err != nil {
		return err
	}

	start := time.Now()
	var held time.Duration
	changes, err := d.fw.Apply(cfg, d.clock().UnixNano(), func(swap func()) {
		unlock := d.lockWorkers()
		t := time.Now()
		swap()
		d.cur.Store(cfg)
		if n, ok := d.trace.(interface{ SetConfig(*config.Config) }); ok {
			n.SetConfig(cfg) // results of the next batch are in cfg's indexes
		}
		held = time.Since(t)
		unlock()
	})
	if err != nil { // refused before the swap: the old VIPs alone again
		if uerr := unwiden(); uerr != nil {
			return fmt.Errorf("%w; and putting the kernel's old VIP set back: %v", err, uerr)
		}
		return err
	}
	d.swapHeld.Store(int64(held))

	if len(removed) > 0 && d.vipReport != nil {
		// Withdraw a removed VIP now, not at the next report: its
		// blackhole route goes next (narrowVIPs), and a forwarding kernel
		// would route what the router still sends back to the router
		// meanwhile.
		d.reportNow(d.vipReport)
	}
	if err := d.setResponderVIPs(cfg); err != nil {
		d.log.Error("apply: ARP responder keeps the old VIPs", "err", err)
	}
	// A VIP removed while still being announced (added by the reload
	// before, or defended after a conflict) is announced no more from
	// here: another director may be taking it over.
	d.announcer.Withdraw(removed...)
	d.narrowVIPs(vips, removed, filters)
	d.followNeighbors(old, cfg)
	started, stopped := d.monitor.Update(targets)
	if d.ha != nil {
		d.ha.reload(old, cfg, added) // announced only by the master
	} else if len(added) > 0 && cfg.BGP == nil { // routed VIPs are announced by BGP, not ARP
		if err := d.announcer.Announce(added...); err != nil {
			d.log.Error("apply: announcing new VIPs", "err", err)
		}
	}

	for _, c := range changes {
		switch c.Kind {
		case forwarder.WeightChanged:
			args := []any{"service", c.Service, "real", c.Real, "from", c.From, "to", c.To}
			if c.To == 0 {
				args = append(args, "note", "draining: no new connections, open ones continue")
			}
			d.log.Info("weight changed", args...)
		case forwarder.RealAdded:
			d.log.Info("real server added", "service", c.Service, "real", c.Real, "weight", c.To)
		case forwarder.RealRemoved:
			d.log.Info("real server removed: its connections end on their next packet", "service", c.Service, "real", c.Real)
		case forwarder.ServiceRemoved:
			d.log.Info("service removed: its connections end", "service", c.Service)
		default:
			d.log.Info(c.Kind.String(), "service", c.Service, "detail", c.Detail)
		}
	}
	d.log.Info("configuration applied", "changes", len(changes), "vips_added", len(added), "vips_removed", len(removed),
		"checks_started", started, "checks_stopped", stopped, "took", time.Since(start).Round(time.Microsecond),
		"data_path_paused", held.Round(time.Microsecond))
	return nil
}

// vipFollower is what Run put in the kernel per VIP (blackhole routes, the
// tc drop of the kernel's copy: kernelVIPs, run_linux.go), following the
// VIPs an Apply adds and removes in two steps around the swap. Apply
// calls it with applyMu held, never the data path.
type vipFollower interface {
	// widen, before the swap, gives the added VIPs what the running ones
	// have (the removed ones keep theirs). On an error it has put back
	// what it changed, and the change is refused; undo puts everything
	// back when a later step refuses it.
	widen(added []netip.Addr) (undo func() error, err error)
	// narrow, after the swap and the BGP withdraw, takes away what the
	// removed VIPs had. It logs its errors (see narrowVIPs).
	narrow(removed []netip.Addr)
}

// vipFilters are the socket filters an Apply that changes the VIP set
// goes through: the running set's (an undo puts it back), the union of
// the old and new sets (while both are admitted) and the new set's. nil:
// the set does not change, or no port takes a filter.
type vipFilters struct{ old, wide, next []bpf.RawInstruction }

// vipFilters builds them, before anything changes: a set the filter
// cannot hold refuses the change.
func (d *Director) vipFilters(oldVIPs, vips, added, removed []netip.Addr) (*vipFilters, error) {
	if len(added) == 0 && len(removed) == 0 || !slices.ContainsFunc(d.workers, func(w *worker) bool {
		_, ok := w.port.(link.FilterSetter)
		return ok
	}) {
		return nil, nil
	}
	var f vipFilters
	var err error
	if f.next, err = link.VIPFilter(vips); err != nil {
		return nil, err
	}
	if f.old, err = link.VIPFilter(oldVIPs); err != nil {
		return nil, err
	}
	if f.wide, err = link.VIPFilter(append(slices.Clone(oldVIPs), added...)); err != nil {
		return nil, fmt.Errorf("%w (the old and the new VIPs, %d in all, are admitted together while the change is made: remove the old ones in a change of their own first)", err, len(oldVIPs)+len(added))
	}
	return &f, nil
}

// widenVIPs, before the swap, makes the kernel side admit the added VIPs
// as well as the running ones: every worker's XDP VIP map and socket
// filter, then d.vipFollow (Run's blackhole routes and tc drop). From the
// swap on, every worker reads the new VIPs' frames and a forwarding
// kernel drops its copy: a worker left with the old filter, or a new VIP
// answered by ARP whose frames never reach drlb, or one without its
// blackhole route (start-up refuses that: blackholeVIPs), would be a
// change half made. So any refusal refuses the whole change: what was
// widened is put back and the error names the step. undo puts everything
// back (the forwarder refused the swap).
func (d *Director) widenVIPs(oldVIPs, added []netip.Addr, f *vipFilters) (undo func() error, err error) {
	var undos []func() error
	undo = func() error {
		var errs []error
		for i := len(undos) - 1; i >= 0; i-- {
			errs = append(errs, undos[i]())
		}
		return errors.Join(errs...)
	}
	if len(added) == 0 {
		return undo, nil // the running set admits every VIP of the new one
	}
	refuse := func(err error) error {
		if uerr := undo(); uerr != nil {
			d.log.Error("apply refused, and the kernel's old VIP set is not wholly back", "err", err, "undo", uerr)
			return fmt.Errorf("%w; and putting the old VIP set back: %v", err, uerr)
		}
		return err
	}
	wide := append(slices.Clone(oldVIPs), added...)
	// An XDP VIP map that cannot hold the old and the new VIPs together
	// (link.MaxXDPVIPs of a family: 600 VIPs replaced by 600 others)
	// changes after the swap instead (narrowVIPs: the removed ones out
	// first, then the new ones in). Meanwhile the XDP program passes the
	// new VIPs' frames, and drlb reads them on the AF_PACKET socket
	// beside it, whose filter is widened: slower, not lost. A new set
	// that does not fit on its own was refused before (fitsVIPMaps).
	mapsWiden := fitsXDPMap(wide)
	if !mapsWiden && slices.ContainsFunc(d.workers, func(w *worker) bool { _, ok := w.port.(link.VIPSetter); return ok }) {
		d.log.Info("apply: the XDP VIP maps cannot hold the old and the new VIPs together; they change after the swap, and meanwhile the new VIPs' frames reach drlb through AF_PACKET", "max", link.MaxXDPVIPs)
	}
	for i, w := range d.workers {
		// Each undo is registered before its step: a step refused half
		// way (a split port's sockets, a map's entries) is put back too.
		if vs, ok := w.port.(link.VIPSetter); ok && mapsWiden {
			undos = append(undos, func() error {
				if err := vs.SetVIPs(oldVIPs); err != nil {
					return fmt.Errorf("worker %d's XDP VIP map: %w", i, err)
				}
				return nil
			})
			if err := vs.SetVIPs(wide); err != nil {
				return nil, refuse(fmt.Errorf("director: worker %d's XDP VIP map refused the new VIPs %v: %w", i, added, err))
			}
		}
		if fs, ok := w.port.(link.FilterSetter); ok && f != nil {
			undos = append(undos, func() error {
				if err := fs.SetFilter(f.old); err != nil {
					return fmt.Errorf("worker %d's socket filter: %w", i, err)
				}
				return nil
			})
			if err := fs.SetFilter(f.wide); err != nil {
				return nil, refuse(fmt.Errorf("director: worker %d's socket filter refused the new VIPs %v: %w", i, added, err))
			}
		}
	}
	if d.vipFollow != nil {
		u, err := d.vipFollow.widen(added)
		if err != nil {
			return nil, refuse(err)
		}
		undos = append(undos, u)
	}
	return undo, nil
}

// refuseHeldVIPs refuses added VIPs that an interface of the director's
// host holds (d.vipsHeld), naming the first service of each: start-up
// refuses them (doctor's "VIP not on the director"), and one added by a
// reload would have the kernel answer its ARP and its traffic beside
// drlb, resetting connections drlb forwards.
func (d *Director) refuseHeldVIPs(cfg *config.Config, added []netip.Addr) error {
	if d.vipsHeld == nil || len(added) == 0 {
		return nil
	}
	held, err := d.vipsHeld(added)
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range added {
		if err := held[v]; err != nil {
			i := slices.IndexFunc(cfg.Services, func(s config.Service) bool { return s.VIP == v })
			where := "VIP " + v.String()
			if i >= 0 {
				where = fmt.Sprintf("services[%d].vip %s%s", i, v, config.LineNote(cfg.Services[i].Line))
			}
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	return errors.Join(errs...)
}

// fitsVIPMaps refuses a VIP set that a worker's XDP VIP map cannot hold
// on its own (link.MaxXDPVIPs of a family), as OpenXDP refuses it at
// start. Accepted, it was swapped in with the maps left as they were (none
// of the VIPs removed, so narrowVIPs never ran) or half changed (the
// narrowing refused and only logged): the maps kept removed VIPs and
// lacked new ones, and the reload said applied.
func (d *Director) fitsVIPMaps(vips []netip.Addr) error {
	if fitsXDPMap(vips) || !slices.ContainsFunc(d.workers, func(w *worker) bool { _, ok := w.port.(link.VIPSetter); return ok }) {
		return nil
	}
	n4 := 0
	for _, v := range vips {
		if v.Unmap().Is4() {
			n4++
		}
	}
	return fmt.Errorf("director: services: %d IPv4 and %d IPv6 VIPs: an XDP VIP map holds at most %d of a family (split them over directors, or run with -io afpacket)",
		n4, len(vips)-n4, link.MaxXDPVIPs)
}

// fitsXDPMap reports whether vips fit a kernel-side VIP map: at most
// link.MaxXDPVIPs of each family.
func fitsXDPMap(vips []netip.Addr) bool {
	n4 := 0
	for _, v := range vips {
		if v.Unmap().Is4() {
			n4++
		}
	}
	return n4 <= link.MaxXDPVIPs && len(vips)-n4 <= link.MaxXDPVIPs
}

// narrowVIPs, after the swap and the BGP withdraw (a removed VIP's
// blackhole route must outlast what the router still sends), takes the
// removed VIPs out of the kernel side: d.vipFollow's blackhole routes and
// tc drop, then every worker's socket filter and XDP VIP map. Its errors
// are logged, not returned: the swap is made, and a kernel side wider
// than the configuration is harmless. Frames of a removed VIP that still
// reach drlb are passed as not-VIP (forwarder.ReasonNotVIP) like any frame
// for no service, and the kernel goes on dropping its copy; what a failed
// step costs is a blackhole route to remove by hand (logged with the
// command) or a filter that admits a few frames more.
func (d *Director) narrowVIPs(vips, removed []netip.Addr, f *vipFilters) {
	if len(removed) == 0 {
		return // widenVIPs set the new set already
	}
	if d.vipFollow != nil {
		d.vipFollow.narrow(removed)
	}
	for i, w := range d.workers {
		if vs, ok := w.port.(link.VIPSetter); ok {
			if err := vs.SetVIPs(vips); err != nil {
				d.log.Warn("apply: the XDP VIP map keeps the removed VIPs: their frames still reach drlb, which passes them as not-VIP", "worker", i, "removed", removed, "err", err)
			}
		}
		if fs, ok := w.port.(link.FilterSetter); ok && f != nil {
			if err := fs.SetFilter(f.next); err != nil {
				d.log.Warn("apply: the socket filter still admits the removed VIPs: their frames still reach drlb, which passes them as not-VIP", "worker", i, "removed", removed, "err", err)
			}
		}
	}
}

// ZeroCounters zeroes the connection, packet and byte totals of every
// service and real server as the listings show them, as ipvsadm -Z does;
// the /metrics counters stay monotonic, as Prometheus requires, and the
// active and inactive counts (what the connection table holds) stay.
func (d *Director) ZeroCounters() { d.fw.ZeroCounters() }

// ZeroService zeroes one service's counters and its real servers'
// (ipvsadm -Z -t|-u VIP:PORT); false if there is no such service.
func (d *Director) ZeroService(proto config.Protocol, vip netip.AddrPort) bool {
	return d.fw.ZeroService(proto, vip)
}

// followNeighbors makes the resolver want exactly cfg's real servers:
// new ones resolved (or installed, with a static MAC), removed ones
// forgotten, a MAC that became static or dynamic switched over.
func (d *Director) followNeighbors(old, cfg *config.Config) {
	before, after := neighborsOf(old), neighborsOf(cfg)
	for addr := range before {
		if _, ok := after[addr]; !ok {
			d.resolver.Forget(addr)
		}
	}
	for addr, mac := range after {
		was, had := before[addr]
		switch {
		case had && (was == nil) == (mac == nil) && (was == nil || *was == *mac):
			continue
		case mac != nil:
			if err := d.resolver.Static(addr, *mac); err != nil {
				d.log.Error("apply: static neighbor", "addr", addr, "err", err)
			}
			// Every server at addr, not only those the config gives the
			// MAC (the swap stored it in those): the neighbor entry is one
			// per address, and a static one raises no event, so another
			// service's server at addr kept the MAC it had resolved (sent
			// to it for good, never checked again) or never got one.
			_ = d.fw.SetMAC(addr, net.HardwareAddr(mac[:]))
			continue
		case had && was != nil:
			d.resolver.Forget(addr) // static before: ask for it now
		}
		if err := d.resolver.Want(addr); err != nil {
			d.log.Error("apply: resolving", "addr", addr, "err", err)
		}
		// An address resolved before (another service's server) is known
		// already: the resolver announces nothing for it.
		if m, ok := d.resolver.Lookup(addr); ok {
			_ = d.fw.SetMAC(addr, net.HardwareAddr(m[:]))
		}
	}
}

// neighborsOf maps each real (and sorry) server address of cfg to its
// static MAC, or nil for one resolved by ARP/NDP.
func neighborsOf(cfg *config.Config) map[netip.Addr]*arp.MAC {
	out := map[netip.Addr]*arp.MAC{}
	add := func(addr netip.Addr, hw net.HardwareAddr) {
		a := addr.Unmap()
		if hw != nil {
			m, _ := arp.MACFrom(hw)
			out[a] = &m
		} else if _, ok := out[a]; !ok {
			out[a] = nil
		}
	}
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			add(r.Address, r.MAC)
		}
		if ss := s.SorryServer; ss != nil {
			add(ss.Address, ss.MAC) // resolved like a real server
		}
	}
	return out
}

// diffAddrs returns what next has that prev has not, and the reverse.
func diffAddrs(prev, next []netip.Addr) (added, removed []netip.Addr) {
	for _, a := range next {
		if !slices.Contains(prev, a) {
			added = append(added, a)
		}
	}
	for _, a := range prev {
		if !slices.Contains(next, a) {
			removed = append(removed, a)
		}
	}
	return added, removed
}

// healthMarker applies verdicts to the forwarder by identity: a check
// keeps marking the right server however a reload moves the others, and
// a verdict of a check a reload replaced is ignored.
type healthMarker struct{ fw *forwarder.Forwarder }

func (m healthMarker) Mark(t health.Target, up bool) error {
	err := m.fw.SetHealth(forwarder.RealID{Protocol: t.Protocol, VIP: t.VIP, Port: t.Port, Addr: t.Real}, t.Check, up)
	if errors.Is(err, forwarder.ErrUnknownServer) {
		return nil // a check the running configuration no longer has, about to stop
	}
	return err
}

// withPriorityOf is h with the priority of from, when both are set: the
// rest of h to compare with from.
func withPriorityOf(h, from *config.HA) *config.HA {
	if h == nil || from == nil || h.Priority == from.Priority {
		return h
	}
	c := *h
	c.Priority = from.Priority
	return &c
}

// haSetting is the value of h's setting field (config.HAChanged's
// names), for a message that says what a reload would change.
func haSetting(h *config.HA, field string) string {
	switch field {
	case "vrid":
		return strconv.Itoa(h.VRID)
	case "priority":
		return strconv.Itoa(h.Priority)
	case "advert_interval":
		return h.AdvertInterval.String()
	case "preempt":
		return strconv.FormatBool(h.Preempt)
	case "preempt_delay":
		return h.PreemptDelay.String()
	case "interface":
		return strconv.Quote(h.Interface)
	case "skip_check_adv_addr":
		return strconv.FormatBool(h.SkipCheckAdvAddr)
	case "sync":
		if h.Sync == nil {
			return "none"
		}
		return fmt.Sprintf("{peers: %v, key_file: %s}", h.Sync.Peers, h.Sync.KeyFile)
	}
	return "?"
}

// bgpLine is the line of cfg's bgp.field (config.BGPChanged's name) that
// differs from was: for peers, the first peer of cfg that is not was's.
func bgpLine(was *config.BGP, cfg *config.Config, field string) int {
	if field == "peers" {
		for i, p := range cfg.BGP.Peers {
			if i >= len(was.Peers) || !p.Same(was.Peers[i]) {
				return p.Line
			}
		}
	}
	return cfg.LineOf("bgp." + field)
}

// haLine is the line of cfg's ha.field (config.HAChanged's name) that
// differs from was: for sync, its key_file or its peers when only one
// of them does.
func haLine(was *config.HA, cfg *config.Config, field string) int {
	if field == "sync" && was.Sync != nil && cfg.HA.Sync != nil {
		switch {
		case !slices.Equal(was.Sync.Peers, cfg.HA.Sync.Peers):
			return cfg.LineOf("ha.sync.peers")
		case was.Sync.KeyFile != cfg.HA.Sync.KeyFile:
			return cfg.LineOf("ha.sync.key_file")
		}
	}
	return cfg.LineOf("ha." + field)
}

// serviceLine is the line of cfg's first service that match takes, 0
// for none.
func serviceLine(cfg *config.Config, match func(config.Service) bool) int {
	if i := slices.IndexFunc(cfg.Services, match); i >= 0 {
		return cfg.Services[i].Line
	}
	return 0
}

// widestLine is the line of the service of cfg whose persistence
// netmask makes the widest of a family that changes from was to now
// (FanoutHash); 0 when none does (no persistence: the whole address).
func widestLine(cfg *config.Config, was, now link.ClientHash) int {
	return serviceLine(cfg, func(s config.Service) bool {
		if s.Persistence <= 0 || s.PersistenceBits <= 0 {
			return false
		}
		if s.VIP.Unmap().Is4() {
			return was.Bits4 != now.Bits4 && bitsOr(now.Bits4, 32) == min(s.PersistenceBits, 32)
		}
		return was.Bits6 != now.Bits6 && bitsOr(now.Bits6, 128) == min(s.PersistenceBits, 128)
	})
}

func haNewFamily(h *haRun, cfg *config.Config) bool {
	_, ok := h.newFamily(cfg)
	return ok
}

// bitsOr is a prefix length, with 0 read as the whole address (all).
func bitsOr(bits, all int) int {
	if bits == 0 {
		return all
	}
	return bits
}

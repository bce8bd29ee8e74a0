package director

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/arp"
	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/health"
	"github.com/drlb/drlb/internal/monotime"
	"github.com/drlb/drlb/link"
	"github.com/drlb/drlb/step"
	"github.com/drlb/drlb/vrrp"
)

// Options tune a Director.
type Options struct {
	Logger *slog.Logger // default slog.Default()
	// IPv4 and IPv6 are the director's own addresses on the LAN interface,
	// the sources of its ARP requests and neighbor solicitations (zero:
	// ARP probes from 0.0.0.0, solicitations from ::).
	IPv4, IPv6 netip.Addr
	// NextHop4 and NextHop6 are the next hops BGP announces the VIPs with
	// (with bgp:): addresses of the LAN interface, on a peer's subnet
	// where one is (nextHopFor). Zero: IPv4 for IPv4 VIPs (unless it is
	// link-local: then none until watchNextHops finds one), and IPv6 VIPs
	// go unannounced (IPv6 is link-local, which RFC 2545 does not allow
	// as the next hop alone).
	NextHop4, NextHop6 netip.Addr
	// AnnounceCount and AnnounceInterval shape the gratuitous ARP sent for
	// the VIPs at start (default 5, 1s apart, like keepalived).
	AnnounceCount    int
	AnnounceInterval time.Duration
	// Trace, if set, watches every frame through the step: the
	// step.Narrator behind `drlb run -trace`.
	Trace step.Observer
	// MTU of the LAN interface: frames that exceed it (and are not
	// super-frames the kernel segments) are answered with ICMP
	// fragmentation-needed / packet-too-big when they forbid
	// fragmentation, as IPVS does. 0 disables the check.
	MTU int
	// QdiscBypass sends forwarded frames straight to the driver
	// (PACKET_QDISC_BYPASS). It saves the qdisc's work (the link package
	// measured 149k -> 191k frames/s for a bare read/write loop; the full
	// director in the lab showed no measurable gain), but skips traffic
	// shaping, and packet captures on the director (tcpdump) no longer
	// see what drlb sends, since the kernel's taps are skipped too.
	QdiscBypass bool
	// IO is the frame I/O backend Run opens: "afpacket" (the default, also
	// for ""), "afxdp" (link.OpenXDPQueues: an XDP program redirects VIP
	// frames to an AF_XDP socket, one worker's per receive queue; ARP, NDP
	// and what XDP cannot carry go through AF_PACKET), or "auto": afxdp on a physical NIC with one receive
	// queue (where it carries every frame), afpacket otherwise, also
	// where the queues in use are not known (chooseIO); auto keeps afxdp
	// only where no frame can reach it with a partial checksum: its XDP
	// program in driver mode, or a NIC that is not a VM's (autoKeepsXDP).
	// It logs why.
	IO string
	// BlackholeVIPs lets the director run on a host that forwards (a
	// container host): instead of refusing to start, Run installs a
	// blackhole route per VIP so the kernel drops its copy of VIP frames
	// rather than routing a duplicate to the real servers, and removes the
	// routes on exit.
	BlackholeVIPs bool
	// KeepKernelCopy leaves the kernel's own copy of the VIP frames drlb
	// reads on AF_PACKET to the host's IP stack, which throws each one
	// away after a route lookup (or, with IP forwarding on, routes it).
	// By default Run drops that copy at the interface's tc ingress once
	// drlb's sockets have theirs (link.VIPDrop): about 1-2 µs less CPU
	// per frame in the lab. With AF_XDP too: the frames its XDP program
	// redirects never reach the stack, but it passes VIP frames to the
	// AF_PACKET socket beside its AF_XDP ones, and so to the kernel
	// (over 1792 bytes, other receive queues', all once detached from
	// outside: ARCHITECTURE.md, "Kernel copy of VIP frames"), and tc
	// ingress sees only those.
	KeepKernelCopy bool
	// ControlSocket is the Unix socket `drlb ctl` and Prometheus read
	// (control.DefaultSocket from the CLI; "" = none). MetricsAddr, if
	// set, also serves /metrics on TCP for a Prometheus scraper.
	ControlSocket string
	MetricsAddr   string
	// Reload, if set, delivers loaders of new configurations to apply
	// live (SIGHUP): each is called inside Apply's critical section
	// (Director.Reload), so a file read earlier is never applied over
	// one read later.
	Reload <-chan func() (*config.Config, error)
	// Ready, if set, is called once the director answers ARP for the
	// VIPs and forwards (systemd's READY=1). Reloaded, if set, is called
	// after each configuration from Reload or ReloadConfig (drlb ctl
	// --reload) was applied or refused.
	Ready    func()
	Reloaded func(error)
	// ReloadConfig, if set, re-reads the configuration file: `drlb ctl
	// --reload` applies what it returns, as SIGHUP does (nil: no file,
	// and --reload is refused).
	ReloadConfig func() (*config.Config, error)
	// Clock stamps each batch and drives idle expiry (default time.Now).
	// Tests replaying a capture through the live loop set it to the
	// capture's time, so that timeouts run as in `drlb replay`.
	Clock func() time.Time
	// Announcer, if set, is told which VIPs the director can serve, at
	// start and every few hundred milliseconds (director/bgp.go).
	Announcer VIPAnnouncer
	// VRRP carries the IPv4 adverts of a config with ha: and IPv4 VIPs,
	// VRRP6 the IPv6 adverts of one with IPv6 VIPs (Run opens them on the
	// interface; tests pass in-memory ones). The director closes them.
	VRRP, VRRP6 vrrp.Conn
	// Sync carries connection sync for a config with ha.sync (Run opens
	// UDP on the interface address; tests pass an in-memory one), and
	// SyncKey is the shared key (Run reads ha.sync.key_file). The
	// director closes Sync.
	Sync    connsync.Conn
	SyncKey []byte
	// SyncAddr is the address Sync is bound to and sends from (Run: the
	// interface's IPv4 address listed in ha.sync.peers, else IPv4); the
	// zero Addr means IPv4.
	SyncAddr netip.Addr

	// Workers is how many data-path workers Run starts (0: one per CPU;
	// AF_XDP: one per receive queue, at most Workers, planXDPQueues). Each
	// reads its own pair of AF_PACKET sockets (link.OpenSplit: bare SYNs
	// apart; AF_XDP: its queue's AF_XDP sockets and one AF_PACKET socket)
	// of one fanout group that sorts frames by client (FanoutHash), with
	// its own connection table of max_conns/Workers.
	Workers int
	// RxCoalesce, when > 0, makes each worker wait this long after a
	// batch of fewer than a quarter of the batch size before it reads
	// again, as a NIC's interrupt coalescing (ethtool -C rx-usecs) does:
	// at a moderate rate more frames share each wake-up and its system
	// calls, which costs less CPU per frame, and a frame that arrives
	// during the wait is forwarded up to RxCoalesce later. 0 (the
	// default): read again at once. At most MaxRxCoalesce.
	RxCoalesce time.Duration
	// KernelSYNs lets the kernel forward bare SYNs (IPv4 and IPv6) itself while
	// the connection table is under pressure, by the same hash the
	// forwarder's stateless SYNs use (link.StatelessSYNPort): a SYN
	// flood then costs the kernel's receive path, not drlb's queue. With
	// AF_XDP the XDP program (XDP_TX), with AF_PACKET each worker's
	// socket filter and the tc program that forwards kernel flows (not
	// with KeepKernelCopy or on a VLAN trunk). Off by default: with
	// AF_XDP, XDP_TX must work on the interface (physical NICs with
	// native XDP, any NIC in generic mode; a veth in native mode drops
	// XDP_TX unless its peer has an XDP program: XDPGeneric).
	KernelSYNs bool
	// KernelFlows lets the kernel forward the frames of established
	// flows (IPv4 and IPv6) itself (link.FlowPort), the flows the forwarder hands
	// out once its fast path forwarded one of their frames: with AF_XDP
	// the XDP program (XDP_TX), with AF_PACKET each worker's socket
	// filter and a tc program attached with the drop of the kernel's
	// copy of VIP frames (link.TCFlowPort; not with KeepKernelCopy or
	// on a VLAN trunk). One frame per flow every 5 s,
	// and anything that changes a connection's state, still go to drlb,
	// which decides (forwarder, kernel flows). Off by default: with
	// AF_XDP, XDP_TX must work on the interface, as for KernelSYNs.
	KernelFlows bool
	// XDPGeneric attaches the AF_XDP port's program in generic mode even
	// where the driver has native XDP (link.Config.XDPGeneric).
	XDPGeneric bool
	// XDPCopy binds the AF_XDP port's sockets in copy mode even where the
	// driver has zero-copy (link.Config.XDPCopy).
	XDPCopy bool
	// ExtraPorts are further workers' ports of port's fanout group
	// (link.OpenSplit with FanoutHash(cfg)): each gets a worker of its
	// own (a goroutine with its own connection table and step), so that
	// the director forwards on several cores with no lock in common on
	// the data path. The director closes them.
	ExtraPorts []link.Port

	bgp *bgpRun // set by Run for a config with bgp:
}

// Director forwards VIP traffic read from a port to the real servers.
type Director struct {
	// cur is the running configuration, the director's own copy: Apply
	// swaps it together with the forwarder's; readers load it whole.
	cur     atomic.Pointer[config.Config]
	applyMu sync.Mutex // one Apply at a time
	// swapHeld is how long the last Apply held the workers' locks (ns), for tests and
	// the benchmark.
	swapHeld atomic.Int64
	// afterListChunk, if set (tests), is called after each chunk of a
	// connection listing with worker i's lock released.
	afterListChunk func(i int)
	// vipFollow, if set (Run: blackhole routes, the tc drop), follows
	// the VIPs an Apply adds and removes, in two steps around the swap
	// (apply.go).
	vipFollow vipFollower
	// vipsHeld, if set (Run: the host's addresses, doctor.VIPsOffHost),
	// says why each VIP an Apply adds that the director's own kernel
	// holds is refused, as start-up refuses it.
	vipsHeld func([]netip.Addr) (map[netip.Addr]error, error)

	port    link.Port // the first worker's: the director's own frames leave here
	workers []*worker
	// hash sorts clients among the workers as the kernel's fanout program
	// does (connection sync places a peer's entries with it).
	hash link.ClientHash
	log  *slog.Logger
	// trustOff logs once that the ports have no trusted-client lane.
	trustOff sync.Once
	// coalesce is Options.RxCoalesce.
	coalesce time.Duration
	// kernelSYNs is Options.KernelSYNs; kflowsOn is Options.KernelFlows where the port can forward kernel flows (Run turns it off when the tc program does not attach).
	kernelSYNs, kflowsOn bool
	// kflowsHeld: the kernel's forwarding of kernel flows is held off
	// (watchKernelFlowOrder: the AF_PACKET tc program does not run first,
	// for now; watchXDP: the XDP program was detached, for good); the
	// workers forward every frame themselves meanwhile.
	kflowsHeld atomic.Bool
	// kflowsFailed: a worker's write to the kernel failed and its kernel
	// flows are off for good (kernelFlowsOff).
	kflowsFailed atomic.Bool
	// kernelSYNsFailed: a worker's write of its kernel SYN forwarding
	// failed, and that worker takes every SYN itself for good
	// (synLaneFailed).
	kernelSYNsFailed atomic.Bool
	// xdpMode is the AF_XDP port's XDP mode ("driver", "generic"; "" for
	// AF_PACKET), and xdpDetached is set once its program was detached
	// from outside drlb (watchXDP).
	xdpMode     string
	xskMode     string // the AF_XDP sockets' ("zero-copy", "copy"; link.XSKMode)
	xdpDetached atomic.Bool
	mac         arp.MAC
	// trace is Options.Trace; a narrator among them is given each new
	// configuration, so it names services by the right indexes.
	trace step.Observer

	fw        *forwarder.Forwarder // the first worker's; control methods act on all
	responder *arp.Responder
	resolver  *arp.Resolver
	announcer *arp.Announcer
	neighbors *neighborQueue
	reload    <-chan func() (*config.Config, error)
	monitor   *health.Monitor
	clock     func() time.Time
	ready     func()
	reloaded  func(error)
	vipReport VIPAnnouncer
	reportMu  sync.Mutex    // one report at a time (reportNow)
	usable    usableCounter // BGP's counts, with what the last report had (under reportMu)
	ha        *haRun        // nil without ha: (director/ha.go)
	sync      *syncRun      // nil without ha.sync (director/sync.go)

	// conflicts spaces the conflicts handled, per family (IPv4, IPv6):
	// the two move independently.
	conflicts [2]monotime.Limit
	// gone is set once the interface was deleted (interfaceDeleted):
	// Serve returns it.
	gone atomic.Pointer[error]

	sendMu  sync.Mutex
	sendBuf []link.Frame
}

// ErrBadOptions is wrapped by New's errors about Options out of range.
var ErrBadOptions = errors.New("director: bad options")

// MaxRxCoalesce bounds Options.RxCoalesce: beyond it the wait would be a
// delay every client notices.
const MaxRxCoalesce = 10 * time.Millisecond

// New builds a Director for cfg on port. It does no I/O.
func New(cfg *config.Config, port link.Port, opts Options) (*Director, error) {
	d := &Director{port: port, log: opts.Logger, reload: opts.Reload, neighbors: newNeighborQueue(), clock: opts.Clock, trace: opts.Trace,
		ready: opts.Ready, reloaded: opts.Reloaded, vipReport: opts.Announcer}
	if opts.RxCoalesce < 0 || opts.RxCoalesce > MaxRxCoalesce {
		return nil, fmt.Errorf("%w: rx coalesce %v, want 0 to %v", ErrBadOptions, opts.RxCoalesce, MaxRxCoalesce)
	}
	d.coalesce = opts.RxCoalesce
	d.kernelSYNs = opts.KernelSYNs
	d.kflowsOn = opts.KernelFlows
	if m, ok := port.(link.XDPMode); ok {
		d.xdpMode = m.XDPMode()
	}
	if m, ok := port.(link.XSKMode); ok {
		d.xskMode = m.XSKMode()
	}
	cfg = cfg.Clone()
	d.cur.Store(cfg)
	if d.log == nil {
		d.log = slog.Default()
	}
	if d.clock == nil {
		d.clock = time.Now
	}
	hw := port.HardwareAddr()
	mac, ok := arp.MACFrom(hw)
	if !ok {
		return nil, fmt.Errorf("director: interface %s: MAC %v is not an Ethernet address", cfg.Interface, hw)
	}
	d.mac = mac
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // a per-process seed keeps hash flooding off the connection table
	ports := append([]link.Port{port}, opts.ExtraPorts...)
	fw, err := forwarder.New(cfg, forwarder.Options{MAC: hw, Seed: binary.LittleEndian.Uint64(seed[:]), MTU: opts.MTU, Workers: len(ports)})
	if err != nil {
		return nil, err
	}
	d.fw = fw
	d.hash = FanoutHash(cfg)
	d.sendBuf = link.NewFrames(1)
	targets, err := health.Targets(cfg)
	if err != nil {
		return nil, err
	}
	d.monitor = health.NewMonitor(healthMarker{fw}, d.log)
	d.monitor.Update(targets)

	if cfg.HA != nil {
		if d.ha, err = newHA(d, cfg, &opts); err != nil {
			return nil, err
		}
		if s := cfg.HA.Sync; s != nil {
			if d.sync, err = newSync(d, s, opts.Sync, opts.SyncKey, cmp.Or(opts.SyncAddr, opts.IPv4)); err != nil {
				return nil, err
			}
			for _, w := range fw.Workers() {
				w.EnableSync(syncEventsPerBatch)
			}
			// Not before the table is copied from a peer: failing back
			// must not break the flows the other director carries.
			d.ha.setPreemptHold(true)
			d.sync.hold = d.ha.setPreemptHold
		}
	}
	d.responder, err = arp.NewResponder(arp.ResponderConfig{MAC: mac, VIPs: d.ownedVIPs(cfg), VLAN: vlanOf(cfg), OnConflict: d.conflict})
	if err != nil {
		return nil, err
	}
	sender := arp.SenderFunc(d.send)
	d.resolver, err = arp.NewResolver(arp.ResolverConfig{
		MAC: mac, IPv4: opts.IPv4, IPv6: opts.IPv6, Sender: sender, OnEvent: d.neighbors.push, VLAN: vlanOf(cfg),
	})
	if err != nil {
		return nil, err
	}
	d.announcer, err = arp.NewAnnouncer(arp.AnnouncerConfig{
		MAC: mac, Count: opts.AnnounceCount, Interval: opts.AnnounceInterval, Sender: sender, VLAN: vlanOf(cfg),
		Owned: d.responder.Owns, // a VIP removed or given up is no longer announced
	})
	if err != nil {
		return nil, err
	}
	for i, w := range fw.Workers() {
		st, err := step.New(step.Config{Forwarder: w, Responder: d.responder, Resolver: d.resolver, Observer: opts.Trace, Prefetch: true})
		if err != nil {
			return nil, err
		}
		d.workers = append(d.workers, &worker{port: ports[i], fw: w, step: st, holdChanged: make(chan struct{}, 1), synHoldChanged: make(chan struct{}, 1)})
	}
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			if r.MAC != nil {
				m, _ := arp.MACFrom(r.MAC)
				if err := d.resolver.Static(r.Address, m); err != nil {
					return nil, err
				}
				continue
			}
			if err := d.resolver.Want(r.Address); err != nil {
				return nil, err
			}
		}
	}
	if err := d.resolveSorryServers(cfg); err != nil {
		return nil, err
	}
	// A static MAC is the address's, in every service: the forwarder gave
	// it only to the servers the config gives it, and the resolver's
	// permanent entry raises no event, so a server at the same address in
	// another service, without mac:, was never usable.
	for addr, mac := range neighborsOf(cfg) {
		if mac != nil {
			if err := d.fw.SetMAC(addr, net.HardwareAddr(mac[:])); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// vlanOf is the tag of the director's own frames on a trunk (config vlan:).
func vlanOf(cfg *config.Config) arp.VLAN {
	if cfg.VLAN == 0 {
		return arp.NoVLAN
	}
	return arp.VLANID(uint16(cfg.VLAN))
}

// resolveSorryServers has the resolver find the sorry servers' MACs like
// the real servers': forwarder.SetMAC, fed by the resolver's events,
// updates them by address.
func (d *Director) resolveSorryServers(cfg *config.Config) error {
	for _, s := range cfg.Services {
		ss := s.SorryServer
		switch {
		case ss == nil:
		case ss.MAC != nil:
			m, _ := arp.MACFrom(ss.MAC)
			if err := d.resolver.Static(ss.Address, m); err != nil {
				return err
			}
		default:
			if err := d.resolver.Want(ss.Address); err != nil {
				return err
			}
		}
	}
	return nil
}

// sweepIdle expires connections while no frames flow (Process sweeps a
// few slots per frame otherwise), so that the active/inactive counts
// `drlb ctl` shows fall back when traffic stops, as IPVS's timers do.
//
// It walks the whole table about every forwarder.IdlePass, in chunks of
// forwarder.IdleChunk slots with the lock released in between, so the
// data path never waits for more than one chunk (tens of microseconds).
// A replay runs the same sweep on capture time (forwarder.IdleSweep).
func (d *Director) sweepIdle(ctx context.Context) {
	t := time.NewTicker(forwarder.IdlePass / forwarder.IdleTicks)
	defer t.Stop()
	perTick := d.fw.TableSlots()/forwarder.IdleTicks + 1
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := d.clock()
			for _, w := range d.workers {
				for done := 0; done < perTick; done += forwarder.IdleChunk {
					w.mu.Lock()
					w.fw.Tick(now.UnixNano(), forwarder.IdleChunk)
					if w.kflows != nil {
						// A chunk ends at most idleChunk entries:
						// their flows leave the kernel before the next.
						d.flushKernelFlows(w, w.kflows)
					}
					w.mu.Unlock()
				}
			}
		}
	}
}

// Snapshot is the director's state for `drlb ctl` and /metrics; with
// conns it lists the connection table too (at most maxListedConns).
func (d *Director) Snapshot(conns bool) control.Snapshot {
	// One read of the services, so that persistence and counters come
	// from the same configuration even while an Apply runs.
	stats := d.fw.Stats()
	persist := map[int]time.Duration{}
	for i, s := range stats {
		persist[i] = s.Persistence
	}
	snap := control.Take(statsOnce{d.fw, stats}, d.cur.Load().MaxConns, persist)
	xdpFrames := make([]uint64, len(d.workers))
	for i, w := range d.workers {
		sr, ok := w.port.(link.StatsReporter)
		if !ok {
			continue
		}
		// A closed port (shutdown, before the control socket stops)
		// still gives what it counted: left out, the summed counters
		// would dip for a scrape.
		if ls, err := sr.Stats(); err == nil || errors.Is(err, link.ErrClosed) {
			xdpFrames[i] = ls.XDPReceived
			if snap.Link == nil {
				snap.Link = map[string]uint64{}
			}
			snap.Link["rx"] += ls.RxDropped
			snap.Link["rx_syn"] += ls.SYNRxDropped
			snap.Link["rx_syn_trusted"] += ls.TrustedSYNRxDropped
			if ls.XDPRxDropped > 0 {
				snap.Link["rx_xdp"] += ls.XDPRxDropped
			}
			if ls.KernelFlowsFull > 0 {
				snap.Link["kernel_flows_full"] += ls.KernelFlowsFull
			}
			snap.Link["tx"] += ls.TxDropped
			snap.Link["tx_failed"] += ls.TxFailed
			snap.Link["truncated"] += ls.Truncated
			snap.Link["unrepresentable"] += ls.Unrepresentable
		}
	}
	for _, w := range d.workers {
		snap.KernelForwarded += w.fw.KernelForwarded()
		snap.KernelSYNs += w.fw.KernelSYNs()
		snap.KernelFlowsOut += w.fw.KernelFlowsOut()
	}
	if d.kflowsOn {
		snap.KernelFlows = control.KernelFlowsOn
		if d.kflowsHeld.Load() {
			snap.KernelFlows = control.KernelFlowsHeld
		}
		if d.kflowsFailed.Load() {
			snap.KernelFlows = control.KernelFlowsFailed
		}
	}
	if d.kernelSYNs {
		// Held as statelessSYNs holds them: while the tc program is not
		// first (kflowsHeld) or the XDP program was detached (xdpDetached:
		// kflowsHeld follows it only with kernel flows on).
		snap.KernelSYNsState = control.KernelSYNsOn
		if d.kflowsHeld.Load() || d.xdpDetached.Load() {
			snap.KernelSYNsState = control.KernelSYNsHeld
		}
		if d.kernelSYNsFailed.Load() {
			snap.KernelSYNsState = control.KernelSYNsFailed
		}
	}
	if d.xdpMode != "" {
		snap.XDP = d.xdpMode
		if d.xdpDetached.Load() {
			snap.XDP = control.XDPDetached
		}
	}
	snap.AFXDP = d.xskMode
	if len(d.workers) > 1 {
		for i, w := range d.workers {
			w.mu.Lock()
			n := w.fw.TableLen()
			w.mu.Unlock()
			snap.Workers = append(snap.Workers, control.Worker{Frames: w.fw.Frames(), Entries: n, XDPFrames: xdpFrames[i]})
		}
	}
	o := d.fw.Overload()
	snap.Overload = &control.Overload{Pressure: o.Pressure, PressureEpisodes: o.PressureEpisodes, SynEvicted: o.SynEvicted, SynStateless: o.SynStateless, TrustedClients: o.Handshakes}
	rs := d.responder.Stats()
	snap.ARP = map[string]uint64{"requests": rs.Requests, "probes": rs.Probes, "replies": rs.Replies, "conflicts": rs.Conflicts, "malformed": rs.Malformed}
	snap.HA, snap.HA6 = d.ha.status()
	ns := d.resolver.Stats()
	snap.Neighbors = map[string]uint64{"requests": ns.Requests, "send_errors": ns.SendErrors, "accepted": ns.Accepted, "rejected": ns.Rejected}
	if conns {
		now := d.clock().UnixNano()
		for i, w := range d.workers {
			// In chunks, the worker's lock taken for each and released
			// in between, as the idle sweep and sync's bulk walk do: a
			// table of millions walked in one hold would stall the
			// worker's batches for as long (tens of ms per 100k).
			for from := 0; from >= 0; {
				w.mu.Lock()
				from = w.fw.RangeConnEntriesFrom(from, listChunk, now, func(c forwarder.ConnEntry) {
					if len(snap.ConnEntries) == maxListedConns {
						snap.ConnEntriesOmitted++
						return
					}
					snap.ConnEntries = append(snap.ConnEntries, control.ConnEntryOf(c))
				})
				w.mu.Unlock()
				if d.afterListChunk != nil {
					d.afterListChunk(i)
				}
			}
		}
	}
	return snap
}

// listChunk is how many table slots a connection listing reads per hold
// of a worker's lock.
const listChunk = 4096

// statsOnce is the forwarder with its services read once.
type statsOnce struct {
	*forwarder.Forwarder
	stats []forwarder.ServiceStats
}

func (s statsOnce) Stats() []forwarder.ServiceStats { return s.stats }

// maxListedConns bounds a connection listing (the table may hold millions).
const maxListedConns = 100_000

// Forwarder exposes the pipeline, for counters and control.
func (d *Director) Forwarder() *forwarder.Forwarder { return d.fw }

// send writes one control frame (ARP request, announcement).
func (d *Director) send(frame []byte) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	f := &d.sendBuf[0]
	f.Data = append(f.Data[:0], frame...)
	f.Offload = link.Offload{}
	_, err := d.port.WriteBatch(d.sendBuf)
	return err
}

// conflictWarning is what a director defending a VIP against another
// station's claim logs (with ha:, only if still master an advert
// interval later).
const conflictWarning = "another station claims a VIP: check that no real server answers ARP for it (arp_ignore=1, arp_announce=2) and that no other director holds it; re-announcing"

// conflict runs on the receive path when another station claims a VIP:
// log it and defend the VIP with a fresh round of gratuitous ARP, at most
// once per conflictHoldoff and address family so two claimants cannot make
// us flood the LAN.
func (d *Director) conflict(c arp.Conflict) {
	held := &d.conflicts[0]
	if !c.VIP.Unmap().Is4() {
		held = &d.conflicts[1]
	}
	if !held.Allow(conflictHoldoff) { // monotonic: a wall clock set back would hold it off that long
		return
	}
	if d.ha != nil {
		d.ha.defend(c) // gratuitous ARP while still master an advert interval later
		return
	}
	d.log.Warn(conflictWarning, "conflict", fmt.Sprintf("%+v", c))
	go func() {
		if err := d.announcer.Announce(d.ownedVIPs(d.cur.Load())...); err != nil {
			d.log.Error("re-announce", "err", err)
		}
	}()
}

// conflictHoldoff spaces re-announcements after VIP conflicts.
const conflictHoldoff = 10 * time.Second

// Serve runs the director until ctx ends or the port fails. It closes the
// port when it returns.
func (d *Director) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: the goroutines wg waits for stop on it
	defer d.closePorts()
	// What the run did, while the ports can still say what they dropped:
	// the last word in the log when something went missing.
	defer func() {
		s := d.Snapshot(false)
		d.log.Info("stopped", "frames", s.Frames, "kernel_forwarded", s.KernelForwarded, "kernel_syns", s.KernelSYNs, "link_drops", s.Link)
	}()

	for _, run := range []func(context.Context) error{d.resolver.Run, d.announcer.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("neighbor loop stopped", "err", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.sweepIdle(ctx)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.neighbors.run(ctx, d.applyNeighbor)
	}()
	// Always running, even without checks: a reload may add some.
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.monitor.Run(ctx)
	}()
	if d.reload != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reload := d.reload
			for {
				select {
				case <-ctx.Done():
					return
				case load, ok := <-reload:
					if !ok { // closed: no more reloads (nil blocks for good)
						reload = nil
						continue
					}
					err := d.Reload(load) // the file is read under the Apply lock
					if err != nil {
						d.log.Error("reload refused: the running configuration stays, nothing changed", "err", err)
					} else {
						d.log.Info("configuration reloaded")
					}
					if d.reloaded != nil {
						d.reloaded(err)
					}
				}
			}
		}()
	}
	if d.vipReport != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.reportUsable(ctx, d.vipReport)
		}()
	}
	if ctx.Err() != nil {
		// Stopped while starting (SIGTERM during set-up): gratuitous
		// ARP now would draw the VIPs' traffic to a director on its
		// way out, and READY=1 would follow systemd's STOPPING=1.
		return nil
	}
	if err := d.announcer.Announce(d.ownedVIPs(d.cur.Load())...); err != nil {
		return err
	}
	if d.sync != nil {
		d.sync.serve(ctx, &wg)
	}
	if d.ha != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.ha.run(ctx)
		}()
	}
	// The port's ReadBatch returns on ctx; Close unblocks it for certain.
	go func() {
		<-ctx.Done()
		d.closePorts()
	}()
	if d.ready != nil {
		d.ready() // the VIPs are announced; the loops start reading now
	}
	return d.runWorkers(ctx, cancel)
}

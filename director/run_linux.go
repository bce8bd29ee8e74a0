package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/doctor"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/link"
	"github.com/vishvananda/netlink"
)

// ErrNotPermitted is returned by Run without the privileges a raw socket needs.
var ErrNotPermitted = errors.New("director: need root or CAP_NET_RAW")

// Run checks the host, opens the LAN interface cfg.Interface and serves
// until ctx ends. It refuses to start, with the fix for each problem, when
// the host would make DR misbehave.
func Run(ctx context.Context, cfg *config.Config, opts Options) error {
	if cfg.Interface == "" {
		return errors.New("director: no interface: set interface: in the config or pass -i")
	}
	vips := cfg.VIPs()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	report := doctor.Director(doctor.System{}, cfg.Interface, vips, cfg.RealServerAddrs()...)
	forwarding := false
	for i, c := range report {
		if c.Status == doctor.Fail && c.ID == doctor.IDForwarding && opts.BlackholeVIPs {
			report[i].Status = doctor.Warn
			report[i].Detail = "on: handled with blackhole routes for the VIPs (-blackhole-vip)"
			report[i].Fix = ""
			forwarding = true
		}
	}
	if err := report.Err(); err != nil {
		return fmt.Errorf("director: refusing to start on %s: %w", cfg.Interface, err)
	}
	var holes *blackholes
	if forwarding {
		var err error
		if holes, err = blackholeVIPs(vips, log); err != nil {
			return err
		}
		defer holes.removeAll()
	}
	for _, c := range report {
		if c.Status == doctor.Warn && log != nil {
			log.Warn(c.Name, "found", c.Detail, "fix", c.Fix)
		}
	}
	if a, ok := ownAddress(cfg.Interface, true); ok && !opts.IPv4.IsValid() {
		opts.IPv4 = a
	}
	if a, ok := ownAddress(cfg.Interface, false); ok && !opts.IPv6.IsValid() {
		opts.IPv6 = a
	}
	if cfg.BGP != nil {
		peers := bgpPeerAddrs(cfg)
		if !opts.NextHop4.IsValid() {
			opts.NextHop4 = nextHopFor(ifacePrefixes(cfg.Interface, true), peers)
		}
		if !opts.NextHop6.IsValid() {
			opts.NextHop6 = nextHopFor(ifacePrefixes(cfg.Interface, false), peers)
		}
	}
	if opts.MTU == 0 {
		if ifi, err := net.InterfaceByName(cfg.Interface); err == nil {
			opts.MTU = ifi.MTU
		}
	}
	filter, err := link.VIPFilter(vips)
	if err != nil {
		return err
	}
	b, err := startBGP(ctx, cfg, &opts, log)
	if err != nil {
		return err
	}
	port, err := openPorts(cfg, link.Config{Filter: filter, QdiscBypass: opts.QdiscBypass}, vips, &opts, log)
	if err != nil {
		b.stop()
		if errors.Is(err, link.ErrNotPermitted) {
			return fmt.Errorf("%w: %v (run as root, or: setcap cap_net_raw,cap_net_admin,cap_bpf+ep $(which drlb))", ErrNotPermitted, err)
		}
		return err
	}
	closePorts := func() {
		port.Close()
		for _, p := range opts.ExtraPorts {
			p.Close()
		}
	}
	if err := openHA(cfg, &opts); err != nil {
		closePorts()
		b.stop()
		return err
	}
	// undo closes what was opened, where starting fails before the
	// director serves (the VRRP and sync runners close their sockets
	// only once they run).
	undo := func() {
		for _, c := range []interface{ Close() error }{opts.VRRP, opts.VRRP6, opts.Sync} {
			if c != nil {
				c.Close()
			}
		}
		closePorts()
		b.stop()
	}
	d, err := New(cfg, port, opts)
	if err != nil {
		undo()
		return err
	}
	// The tables' pages now, not under the first connections: faulting
	// 64 MiB of slots in (default max_conns) held the first batch of new
	// clients for 100-230 ms in the lab, and an AF_XDP ring overflowed.
	start := time.Now()
	if err := d.fw.Prefault(); err != nil {
		log.Warn("connection tables: the kernel refused to fault them in at once; touched page by page", "err", err)
	}
	log.Info("connection tables in memory", "max_conns", cfg.MaxConns, "took", time.Since(start).Round(time.Millisecond))
	warnXDPTX(cfg.Interface, port, opts, log)
	if b != nil {
		// A family without a next hop at start gets one once the
		// interface has an address fit for it (nexthop_linux.go).
		peers := bgpPeerAddrs(cfg)
		prefixes := func(v4 bool) []netip.Prefix { return ifacePrefixes(cfg.Interface, v4) }
		defer background(ctx, func(ctx context.Context) { watchNextHops(ctx, b.an, prefixes, peers, nextHopEvery) })()
	}
	if ifi, err := net.InterfaceByName(cfg.Interface); err != nil {
		log.Warn("cannot watch the link: a link that goes down will not put VRRP in FAULT, and an interface deleted leaves the director waiting", "interface", cfg.Interface, "err", err)
	} else {
		// A link that goes down puts the election in FAULT; an
		// interface deleted ends the director (linkwatch_linux.go).
		defer background(ctx, func(ctx context.Context) { d.watchLink(ctx, cfg.Interface, ifi.Index) })()
	}
	if xa, ok := port.(link.XDPAttachment); ok {
		// Detached from outside, it is logged and shown (xdpwatch_linux.go).
		defer background(ctx, func(ctx context.Context) { d.watchXDP(ctx, xa, cfg.Interface, xdpWatchEvery) })()
	}
	drop := attachVIPDrop(cfg, port, vips, opts, log)
	if drop != nil {
		defer drop.Close()
	}
	if _, xdp := port.(link.XDPMode); (d.kflowsOn || d.kernelSYNs) && !xdp {
		if drop != nil && drop.ForwardsKernelFlows() {
			// The tc program must stay first at tc ingress (kflowhold_linux.go).
			defer background(ctx, func(ctx context.Context) { d.watchKernelFlowOrder(ctx, drop, cfg.Interface, flowsEvery) })() // before drop.Close
		} else {
			// The sockets' filters would refuse the flows' frames (and
			// the SYNs) and nothing would send them: off, and the ports
			// back to the classic filter (the maps and lookups would
			// only cost).
			for _, f := range []struct {
				on   *bool
				flag string
			}{{&d.kflowsOn, "-kernel-flows"}, {&d.kernelSYNs, "-kernel-syns"}} {
				if *f.on {
					*f.on = false
					log.Warn(f.flag + " off: with AF_PACKET the kernel forwards them in the tc program that drops its copy of VIP frames, which is not attached (not with -keep-kernel-copy or on a VLAN trunk)")
				}
			}
			for _, p := range append([]link.Port{port}, opts.ExtraPorts...) {
				if tp, ok := p.(link.TCFlowPort); ok {
					if err := tp.DropKernelFlows(filter); err != nil {
						undo()
						return err
					}
				}
			}
		}
	}
	// VIPs a reload adds need their blackhole route and kernel drop too,
	// before they are announced (or the reload is refused); removed ones
	// lose theirs once withdrawn.
	d.vipFollow = newKernelVIPs(holes, drop, vips, log)
	d.vipsHeld = vipsOffHost
	stopControl, err := serveControl(ctx, d, opts, log)
	if err != nil {
		undo()
		return err
	}
	// Before the deferred teardown above (drop, blackhole routes): a ctl
	// change in flight ends first, and none comes after.
	defer stopControl()
	if log != nil {
		log.Info("director up", "interface", cfg.Interface, "mac", port.HardwareAddr().String(), "vips", vips,
			"services", len(cfg.Services), "ipv4", opts.IPv4, "ipv6", opts.IPv6)
	}
	if b != nil {
		return b.serve(ctx, d)
	}
	if d.ha != nil {
		return d.ha.serve(ctx, d)
	}
	return d.Serve(ctx)
}

// openPorts opens the LAN port with the backend opts.IO names and, for
// more than one worker (opts.Workers; AF_PACKET only), the other workers'
// ports into opts.ExtraPorts. With AF_PACKET every worker, one included,
// reads the sockets of one fanout group (link.OpenSplit): a main one, one
// for bare TCP SYNs and one for trusted clients' bare SYNs, so a SYN flood
// overflows only a SYN queue and ACKs and established traffic keep
// flowing. The kernel sorts frames among
// the workers by client (FanoutHash), so each worker's table sees whole
// clients, the SYN of a handshake and its ACK included.
func openPorts(cfg *config.Config, lc link.Config, vips []netip.Addr, opts *Options, log *slog.Logger) (link.Port, error) {
	n := opts.Workers
	if n <= 0 {
		n = min(runtime.NumCPU(), forwarder.MaxWorkers)
	}
	io, auto := opts.IO, opts.IO == IOAuto
	var queues rxQueueCount
	if io == IOAuto || io == IOAFXDP {
		queues = rxQueues(cfg.Interface)
	}
	if auto {
		var why string
		io, why = autoIO(cfg.Interface, queues)
		if veto := autoVeto(cfg); io == IOAFXDP && veto != "" {
			io, why = IOAFPacket, veto
		}
		log.Info("io auto: "+io, "why", why, "receive queues", queues.String())
	}
	switch io {
	case "", IOAFPacket:
	case IOAFXDP:
		if err := afxdpRefusal(cfg); err != nil {
			return nil, fmt.Errorf("director: -io afxdp on %s: %w; use -io afpacket", cfg.Interface, err)
		}
		lc.XDPGeneric = opts.XDPGeneric
		lc.XDPCopy = opts.XDPCopy
		lc.KernelFlows = opts.KernelFlows
		plan := planXDPQueues(queues.forSockets(), n, opts.KernelFlows, opts.KernelSYNs)
		ports, err := openXDP(cfg.Interface, lc, vips, plan, FanoutHash(cfg), auto, log)
		if err == nil {
			if w := queues.xdpWarning(cfg.Interface); w != "" {
				log.Warn(w)
			}
			opts.ExtraPorts = append(opts.ExtraPorts, ports[1:]...)
			return ports[0], nil
		}
		if !auto {
			return nil, err
		}
		if ne := (notNative{}); errors.As(err, &ne) {
			log.Warn("io auto: afpacket after all", "why", ne.why)
		} else {
			log.Warn("io auto: AF_XDP did not open; AF_PACKET instead", "err", err)
		}
	default:
		return nil, fmt.Errorf("director: io %q: want afpacket, afxdp or auto", opts.IO)
	}
	h := FanoutHash(cfg)
	// Kernel flows and SYNs need the tc program that drops the kernel's
	// copy of VIP frames (attachVIPDrop): without it the maps and the
	// eBPF filters would only cost.
	lc.KernelFlows = opts.KernelFlows && vipDropRuns(cfg, *opts)
	lc.KernelSYNs = opts.KernelSYNs && vipDropRuns(cfg, *opts)
	ports, err := link.OpenSplit(cfg.Interface, lc, n, h)
	if err != nil && (lc.KernelFlows || lc.KernelSYNs) {
		log.Warn("the sockets did not open with kernel flows or SYNs: trying without", "err", err)
		lc.KernelFlows, lc.KernelSYNs = false, false
		ports, err = link.OpenSplit(cfg.Interface, lc, n, h)
	}
	if err != nil {
		return nil, err
	}
	id, err := ports[0].(link.FanoutMember).FanoutGroup()
	if err != nil {
		for _, p := range ports {
			p.Close()
		}
		return nil, err
	}
	opts.ExtraPorts = append(opts.ExtraPorts, ports[1:]...)
	log.Info("workers: one per pair of sockets (all frames but bare SYNs, bare SYNs) of a fanout group sorted by client address", "workers", n, "fanout group", id,
		"ipv4 prefix", bitsOr(h.Bits4, 32), "ipv6 prefix", bitsOr(h.Bits6, 128))
	return ports[0], nil
}

// notNative is openXDP's refusal under -io auto of ports that frames may
// reach with partial checksums (autoKeepsXDP says why).
type notNative struct{ why string }

func (e notNative) Error() string { return e.why }

// openXDP opens the AF_XDP LAN ports of plan: one on queue 0, or one
// per queue of the first plan.ports (link.OpenXDPQueues), each a
// worker's, sharing clients by h as AF_PACKET workers do. Where frames
// may reach them with partial checksums (xdpChecksumWarning), -io auto
// closes them and returns a notNative (autoKeepsXDP), and -io afxdp
// warns.
func openXDP(ifname string, lc link.Config, vips []netip.Addr, plan xdpQueuePlan, h link.ClientHash, auto bool, log *slog.Logger) ([]link.Port, error) {
	ports, err := link.OpenXDPQueues(ifname, lc, vips, plan.ports, h)
	if err != nil {
		return nil, err
	}
	mode, sockets := "", ""
	if m, ok := ports[0].(link.XDPMode); ok {
		mode = m.XDPMode()
	}
	risk := fmt.Sprintf("io afxdp on %s: cannot read its link type, so cannot tell whether frames may reach it with partial checksums", ifname)
	if l, err := netlink.LinkByName(ifname); err == nil {
		risk = xdpChecksumWarning(ifname, l.Type(), l.Attrs().ParentDevBus, mode)
	}
	if auto {
		if keep, why := autoKeepsXDP(risk); !keep {
			for _, p := range ports {
				p.Close()
			}
			return nil, notNative{why}
		}
	} else if risk != "" {
		log.Warn(risk)
	}
	if m, ok := ports[0].(link.XSKMode); ok {
		sockets = m.XSKMode()
	}
	if plan.ports == 1 {
		log.Info("io afxdp: VIP frames through AF_XDP (queue 0; bare SYNs through a second socket, trusted clients' through a third); ARP, NDP, tagged frames, frames over 1792 bytes and frames with offload state through AF_PACKET",
			"xdp", mode, "af_xdp", sockets, "interface", ifname, "umem MiB", link.XDPPortMemory(1)>>20)
	} else {
		log.Info("io afxdp: one worker per receive queue, each with its AF_XDP sockets on its queue (bare SYNs through a second, trusted clients' through a third) taking the VIP frames of its own clients; a client's frames on another queue, ARP, NDP, tagged frames and frames with offload state through the workers' AF_PACKET fanout group, sorted by client address",
			"workers", plan.ports, "xdp", mode, "af_xdp", sockets, "interface", ifname,
			"ipv4 prefix", bitsOr(h.Bits4, 32), "ipv6 prefix", bitsOr(h.Bits6, 128),
			"umem MiB", plan.ports*link.XDPPortMemory(plan.ports)>>20)
	}
	if plan.note != "" {
		log.Info("io afxdp: " + plan.note)
	}
	if w := plan.warning(ifname); w != "" {
		log.Warn(w)
	}
	return ports, nil
}

// rxQueues is how many receive queues ifname has, as far as drlb can
// tell (countRxQueues): ethtool's channels, the queues in use; where the
// driver reports none, netlink's count of the queues the device
// allocated, which it may use all of or not.
func rxQueues(ifname string) rxQueueCount {
	n, err := ethtool.RxQueues(ifname)
	allocated := 0
	if err != nil || n <= 0 {
		if l, lerr := netlink.LinkByName(ifname); lerr == nil {
			allocated = l.Attrs().NumRxQueues
		}
	}
	return countRxQueues(n, err, allocated)
}

// autoIO picks the backend for -io auto on ifname with queues receive
// queues, and says why. It asks netlink in the caller's namespace:
// /sys/class/net shows the namespace sysfs was mounted in, which in a
// container or lab is another's.
func autoIO(ifname string, queues rxQueueCount) (io, why string) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return IOAFPacket, fmt.Sprintf("cannot read %s's link type (%v)", ifname, err)
	}
	return chooseIO(l.Type() != "device", queues)
}

// vipDropRuns reports whether attachVIPDrop tries the drop, on an
// AF_PACKET port or an AF_XDP one alike: not with KeepKernelCopy, and
// not on a VLAN trunk, where every VIP frame is tagged and the drop takes
// untagged frames only.
func vipDropRuns(cfg *config.Config, opts Options) bool {
	return !opts.KeepKernelCopy && cfg.VLAN == 0
}

// attachVIPDrop drops the kernel's copy of VIP frames at tc ingress
// (link.VIPDrop), unless opts.KeepKernelCopy, for an AF_PACKET port and
// an AF_XDP one alike. With AF_XDP, tc ingress sees only the frames the
// XDP program passed, and it passes VIP frames too: those over 1792
// bytes, all of them once it is detached from outside, and with several
// queues those of other workers' clients or of queues no worker serves
// (and those passed until the sockets were in its map, before Run
// attaches the drop). The AF_PACKET sockets beside the AF_XDP ones are
// ETH_P_ALL taps, as with AF_PACKET, so drlb has read each such frame
// before tc ingress runs. It returns nil when it does not
// drop: with KeepKernelCopy, on a VLAN trunk, or when the kernel refuses
// (tcx needs Linux 6.6, and CAP_BPF), which costs only CPU (and, with IP
// forwarding on, the host's own copy) and is logged.
func attachVIPDrop(cfg *config.Config, port link.Port, vips []netip.Addr, opts Options, log *slog.Logger) *link.VIPDrop {
	if !vipDropRuns(cfg, opts) {
		if cfg.VLAN != 0 && !opts.KeepKernelCopy {
			log.Info("kernel copy of VIP frames not dropped: the drop takes untagged frames, and on a VLAN trunk they all are tagged", "vlan", cfg.VLAN)
		}
		return nil
	}
	var slots *link.KernelFlowSlots
	if p, ok := port.(link.TCFlowPort); ok && (opts.KernelFlows || opts.KernelSYNs) {
		if slots = p.KernelFlowSlots(); slots != nil {
			defer slots.Close() // the program keeps the map
		}
	}
	drop, err := link.AttachVIPDrop(cfg.Interface, port.HardwareAddr(), vips, slots)
	if err != nil && slots != nil {
		for _, f := range []struct {
			on   bool
			flag string
		}{{opts.KernelFlows, "-kernel-flows"}, {opts.KernelSYNs, "-kernel-syns"}} {
			if f.on {
				log.Warn(f.flag+" off: the tc program that forwards kernel flows did not attach", "err", err)
			}
		}
		slots = nil
		drop, err = link.AttachVIPDrop(cfg.Interface, port.HardwareAddr(), vips, nil)
	}
	if err != nil {
		which := "VIP frames"
		if _, xdp := port.(link.XDPMode); xdp {
			which = "the VIP frames the XDP program passes (over 1792 bytes, other queues', all once detached)"
		}
		log.Warn("the kernel's copy of "+which+" is not dropped: its IP stack takes each one up to a route lookup (more CPU per frame)", "err", err)
		return nil
	}
	log.Info("kernel copy of VIP frames dropped at tc ingress, after drlb's sockets read them", "vips", vips, "kernel flows and SYNs", slots != nil)
	return drop
}

// vipsOffHost says, for each of vips an interface of this host holds,
// why it is refused (ErrVIPOnHost), as Run's start-up check does
// (doctor.VIPsOffHost): Director.vipsHeld. The host's addresses are read
// once for all of them.
func vipsOffHost(vips []netip.Addr) (map[netip.Addr]error, error) {
	addrs, err := doctor.System{}.Addrs()
	if err != nil {
		return nil, fmt.Errorf("director: reading the host's addresses: %w", err)
	}
	held := map[netip.Addr]error{}
	for _, v := range vips {
		for _, c := range doctor.VIPsOffHost(addrs, []netip.Addr{v}) {
			if c.Status == doctor.Fail {
				held[v] = fmt.Errorf("%w: %s; fix: %s", ErrVIPOnHost, c.Detail, c.Fix)
			}
		}
	}
	return held, nil
}

// kernelVIPs is Director.vipFollow for what Run put in the kernel per
// VIP: blackhole routes (nil: none) and the tc drop (nil: none). It keeps
// the VIP set the drop holds, which takes the whole set. Apply calls it
// with its lock held, one step at a time.
type kernelVIPs struct {
	holes   *blackholes
	drop    *link.VIPDrop
	current []netip.Addr
	log     *slog.Logger
}

// newKernelVIPs is nil (no follower) when Run put nothing in the kernel.
func newKernelVIPs(holes *blackholes, drop *link.VIPDrop, vips []netip.Addr, log *slog.Logger) vipFollower {
	if holes == nil && drop == nil {
		return nil
	}
	return &kernelVIPs{holes: holes, drop: drop, current: slices.Clone(vips), log: log}
}

// widen installs the added VIPs' blackhole routes (a forwarding kernel
// must drop its copy of their frames before the router learns them: Run
// refuses to start without them) and adds them to the drop's set. On an
// error it removes the routes it added and puts the drop's set back.
func (k *kernelVIPs) widen(added []netip.Addr) (undo func() error, err error) {
	var took []netip.Addr
	if k.holes != nil {
		if took, err = k.holes.add(added); err != nil {
			return nil, errors.Join(fmt.Errorf("%w (IP forwarding is on: a new VIP is served only with its blackhole route, as at start)", err), k.holes.giveBack(took))
		}
	}
	prev := k.current
	wide := slices.Clone(prev)
	for _, a := range added {
		if !slices.Contains(wide, a) {
			wide = append(wide, a)
		}
	}
	back := func() error {
		var errs []error
		if k.drop != nil {
			if err := k.drop.SetVIPs(prev); err != nil {
				errs = append(errs, fmt.Errorf("director: tc drop of the kernel's copy of VIP frames: %w", err))
			}
		}
		if k.holes != nil {
			errs = append(errs, k.holes.giveBack(took))
		}
		k.current = prev
		return errors.Join(errs...)
	}
	if k.drop != nil {
		// The drop saves CPU only (the blackhole routes keep a forwarding
		// kernel from sending duplicates): a set it will not take is
		// logged and does not refuse the change, as at start-up. Its set
		// is the new one after the swap (narrow: removed VIPs out first,
		// so 600 VIPs replaced by 600 others fit the map there).
		if err := k.drop.SetVIPs(wide); err != nil {
			k.log.Warn("reload: the tc drop of the kernel's copy of VIP frames does not take the new VIPs before the swap (only CPU is lost: the kernel throws its copy away); it is set to the new VIPs after it", "added", added, "err", err)
		}
	}
	k.current = wide
	return back, nil
}

// narrow takes the removed VIPs out of the drop's set and removes their
// blackhole routes; errors are logged (Director.narrowVIPs).
func (k *kernelVIPs) narrow(removed []netip.Addr) {
	k.current = slices.DeleteFunc(slices.Clone(k.current), func(a netip.Addr) bool { return slices.Contains(removed, a) })
	if k.drop != nil {
		if err := k.drop.SetVIPs(k.current); err != nil {
			k.log.Warn("reload: the kernel's copy of the removed VIPs' frames is still dropped at tc ingress", "removed", removed, "err", err)
		}
	}
	if k.holes != nil {
		_ = k.holes.remove(removed) // logged, with the command that removes a route left
	}
}

// warnXDPTX says when an XDP flag cannot work as asked: -xdp-generic or
// -xdp-copy on a port that is not AF_XDP (it has no XDP program and no
// AF_XDP socket), or -kernel-syns or -kernel-flows on an AF_XDP port on
// a veth in native mode, where XDP_TX is dropped unless the peer takes it
// (an XDP program on the peer; GRO on the peer got the first frames
// through in the lab, then none). -kernel-syns and -kernel-flows work
// without AF_XDP too (a tc program).
func warnXDPTX(ifname string, port link.Port, opts Options, log *slog.Logger) {
	m, xdp := port.(link.XDPMode)
	for _, f := range []struct {
		on, needsXDP, needsTX bool
		flag                  string
	}{
		{opts.KernelSYNs, false, true, "-kernel-syns"}, {opts.KernelFlows, false, true, "-kernel-flows"},
		{opts.XDPGeneric, true, false, "-xdp-generic"}, {opts.XDPCopy, true, false, "-xdp-copy"},
	} {
		switch {
		case !f.on:
		case !xdp:
			if f.needsXDP {
				log.Warn(f.flag + " has no effect: the port is not AF_XDP (-io afxdp)")
			}
		case f.needsTX:
			if lk, err := netlink.LinkByName(ifname); err == nil && lk.Type() == "veth" && m.XDPMode() == "driver" {
				log.Warn(f.flag+" on a veth in native XDP mode: its XDP_TX is dropped unless the peer has an XDP program; -xdp-generic avoids that", "interface", ifname)
			}
		}
	}
}

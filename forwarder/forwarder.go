package forwarder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/conntable"
	"github.com/drlb/drlb/scheduler"
)

// Meta is what the caller knows about a frame beyond its bytes.
type Meta struct {
	// Time is when the frame arrived, in unix nanoseconds (the pcap
	// timestamp in a replay). Connection timeouts run on it.
	Time int64
	// CsumPartial says the frame's L4 checksum is partial (a local sender
	// relied on checksum offload, TP_STATUS_CSUMNOTREADY) and must be
	// completed before the frame leaves without offload information.
	// Leave it false when the frame is sent back with its virtio-net
	// header: the kernel completes the checksum then.
	CsumPartial bool
	// CsumStart and CsumOffset locate the checksum (frame offset of the
	// summed area, and of the field within it); zero means derive them
	// from the TCP or UDP header.
	CsumStart, CsumOffset uint16
	// Super says the frame is a GSO super-frame (merged by GRO or sent
	// with TSO) that the kernel segments on the way out: it may exceed
	// the MTU by design.
	Super bool
}

// Options tune a Forwarder.
type Options struct {
	// MAC is the director's MAC address. Nil means "the destination MAC of
	// each frame", as `drlb replay` does by default.
	MAC net.HardwareAddr
	// OwnMAC, with a nil MAC, is the director's MAC all the same: frames
	// from it are its own (ReasonOwnFrame), as they are live. A replay
	// that takes the director's MAC per frame learns it from the capture.
	OwnMAC net.HardwareAddr
	// Seed seeds the connection table hash (0 gives repeatable replays).
	Seed uint64
	// SweepBudget is how many connection table slots each Process call
	// examines for expiry (default 8; Tick sweeps more when traffic is idle).
	SweepBudget int
	// MTU is the LAN's MTU. A frame to forward whose IP packet is larger
	// (and is not a super-frame) is dropped: with don't-fragment set the
	// result is ReasonTooBig and the caller answers with TooBig, as IPVS
	// does; otherwise ReasonTooBigNoDF. 0 disables the check (replay).
	MTU int
}

// ErrUnknownServer is returned by the control methods for an index or
// address that names no real server.
var ErrUnknownServer = errors.New("forwarder: no such real server")

// Forwarder is the DR data path for one configuration.
type Forwarder struct {
	mac      uint64 // packed director MAC, 0 = per frame
	own      uint64 // packed director MAC for the own-frame check, 0 = none
	services []*service
	byKey    map[svcKey]*service
	vips     map[netip.Addr]struct{}
	table    *conntable.Table // the connection table
	frags    fragTable
	timeouts timeouts
	sweep    int
	mtu      int

	counts [numReasons]atomic.Uint64

	// Scratch space reused by every Process call; interface calls would
	// otherwise move these to the heap once per packet.
	key  conntable.Key
	tkey conntable.Key
	flow scheduler.Flow
}

// New builds a Forwarder for cfg. Real servers whose config has a MAC are
// usable at once; the others wait for SetMAC.
func New(cfg *config.Config, opts Options) (*Forwarder, error) {
	f := &Forwarder{
		byKey:    make(map[svcKey]*service, len(cfg.Services)),
		vips:     make(map[netip.Addr]struct{}),
		timeouts: newTimeouts(cfg.Timeouts),
		sweep:    opts.SweepBudget,
		mtu:      opts.MTU,
	}
	if f.sweep == 0 {
		f.sweep = 8
	}
	if opts.MAC != nil {
		if len(opts.MAC) != 6 {
			return nil, fmt.Errorf("forwarder: director MAC %v is not a 6-byte Ethernet address", opts.MAC)
		}
		f.mac = packMAC(opts.MAC)
		f.own = f.mac
	} else if opts.OwnMAC != nil {
		if len(opts.OwnMAC) != 6 {
			return nil, fmt.Errorf("forwarder: director MAC %v is not a 6-byte Ethernet address", opts.OwnMAC)
		}
		f.own = packMAC(opts.OwnMAC)
	}
	if len(cfg.Services) > 1<<16 {
		return nil, fmt.Errorf("forwarder: %d services, at most 65536", len(cfg.Services))
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = config.DefaultMaxConns
	}
	t, err := conntable.New(conntable.Options{Max: maxConns, Seed: opts.Seed, OnExpire: f.onExpire})
	if err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	f.table = t
	for i, sc := range cfg.Services {
		// An unknown scheduler name fails in rebuildScheduler below.
		traits, _ := scheduler.TraitsOf(sc.Scheduler)
		s := &service{
			id:         uint16(i),
			key:        svcKey{proto: uint8(sc.Protocol), vip: sc.VIP.Unmap(), port: sc.Port},
			cfg:        sc,
			consistent: traits.Consistent,
		}
		if len(sc.RealServers) > 1<<16 {
			return nil, fmt.Errorf("forwarder: service %s: %d real servers, at most 65536", s.name(), len(sc.RealServers))
		}
		for _, rc := range sc.RealServers {
			r := &realServer{addr: rc.Address.Unmap()}
			r.weight.Store(int32(rc.Weight))
			r.available.Store(true)
			r.mac.Store(packMAC(rc.MAC))
			s.reals = append(s.reals, r)
		}
		s.nreal, s.sorry = len(s.reals), -1
		if ss := sc.SorryServer; ss != nil {
			r := &realServer{addr: ss.Address.Unmap()}
			r.weight.Store(1)
			r.available.Store(true)
			r.mac.Store(packMAC(ss.MAC))
			s.sorry = len(s.reals)
			s.reals = append(s.reals, r)
		}
		if _, dup := f.byKey[s.key]; dup {
			return nil, fmt.Errorf("forwarder: service %s defined twice", s.name())
		}
		if err := s.rebuildScheduler(); err != nil {
			return nil, fmt.Errorf("forwarder: service %s: %w", s.name(), err)
		}
		f.services = append(f.services, s)
		f.byKey[s.key] = s
		f.vips[s.key.vip] = struct{}{}
	}
	return f, nil
}

func (s *service) name() string {
	return fmt.Sprintf("%s %s", config.Protocol(s.key.proto), netip.AddrPortFrom(s.key.vip, s.key.port))
}

// onExpire keeps the per-server connection counters right when an entry
// leaves the table, however it leaves.
func (f *Forwarder) onExpire(e *conntable.Entry) {
	f.account(e.Service, e.Real, e.State, -1)
}

func (f *Forwarder) account(svc, ri uint16, state uint8, delta int32) {
	if int(svc) >= len(f.services) || int(ri) >= len(f.services[svc].reals) {
		return
	}
	r := f.services[svc].reals[ri]
	switch state {
	case stateEstablished:
		r.active.Add(delta)
	case stateTemplate:
		r.persistent.Add(delta)
	default:
		r.inactive.Add(delta)
	}
}

// setState moves e to state and restarts its timeout.
func (f *Forwarder) setState(e *conntable.Entry, state uint8, now int64) {
	if e.State != state {
		f.account(e.Service, e.Real, e.State, -1)
		f.account(e.Service, e.Real, state, +1)
		e.State = state
	}
	f.table.SetTimeout(e, now, f.timeouts[state])
}

func (f *Forwarder) result(v Verdict, r Reason, svc, ri int) Result {
	return Result{Verdict: v, Reason: r, Service: svc, Real: ri}
}

// Tick expires idle connections; call it now and then when no frames flow.
func (f *Forwarder) Tick(now int64, budget int) int { return f.table.Sweep(now, budget) }

// Process decides what happens to one frame and, for Forward, rewrites its
// MAC addresses in place. It never panics and allocates nothing.
func (f *Forwarder) Process(frame []byte, m *Meta) Result {
	res := f.process(frame, m)
	f.counts[res.Reason].Add(1)
	return res
}

func (f *Forwarder) process(frame []byte, m *Meta) Result {
	now := m.Time
	f.table.Sweep(now, f.sweep)

	var p packet
	err := decode(frame, &p)
	if errors.Is(err, errNotIP) {
		return f.result(Pass, ReasonNotIP, -1, -1)
	}
	if !p.dst.IsValid() {
		return f.result(Drop, ReasonMalformed, -1, -1)
	}
	if _, ok := f.vips[p.dst]; !ok {
		return f.result(Pass, ReasonNotVIP, -1, -1)
	}
	if err != nil {
		return f.result(Drop, ReasonMalformed, -1, -1)
	}

	dirMAC := macAt(frame[0:6])
	if f.own != 0 && macAt(frame[6:12]) == f.own {
		return f.result(Drop, ReasonOwnFrame, -1, -1)
	}
	if f.mac != 0 && dirMAC != f.mac {
		return f.result(Pass, ReasonNotOurs, -1, -1)
	}

	var res Result
	switch {
	case p.frag && !p.fragFirst:
		res = f.fragment(&p, now)
	case p.icmpErr:
		res = f.icmpError(&p, now)
	case p.proto == protoTCP || p.proto == protoUDP:
		res = f.connection(&p, now)
	default:
		return f.result(Drop, ReasonUnsupported, -1, -1)
	}
	if res.Verdict != Forward {
		return res
	}

	if f.mtu > 0 && !m.Super && p.l3End-p.l3 > f.mtu {
		if p.family == 6 || frame[p.l3+6]&0x40 != 0 {
			return f.result(Drop, ReasonTooBig, res.Service, res.Real)
		}
		return f.result(Drop, ReasonTooBigNoDF, res.Service, res.Real)
	}
	s := f.services[res.Service]
	r := s.reals[res.Real]
	mac := r.mac.Load()
	if mac&macKnown == 0 {
		return f.result(Drop, ReasonNoMAC, res.Service, res.Real)
	}
	putMAC(frame[6:12], dirMAC)
	putMAC(frame[0:6], mac)
	if m.CsumPartial && p.l4 != 0 {
		f.completeChecksum(frame, &p, m)
	}
	if p.frag && p.fragFirst {
		k := fragKeyOf(&p)
		f.frags.put(&k, uint16(res.Service), uint16(res.Real), now)
	}
	n := uint64(p.l3End - p.l3)
	r.packets.Add(1)
	r.bytes.Add(n)
	s.packets.Add(1)
	s.bytes.Add(n)
	return res
}

func macAt(b []byte) uint64 {
	_ = b[5]
	return macKnown | uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 |
		uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

func (f *Forwarder) completeChecksum(frame []byte, p *packet, m *Meta) {
	start, off := int(m.CsumStart), int(m.CsumOffset)
	if start == 0 {
		start = p.l4
		switch p.proto {
		case protoTCP:
			off = 16
		case protoUDP:
			off = 6
		default:
			return
		}
	}
	completeChecksum(frame, start, off, p.l3End, p.proto == protoUDP)
}

// lookupService finds the service for (proto, VIP, port), then the VIP's
// every-port service.
func (f *Forwarder) lookupService(proto uint8, vip netip.Addr, port uint16) *service {
	if s, ok := f.byKey[svcKey{proto: proto, vip: vip, port: port}]; ok {
		return s
	}
	if s, ok := f.byKey[svcKey{proto: proto, vip: vip}]; ok {
		return s
	}
	return nil
}

func (f *Forwarder) setKey(k *conntable.Key, fl *flow) {
	*k = conntable.Key{
		CIP: fl.src.As16(), VIP: fl.dst.As16(),
		CPort: fl.srcPort, VPort: fl.dstPort,
		Proto: fl.proto, Kind: conntable.KindConn,
	}
}

// connection handles a TCP or UDP packet with ports.
func (f *Forwarder) connection(p *packet, now int64) Result {
	s := f.lookupService(p.proto, p.dst, p.dstPort)
	if s == nil {
		return f.result(Drop, ReasonNoService, -1, -1)
	}
	tcp := p.proto == protoTCP
	syn := tcp && p.tcpFlags&(tcpSYN|tcpACK|tcpRST|tcpFIN) == tcpSYN

	f.setKey(&f.key, &p.flow)
	reason := ReasonNew
	if e := f.table.Lookup(&f.key, now); e != nil {
		ri := int(e.Real)
		switch {
		case int(e.Service) != int(s.id) || ri >= len(s.reals):
			f.table.Delete(e) // from an older configuration
		case syn && closing(e.State):
			f.table.Delete(e)
			reason = ReasonReused
		case !s.reals[ri].usable() || s.sorryGone(ri) && !s.cfg.SorryServer.Inhibit:
			// expire_nodest_conn: the server is gone, so the client
			// should learn fast; a new SYN is scheduled elsewhere.
			f.table.Delete(e)
			if !syn {
				return f.result(Drop, ReasonServerGone, int(s.id), ri)
			}
		default:
			state := stateUDP
			if tcp {
				state = tcpNext(e.State, p.tcpFlags)
			}
			f.setState(e, state, now)
			return f.result(Forward, ReasonExisting, int(s.id), ri)
		}
	}

	state := stateUDP
	if tcp {
		if !syn {
			if !s.consistent {
				return f.result(Drop, ReasonNoConn, int(s.id), -1)
			}
			reason = ReasonAdopted
		}
		state = tcpNext(stateNone, p.tcpFlags)
		if !syn && p.tcpFlags&(tcpSYN|tcpRST|tcpFIN) == 0 {
			state = stateEstablished // mid-flow data after a director restart
		}
	}
	ri, how := f.pick(s, &p.flow, now)
	if ri < 0 {
		return f.result(Drop, how, int(s.id), -1)
	}
	if (how == ReasonPersistent || how == ReasonSorry) && reason == ReasonNew {
		reason = how
	}
	e, err := f.table.Insert(&f.key, now)
	if err != nil {
		return f.result(Drop, ReasonTableFull, int(s.id), ri)
	}
	e.Service, e.Real, e.State = s.id, uint16(ri), state
	f.account(s.id, uint16(ri), state, +1)
	f.table.SetTimeout(e, now, f.timeouts[state])
	s.connections.Add(1)
	s.reals[ri].connections.Add(1)
	return f.result(Forward, reason, int(s.id), ri)
}

// pick chooses a real server for a new connection: a live persistence
// template first, then the scheduler, then, while no real server can take
// connections, the sorry server. It returns -1 and a drop reason when
// nothing can take it.
func (f *Forwarder) pick(s *service, fl *flow, now int64) (int, Reason) {
	persist := s.cfg.Persistence > 0
	if persist {
		f.templateKey(s, fl)
		if t := f.table.Lookup(&f.tkey, now); t != nil {
			ri := int(t.Real)
			// Like IPVS with expire_quiescent_template=1: a template
			// never pins a client to a quiesced or failed server.
			if int(t.Service) == int(s.id) && ri < len(s.reals) && s.reals[ri].usable() && s.reals[ri].effectiveWeight() > 0 && !s.sorryGone(ri) {
				f.table.SetTimeout(t, now, s.cfg.Persistence)
				return ri, ReasonPersistent
			}
			f.table.Delete(t)
		}
	}
	how := ReasonNew
	ri, ok := f.schedule(s, fl)
	if !ok {
		// Like keepalived's quorum of 1: the sorry server stands in
		// only while no real server can take connections at all (a
		// hash bucket whose server is down still drops, as in IPVS).
		if s.sorry < 0 || s.live.Load() || !s.reals[s.sorry].usable() {
			return -1, ReasonNoServer
		}
		ri, how = s.sorry, ReasonSorry
	}
	if persist {
		if t, err := f.table.Insert(&f.tkey, now); err == nil {
			t.Service, t.Real, t.State = s.id, uint16(ri), stateTemplate
			f.account(s.id, uint16(ri), stateTemplate, +1)
			f.table.SetTimeout(t, now, s.cfg.Persistence)
		}
	}
	return ri, how
}

// schedule asks the service's scheduler; it never returns a server that is
// not usable, whatever the scheduler's snapshot says.
func (f *Forwarder) schedule(s *service, fl *flow) (int, bool) {
	sc := s.sched.Load()
	if sc == nil {
		return -1, false
	}
	f.flow = scheduler.Flow{Proto: fl.proto, Src: fl.src, SrcPort: fl.srcPort, Dst: fl.dst, DstPort: fl.dstPort}
	ri, err := sc.Pick(&f.flow, s)
	if err != nil || ri < 0 || ri >= len(s.reals) || !s.reals[ri].usable() {
		return -1, false
	}
	return ri, true
}

func (f *Forwarder) templateKey(s *service, fl *flow) {
	cip := fl.src
	bits := s.cfg.PersistenceBits
	if cip.Is4() && (bits <= 0 || bits > 32) {
		bits = 32
	} else if !cip.Is4() && (bits <= 0 || bits > 128) {
		bits = 128
	}
	if pfx, err := cip.Prefix(bits); err == nil {
		cip = pfx.Addr()
	}
	f.tkey = conntable.Key{CIP: cip.As16(), VIP: fl.dst.As16(), VPort: s.key.port, Proto: fl.proto, Kind: conntable.KindTemplate}
}

// fragment forwards a non-first fragment to where its first fragment went.
func (f *Forwarder) fragment(p *packet, now int64) Result {
	k := fragKeyOf(p)
	if svc, ri, ok := f.frags.get(&k, now); ok && int(svc) < len(f.services) {
		s := f.services[svc]
		if int(ri) < len(s.reals) && s.reals[ri].usable() {
			return f.result(Forward, ReasonFragment, int(svc), int(ri))
		}
	}
	// The first fragment has not been seen (reordered or lost). A source
	// hash that ignores ports places it where the first one will go, so
	// it can be forwarded at once; anything else must drop it.
	var only *service
	for _, s := range f.services {
		if s.key.proto == p.proto && s.key.vip == p.dst {
			if only != nil {
				return f.result(Drop, ReasonFragNoFirst, -1, -1)
			}
			only = s
		}
	}
	if only == nil || !only.consistent || only.cfg.SchedOptions.HashPort || only.cfg.Persistence > 0 {
		return f.result(Drop, ReasonFragNoFirst, -1, -1)
	}
	ri, ok := f.schedule(only, &p.flow)
	if !ok {
		return f.result(Drop, ReasonFragNoFirst, int(only.id), -1)
	}
	return f.result(Forward, ReasonFragment, int(only.id), ri)
}

// icmpError forwards an ICMP error about a connection (fragmentation
// needed, unreachable, time exceeded) to the real server that owns it, so
// path MTU discovery works through the director.
func (f *Forwarder) icmpError(p *packet, now int64) Result {
	in := &p.inner
	if in.dst != p.dst {
		return f.result(Drop, ReasonICMPNoConn, -1, -1)
	}
	s := f.lookupService(in.proto, in.dst, in.dstPort)
	if s == nil {
		return f.result(Drop, ReasonNoService, -1, -1)
	}
	f.setKey(&f.key, in)
	if e := f.table.Lookup(&f.key, now); e != nil && int(e.Service) == int(s.id) && int(e.Real) < len(s.reals) {
		if s.reals[e.Real].usable() {
			return f.result(Forward, ReasonICMP, int(s.id), int(e.Real))
		}
		return f.result(Drop, ReasonServerGone, int(s.id), int(e.Real))
	}
	if s.consistent && s.cfg.Persistence == 0 {
		if ri, ok := f.schedule(s, in); ok {
			return f.result(Forward, ReasonICMP, int(s.id), ri)
		}
	}
	return f.result(Drop, ReasonICMPNoConn, int(s.id), -1)
}

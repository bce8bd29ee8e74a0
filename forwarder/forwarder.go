package forwarder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/connsync"
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
	// Workers is how many workers share the configuration (see Workers),
	// each with a connection table of max_conns/Workers entries (rounded
	// up). Default 1.
	Workers int
}

// ErrUnknownServer is returned by the control methods for an index or
// address that names no real server.
var ErrUnknownServer = errors.New("forwarder: no such real server")

// Forwarder is the DR data path: one worker of it. Workers made together
// (Options.Workers, see Workers) share the configuration, the real servers
// with their counters and MACs, and the schedulers (core); each has its own
// connection table, fragment table and scratch space, so that workers on
// different cores process frames with no lock in common. The control
// methods (Apply, SetMAC, SetHealth, Stats, ...) act on the shared core,
// whichever worker they are called on; Process, Prefetch, Tick and the
// table readers (RangeConnEntries, TableLen, sync) act on one worker's
// table and belong to whoever runs that worker.
type Forwarder struct {
	*core
	id    int              // this worker's index in Workers()
	table *conntable.Table // this worker's connection table
	frags fragTable

	counts [numReasons]atomic.Uint64 // this worker's; Count sums the workers'
	held   heldCounts                // counts not published yet (heldcounts.go)

	// Table pressure (pressure.go): written by Process, read by anyone.
	pressure   atomic.Bool
	synEvicted atomic.Uint64
	stateless  statelessState // stateless SYNs (stateless.go)

	// sync records table changes for the peers (EnableSync; sync.go).
	sync syncLog
	// hs collects clients that completed a handshake (handshakes.go).
	hs handshakes

	// Scratch space reused by every Process call; interface calls would
	// otherwise move these to the heap once per packet.
	key  conntable.Key
	tkey conntable.Key
	flow scheduler.Flow
	// preKeys are Prefetch's keys: a field, as the lookup keys are, so
	// that passing their addresses to the table moves nothing to the heap.
	preKeys [PrefetchBatch]conntable.Key
	// pre is what Ahead prepared for the frame Process gets next (its
	// parse and hash), or nil; fastExisting takes it if it is that
	// frame's, and clears it.
	pre *prepared

	// fastDid is what fastExisting did for the current frame before
	// handing it to the full path, which must not do it again (fastpath.go).
	fastDid fastSteps
	// fastHits counts the frames fastExisting forwarded, fastPrepared
	// those it took Ahead's parse and hash for (tests read them).
	fastHits, fastPrepared uint64

	// kf collects the flows handed to and taken back from the kernel
	// (kernelflows.go); kernelFrames counts what the kernel forwarded,
	// kernelOut the flows handed out and not taken back; kernelSYNs the
	// bare SYNs the kernel forwarded itself under pressure
	// (NoteStatelessSYNs).
	kf           kernelFlows
	kernelFrames atomic.Uint64
	kernelOut    atomic.Int64
	kernelSYNs   atomic.Uint64
	// changed gets a token after every change a control method or a
	// swap made (Changes), on every worker.
	changed chan struct{}
}

// core is what the workers of one Forwarder share.
type core struct {
	mac      uint64 // packed director MAC, 0 = per frame
	own      uint64 // packed director MAC for the own-frame check, 0 = none
	sweep    int
	mtu      int
	maxConns int // config max_conns, split among the workers' tables

	// cur is the running configuration. Process loads it once per frame;
	// Apply swaps it (see Apply for who may run when).
	cur atomic.Pointer[state]
	// ctl serialises whatever changes real servers or schedulers (the
	// control methods, Apply), so that Apply builds the next state from
	// values nobody changes meanwhile. Process never takes it.
	ctl sync.Mutex

	pressureEpisodes atomic.Uint64
	// synGen counts configuration swaps and MAC changes
	// (StatelessSYNGeneration).
	synGen atomic.Uint64
	// preMin and preMinBytes are PrefetchMinConns and
	// PrefetchMinTableBytes; tests lower them to exercise Prefetch.
	preMin, preMinBytes int
	// noFast turns fastExisting off, for the tests that hold it to the
	// full path's results.
	noFast bool
	// statefulSYN turns stateless SYNs off; tests set it to exercise the
	// stateful defence (short SYN_RECV timeout, eviction) alone.
	statefulSYN bool

	workers []*Forwarder // every worker, the one New returned first
}

// New builds a Forwarder for cfg. Real servers whose config has a MAC are
// usable at once; the others wait for SetMAC.
func New(cfg *config.Config, opts Options) (*Forwarder, error) {
	c := &core{
		sweep:       opts.SweepBudget,
		mtu:         opts.MTU,
		preMin:      PrefetchMinConns,
		preMinBytes: PrefetchMinTableBytes,
	}
	if c.sweep == 0 {
		c.sweep = 8
	}
	if opts.MAC != nil {
		if len(opts.MAC) != 6 {
			return nil, fmt.Errorf("forwarder: director MAC %v is not a 6-byte Ethernet address", opts.MAC)
		}
		c.mac = packMAC(opts.MAC)
		c.own = c.mac
	} else if opts.OwnMAC != nil {
		if len(opts.OwnMAC) != 6 {
			return nil, fmt.Errorf("forwarder: director MAC %v is not a 6-byte Ethernet address", opts.OwnMAC)
		}
		c.own = packMAC(opts.OwnMAC)
	}
	c.maxConns = cfg.MaxConns
	if c.maxConns <= 0 {
		c.maxConns = config.DefaultMaxConns
	}
	n := max(opts.Workers, 1)
	if n > MaxWorkers {
		return nil, fmt.Errorf("forwarder: %d workers, at most %d", n, MaxWorkers)
	}
	perWorker := (c.maxConns + n - 1) / n
	for i := range n {
		f := &Forwarder{core: c, id: i, changed: make(chan struct{}, 1)}
		t, err := conntable.New(conntable.Options{Max: perWorker, Seed: opts.Seed + uint64(i), OnExpire: f.onExpire, Evictable: evictable})
		if err != nil {
			// Name what the operator set: the per-worker Max alone
			// (max_conns/workers) matched nothing in the config.
			return nil, fmt.Errorf("forwarder: max_conns %d over %d workers (%d entries per worker's table): %w", c.maxConns, n, perWorker, err)
		}
		f.table = t
		c.workers = append(c.workers, f)
	}
	f := c.workers[0]
	next, commit, _, err := f.prepare(&state{}, cfg, 0)
	if err != nil {
		return nil, err
	}
	commit()
	f.cur.Store(next)
	return f, nil
}

// MaxWorkers bounds Options.Workers.
const MaxWorkers = 64

// Workers returns every worker of the Forwarder, the one New returned
// first. Each is driven by one goroutine at a time (Process, Prefetch,
// Tick and the table readers); the caller decides which frames each sees,
// and must send every frame of a connection (and of a client, with
// persistence) to the same worker, since a worker sees only its own table.
func (f *Forwarder) Workers() []*Forwarder { return f.workers }

// Prefault has the kernel back every worker's connection table now
// (conntable.Table.Prefault), so that the first connections after start
// do not wait for page faults: a live director calls it before it
// serves. It must not run while a worker processes frames. An error says
// the kernel refused the bulk request and the pages were touched one by
// one instead; the tables are whole either way.
func (f *Forwarder) Prefault() error {
	var first error
	for _, w := range f.workers {
		if err := w.table.Prefault(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *service) name() string {
	return fmt.Sprintf("%s %s", config.Protocol(s.key.proto), netip.AddrPortFrom(s.key.vip, s.key.port))
}

// onExpire keeps the per-server connection counters right when an entry
// leaves the table, however it leaves.
func (f *Forwarder) onExpire(e *conntable.Entry) {
	f.takeBack(e)
	f.account(e.Service, e.Real, e.State, -1)
}

// account moves the counter of state of the real server an entry names by
// delta. The entry's slots find the server even after it left the
// configuration: Apply keeps a slot while entries name it.
func (f *Forwarder) account(svc, ri uint16, state uint8, delta int32) {
	if _, r := f.cur.Load().owner(svc, ri); r != nil {
		r.count(state, delta)
	}
}

// count moves r's counter of state by delta. SYN_RECV counts as active, as
// in Linux since 2016 (tcp_state_active): counted inactive, sed and nq did
// not see a handshake under way (lc and wlc weighed it 1/256), so every
// SYN of a burst within one round-trip went to the same server.
func (r *realServer) count(state uint8, delta int32) {
	switch state {
	case stateEstablished, stateSynRecv:
		r.active.Add(delta)
	case stateTemplate:
		r.persistent.Add(delta)
	default:
		r.inactive.Add(delta)
	}
}

// setState moves e (owned by r) to state and restarts its timeout.
func (f *Forwarder) setState(st *state, e *conntable.Entry, r *realServer, state uint8, now int64) {
	if e.State != state {
		r.count(e.State, -1)
		r.count(state, +1)
		e.State = state
	}
	f.table.SetTimeout(e, now, f.timeout(st, state))
}

func (f *Forwarder) result(v Verdict, r Reason, svc, ri int) Result {
	return Result{Verdict: v, Reason: r, Service: svc, Real: ri}
}

// The live director's idle sweep (director.sweepIdle): every
// IdlePass/IdleTicks it runs Tick over the next TableSlots/IdleTicks+1
// slots, IdleChunk at a time, so that an expired entry leaves the table
// within IdlePass even when no frames flow (IPVS's per-connection timers
// are exact; this is close enough for the counters people read, and for
// the table pressure, which counts the entries not yet swept).
const (
	IdlePass  = 4 * time.Second
	IdleTicks = 8
	IdleChunk = 1 << 12
)

// IdleSweep is one tick of the idle sweep at now, as the live director
// runs it (a replay calls it on capture time).
func (f *Forwarder) IdleSweep(now int64) {
	perTick := f.TableSlots()/IdleTicks + 1
	for done := 0; done < perTick; done += IdleChunk {
		f.Tick(now, IdleChunk)
	}
}

// Tick expires idle connections; call it now and then when no frames flow.
// It also brings the table pressure up to date with what the sweep left
// (Process does so only for frames that reach it): a flood that stopped
// ends pressure while the director is idle, in Overload and for
// StatelessSYNsOn, not only once the next connection comes.
func (f *Forwarder) Tick(now int64, budget int) int {
	n := f.table.Sweep(now, budget)
	f.updatePressure(now)
	return n
}

// Process decides what happens to one frame and, for Forward, rewrites its
// MAC addresses in place. It never panics and allocates nothing.
func (f *Forwarder) Process(frame []byte, m *Meta) Result {
	res := f.process(frame, m)
	f.countReason(res.Reason)
	return res
}

func (f *Forwarder) process(frame []byte, m *Meta) Result {
	now := m.Time
	f.table.Sweep(now, f.sweep)
	st := f.cur.Load()
	if res, ok := f.fastExisting(st, frame, m, now); ok {
		return res
	}

	var p packet
	err := decode(frame, &p)
	if err == errNotIP {
		return f.result(Pass, ReasonNotIP, -1, -1)
	}
	if !p.dst.IsValid() {
		return f.result(Drop, ReasonMalformed, -1, -1)
	}
	if st.vipx.find(p.dst) == nil { // st.vips, without the map's hash
		return f.result(Pass, ReasonNotVIP, -1, -1)
	}
	if err != nil {
		return f.result(Drop, ReasonMalformed, -1, -1)
	}

	dirMAC := macAt(frame[0:6])
	if f.own != 0 && macAt(frame[6:12]) == f.own {
		return f.result(Drop, ReasonOwnFrame, -1, -1)
	}
	// A group address (broadcast, multicast: the I/G bit) is never the
	// director's, even when its MAC is each frame's destination (f.mac
	// 0): forwarded, the frame left with it as its source MAC. IPVS
	// takes PACKET_HOST frames only.
	if f.mac != 0 && dirMAC != f.mac || frame[0]&1 != 0 {
		return f.result(Pass, ReasonNotOurs, -1, -1)
	}

	var res Result
	switch {
	case p.frag && !p.fragFirst:
		res = f.fragment(st, &p, now)
	case p.icmpErr:
		res = f.icmpError(st, &p, now)
	case p.proto == protoTCP || p.proto == protoUDP:
		res = f.connection(st, &p, now)
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
	s := st.services[res.Service]
	r := s.server(res.Real)
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
		f.frags.put(&k, s.slot, r.slot, now)
	}
	f.countForwarded(s, r, p.l3End-p.l3)
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

func (f *Forwarder) setKey(k *conntable.Key, fl *flow) {
	// Field by field: a composite literal is built in a temporary and
	// copied, which showed in profiles.
	k.CIP, k.VIP = fl.src.As16(), fl.dst.As16()
	k.CPort, k.VPort = fl.srcPort, fl.dstPort
	k.Proto, k.Kind = fl.proto, conntable.KindConn
}

// noService answers a TCP or UDP packet no service takes. One of a
// connection whose service a reload removed ends as a removed server's
// does, ReasonServerGone (expire_nodest_conn: the client learns at once,
// and the entry goes); any other is ReasonNoService.
func (f *Forwarder) noService(st *state, p *packet, now int64) Result {
	f.setKey(&f.key, &p.flow)
	e := f.table.Lookup(&f.key, now)
	if e == nil || int(e.Service) >= len(st.slots) || st.slots[e.Service] == nil || st.slots[e.Service].idx >= 0 {
		return f.result(Drop, ReasonNoService, -1, -1)
	}
	gone := st.slots[e.Service]
	if r := gone.ref(e.Real).r; r != nil {
		f.record(connsync.OpEnd, e, gone, r, 0, now)
	}
	f.table.Delete(e)
	if p.proto == protoTCP && bareSYN(p.tcpFlags) {
		return f.result(Drop, ReasonNoService, -1, -1)
	}
	return f.result(Drop, ReasonServerGone, -1, -1)
}

// connection handles a TCP or UDP packet with ports.
func (f *Forwarder) connection(st *state, p *packet, now int64) Result {
	s := st.lookupService(p.proto, p.dst, p.dstPort)
	if s == nil {
		return f.noService(st, p, now)
	}
	did := f.fastDid
	f.fastDid = fastNothing
	if did == fastNothing {
		f.updatePressure(now)
	}
	tcp := p.proto == protoTCP
	syn := tcp && bareSYN(p.tcpFlags)

	f.setKey(&f.key, &p.flow)
	reason := ReasonNew
	var e *conntable.Entry
	if did != fastFoundNothing {
		e = f.table.Lookup(&f.key, now)
	}
	if e != nil {
		var ref realRef
		if e.Service == s.slot {
			ref = s.ref(e.Real)
		}
		switch {
		case ref.r == nil:
			f.table.Delete(e) // another service's: one since removed
		case syn && (closing(e.State) || ref.r.effectiveWeight() == 0):
			// A new connection on an old one's ports: scheduled afresh
			// once the old one closes, or at once if its server is
			// quiesced (IPVS with expire_nodest_conn: a server that
			// ended the old one by a reset DR never saw would keep the
			// port's clients for the whole timeout).
			f.table.Delete(e)
			reason = ReasonReused
		case ref.idx < 0 || !ref.r.available.Load() || ref.r.drainOver(now) ||
			s.sorryGone(ref.r) && !s.cfg.SorryServer.Inhibit:
			// expire_nodest_conn: the server is gone (removed, failed,
			// or quiesced past its drain timeout), so the client should
			// learn fast; a new SYN is scheduled elsewhere. A server
			// whose MAC is unknown (its ARP/NDP unanswered) is not gone:
			// its connections' frames are dropped (no-mac, below) and
			// go on once it answers, as the kernel's would.
			f.record(connsync.OpEnd, e, s, ref.r, 0, now)
			f.table.Delete(e)
			// A UDP datagram is scheduled afresh at once, as IPVS's
			// expire_nodest_conn does (ip_vs_in: cp = NULL, then
			// ip_vs_try_to_schedule): a datagram has no reset to
			// tell its client, so dropping it only lost it and made
			// the client wait for its retry (a DNS query's seconds).
			if tcp && !syn {
				return f.result(Drop, ReasonServerGone, s.idx, int(ref.idx))
			}
		default:
			state := stateUDP
			if tcp {
				state = tcpNext(e.State, p.tcpFlags)
			}
			old := e.State
			// Before setState renews the timeout resendDue reads (as
			// fastExisting asks it).
			send := f.sync.events != nil && (old != state || f.resendDue(e, now, f.timeout(st, state))) && !f.syncWithheld(state)
			// Whatever brought the frame here (a FIN or RST, a sync
			// record due, a frame over the MTU), the kernel gives the
			// flow back; fastExisting hands it out again.
			f.takeBack(e)
			f.setState(st, e, ref.r, state, now)
			if old == stateSynRecv && state == stateEstablished {
				f.hs.note(p.flow.src)
			}
			if send {
				f.record(connsync.OpUpsert, e, s, ref.r, f.timeout(st, state), now)
			}
			if s.cfg.Persistence > 0 {
				// e may move once the table is probed again: copy first.
				f.holdTemplate(s, &p.flow, e.Service, e.Real, f.table.Expires(e), ref.r, send, now)
			}
			return f.result(Forward, ReasonExisting, s.idx, int(ref.idx))
		}
	}

	state := stateUDP
	if tcp {
		if syn {
			if res, ok := f.synStateless(s, p, now); ok {
				return res
			}
		} else {
			if f.adoptable(s, now) {
				return f.adoptStateless(st, s, p, now)
			}
			if !s.consistent {
				return f.result(Drop, ReasonNoConn, s.idx, -1)
			}
			if p.tcpFlags&tcpRST != 0 {
				// No entry for a reset, as in IPVS: see resetWithoutEntry.
				return f.resetWithoutEntry(s, p, now, ReasonAdopted)
			}
			reason = ReasonAdopted
		}
		state = tcpNext(stateNone, p.tcpFlags)
		if !syn && p.tcpFlags&(tcpSYN|tcpRST|tcpFIN) == 0 {
			state = stateEstablished // mid-flow data after a director restart
		}
	}
	withheld := f.syncWithheld(state)
	ri, how := f.pick(st, s, &p.flow, withheld, now)
	if ri < 0 {
		return f.result(Drop, how, s.idx, -1)
	}
	if (how == ReasonPersistent || how == ReasonSorry) && reason == ReasonNew {
		reason = how
	}
	e, err := f.insert(&f.key, now)
	if err != nil {
		return f.result(Drop, ReasonTableFull, s.idx, ri)
	}
	r := s.server(ri)
	f.openEntry(st, s, r, e, state, now)
	if s.cfg.Persistence > 0 {
		f.holdTemplate(s, &p.flow, s.slot, r.slot, f.table.Expires(e), r, f.sync.events != nil && !withheld, now)
	}
	return f.result(Forward, reason, s.idx, ri)
}

// openEntry fills a connection entry just inserted for r of s in state:
// its slots, counts, timeout, sync record (none if withheld: stamped as
// sent, so that the fast path keeps its frames until its state changes)
// and the connection totals.
func (f *Forwarder) openEntry(st *state, s *service, r *realServer, e *conntable.Entry, state uint8, now int64) {
	e.Service, e.Real, e.State = s.slot, r.slot, state
	r.count(state, +1)
	f.table.SetTimeout(e, now, f.timeout(st, state))
	if f.syncWithheld(state) {
		stampSync(e, now)
	} else {
		f.record(connsync.OpUpsert, e, s, r, f.timeout(st, state), now)
	}
	f.countConnection(s, r)
}

// pick chooses a real server for a new connection: a live persistence
// template first, then the scheduler, then, while no real server can take
// connections, the sorry server (Result.Real == len(reals)). It returns -1
// and a drop reason when nothing can take it. With withheld (the
// connection's record is: syncWithheld), the template's is too: a new
// one is stamped unsent, and goes with the connection's record once the
// handshake completes (holdTemplate), as a live one that is due does.
func (f *Forwarder) pick(st *state, s *service, fl *flow, withheld bool, now int64) (int, Reason) {
	persist := s.cfg.Persistence > 0
	if persist {
		f.templateKey(s, fl)
		if t := f.table.Lookup(&f.tkey, now); t != nil {
			var ref realRef
			if t.Service == s.slot {
				ref = s.ref(t.Real)
			}
			// Like IPVS with expire_quiescent_template=1: a template
			// never pins a client to a quiesced, failed or removed server.
			if ref.r != nil && ref.idx >= 0 && ref.r.usable() && ref.r.effectiveWeight() > 0 && !s.sorryGone(ref.r) {
				due := f.sync.events != nil && f.resendDue(t, now, s.cfg.Persistence)
				send := due && !withheld
				if due && withheld {
					// Due now, it would not be once renewed below
					// (resendDue also reads its idle time): marked
					// unsent, it goes with the completing ACK
					// (holdTemplate), as a new one does.
					stampUnsent(t, now)
				}
				// Renewed, never shortened: an open connection may hold
				// the template longer (holdTemplate, IPVS's n_control).
				if f.table.Expires(t) < now+int64(s.cfg.Persistence) {
					f.table.SetTimeout(t, now, s.cfg.Persistence)
				}
				if send {
					f.record(connsync.OpUpsert, t, s, ref.r, s.cfg.Persistence, now)
				}
				return int(ref.idx), ReasonPersistent
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
		if s.sorry == nil || s.live.Load() || !s.sorry.usable() {
			return -1, ReasonNoServer
		}
		ri, how = len(s.reals), ReasonSorry
	}
	if persist {
		if t, err := f.insert(&f.tkey, now); err == nil {
			r := s.server(ri)
			t.Service, t.Real, t.State = s.slot, r.slot, stateTemplate
			r.count(stateTemplate, +1)
			f.table.SetTimeout(t, now, s.cfg.Persistence)
			if withheld {
				stampUnsent(t, now)
			} else {
				f.record(connsync.OpUpsert, t, s, r, s.cfg.Persistence, now)
			}
		}
	}
	return ri, how
}

// holdTemplate keeps the persistence template of a connection's client
// alive at least as long as the connection (expires, unix nanoseconds):
// IPVS does not expire a template while connections it controls exist
// (n_control), so a client idle past the persistence timeout with an open
// connection still gets the same server for its next one. A template that
// is gone (or points elsewhere) is left alone: the connection keeps its
// server, the client's next connection is scheduled afresh. Only the
// maximum is kept, so a template may outlive its last connection by up
// to that connection's last timeout (IPVS: the persistence timeout).
//
// With synced, the connection's sync record was just made (r is its real
// server): the template goes with it when due, as IPVS syncs cp->control
// with each connection, sent with its time left. Held here, it was never
// sent again, and the peer's copy ran out after the persistence timeout
// (the peer holds its copy by the connection's too: ApplySync). One
// already held long enough goes out when due all the same. The fast path
// makes no sync record (it hands a frame whose record is due to the full
// path), so it sends no template either: the two paths record the same.
func (f *Forwarder) holdTemplate(s *service, fl *flow, svc, real uint16, expires int64, r *realServer, synced bool, now int64) {
	f.templateKey(s, fl)
	t := f.table.Lookup(&f.tkey, now)
	if t == nil || t.Service != svc || t.Real != real {
		return
	}
	// Due by the persistence timeout, read before the hold below
	// renews the expiry resendDue reads.
	send := synced && f.resendDue(t, now, s.cfg.Persistence)
	if f.table.Expires(t) < expires {
		f.table.SetTimeout(t, now, time.Duration(expires-now))
	}
	if send {
		f.record(connsync.OpUpsert, t, s, r, time.Duration(f.table.Expires(t)-now), now)
	}
}

// schedule asks the service's scheduler; it never returns a server that is
// not usable, whatever the scheduler's snapshot says.
func (f *Forwarder) schedule(s *service, fl *flow) (int, bool) {
	return f.pickWith(s.sched.Load(), s, fl)
}

// pickWith asks sc (nil: none) for a server of s for fl; it never returns
// a server that is not usable, whatever the scheduler's snapshot says.
func (f *Forwarder) pickWith(sc scheduler.Scheduler, s *service, fl *flow) (int, bool) {
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
func (f *Forwarder) fragment(st *state, p *packet, now int64) Result {
	k := fragKeyOf(p)
	if svc, ri, ok := f.frags.get(&k, now); ok && int(svc) < len(st.slots) && st.slots[svc] != nil {
		s := st.slots[svc]
		if ref := s.ref(ri); s.idx >= 0 && ref.r != nil && ref.idx >= 0 && ref.r.usable() {
			return f.result(Forward, ReasonFragment, s.idx, int(ref.idx))
		}
	}
	// The first fragment has not been seen (reordered or lost). A source
	// hash that ignores ports places it where the first one will go, so
	// it can be forwarded at once; anything else must drop it.
	var only *service
	for _, s := range st.services {
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
		return f.result(Drop, ReasonFragNoFirst, only.idx, -1)
	}
	return f.result(Forward, ReasonFragment, only.idx, ri)
}

// icmpError forwards an ICMP error about a connection (fragmentation
// needed, unreachable, time exceeded) to the real server that owns it, so
// path MTU discovery works through the director.
func (f *Forwarder) icmpError(st *state, p *packet, now int64) Result {
	in := &p.inner
	if in.dst != p.dst {
		return f.result(Drop, ReasonICMPNoConn, -1, -1)
	}
	s := st.lookupService(in.proto, in.dst, in.dstPort)
	if s == nil {
		return f.result(Drop, ReasonNoService, -1, -1)
	}
	f.setKey(&f.key, in)
	if e := f.table.Lookup(&f.key, now); e != nil && e.Service == s.slot {
		if ref := s.ref(e.Real); ref.r != nil {
			// Gone as connection() has it: removed, failed, drained
			// out, or the sorry server once a real server is back
			// unless sorry_server_inhibit keeps its connections (then
			// their errors, a path MTU's too, must reach it). A
			// server whose MAC is unknown is not gone (usable() here
			// made it server-gone): Process drops the error as
			// no-mac, as it does the connection's own packets.
			if ref.idx >= 0 && ref.r.available.Load() && !ref.r.drainOver(now) && !(s.sorryGone(ref.r) && !s.cfg.SorryServer.Inhibit) {
				return f.result(Forward, ReasonICMP, s.idx, int(ref.idx))
			}
			return f.result(Drop, ReasonServerGone, s.idx, int(ref.idx))
		}
	}
	if s.consistent && s.cfg.Persistence == 0 {
		if ri, ok := f.schedule(s, in); ok {
			return f.result(Forward, ReasonICMP, s.idx, ri)
		}
	}
	return f.result(Drop, ReasonICMPNoConn, s.idx, -1)
}

package forwarder

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/scheduler"
)

// svcKey identifies a virtual service: (protocol, VIP, port); port 0 is
// the service that takes every port of the VIP.
type svcKey struct {
	proto uint8
	vip   netip.Addr
	port  uint16
}

// realServer is one real server of a service. Its fields are written by
// control goroutines (health checks, neighbor resolution, Apply) and read
// by the data path, hence atomics.
//
// A realServer outlives configurations: an Apply that keeps it (same
// service key, same address) keeps this very object, so its MAC, its
// health, its counters and the connection entries that name it carry over
// whatever moves around it.
type realServer struct {
	addr netip.Addr
	// slot is what connection entries call it (conntable.Entry.Real): its
	// place in the service's bySlot, which never changes while entries
	// may name it. Config indexes move when others are added or removed.
	slot uint16
	// mac holds the MAC in its low 48 bits, bit 48 set when known.
	mac       atomic.Uint64
	weight    atomic.Int32
	available atomic.Bool
	// inhibited is a failed health check with on_fail: inhibit: the
	// server takes no new connections whatever its configured weight
	// (which a reload may change meanwhile), open ones continue.
	inhibited atomic.Bool
	// unchecked is a health check that has given no verdict yet: the
	// server's own, since it was added (or added back after a removal;
	// a reload that changes its check keeps the verdict). The server
	// is in use meanwhile (keepalived's servers start up), but a BGP
	// director does not count it toward announcing its VIP.
	unchecked atomic.Bool
	// drainDeadline, unix nanoseconds, is when a quiesced server's
	// remaining connections end (Service.DrainTimeout after its weight
	// went to 0); 0 = never. drainSince is when the weight went to 0 (0 =
	// not draining, or since before the forwarder knew); only Apply reads
	// and writes it, under Forwarder.ctl.
	drainDeadline atomic.Int64
	drainSince    int64

	active, inactive, persistent atomic.Int32
	totals                       workerTotals
	// zeroed is what the listings subtract from totals (ipvsadm -Z).
	zeroed zeroMark
}

const macKnown = 1 << 48

func packMAC(m net.HardwareAddr) uint64 {
	if len(m) != 6 {
		return 0
	}
	return macKnown | uint64(m[0])<<40 | uint64(m[1])<<32 | uint64(m[2])<<24 |
		uint64(m[3])<<16 | uint64(m[4])<<8 | uint64(m[5])
}

func putMAC(dst []byte, v uint64) {
	_ = dst[5]
	dst[0], dst[1], dst[2] = byte(v>>40), byte(v>>32), byte(v>>24)
	dst[3], dst[4], dst[5] = byte(v>>16), byte(v>>8), byte(v)
}

// realRef is a real server as one configuration sees it.
type realRef struct {
	r *realServer // nil: a free slot
	// idx is the server's index in the configuration's RealServers
	// (Result.Real); -1: removed from the configuration, kept only while
	// connection entries may still name it.
	idx int32
}

// svcCounters are a service's totals, shared by every configuration the
// service is part of.
type svcCounters struct {
	totals workerTotals
	// zeroed is what the listings subtract from totals (ipvsadm -Z).
	zeroed zeroMark
}

// totals are connections, packets and bytes counted by one worker, alone
// on their cache line: workers on different cores counting into one line
// would pass it back and forth on every packet. The held fields are what
// the worker counted and has not published yet (heldcounts.go): only the
// worker's goroutine touches them.
type totals struct {
	connections, packets, bytes       atomic.Uint64
	heldConns, heldPackets, heldBytes uint64
	_                                 [64 - 48]byte
}

// workerTotals are a server's or a service's totals, one per worker;
// readers add them up.
type workerTotals []totals

func newWorkerTotals(workers int) workerTotals { return make(workerTotals, max(workers, 1)) }

// addTraffic adds forwarded packets and their bytes.
func (t *totals) addTraffic(packets, bytes uint64) {
	t.packets.Add(packets)
	t.bytes.Add(bytes)
}

// sum is the totals of every worker.
func (w workerTotals) sum() Counters {
	var c Counters
	for i := range w {
		c.Connections += w[i].connections.Load()
		c.Packets += w[i].packets.Load()
		c.Bytes += w[i].bytes.Load()
	}
	return c
}

// zeroMark is a server's or a service's totals at its last ipvsadm -Z
// (none before the first): the listings show the totals less these,
// Prometheus the totals themselves, counters that must never go back. The
// totals are never zeroed, so they never drop below the mark. Only
// control code (ZeroCounters, Stats) touches it, never the data path.
type zeroMark struct{ at atomic.Pointer[Counters] }

// set marks w's totals now.
func (z *zeroMark) set(w workerTotals) {
	c := w.sum()
	z.at.Store(&c)
}

// load is the mark, zero if there is none. Read it before the totals it
// is subtracted from: read after, a -Z in between could put it above them.
func (z *zeroMark) load() Counters {
	if c := z.at.Load(); c != nil {
		return *c
	}
	return Counters{}
}

// service is one virtual service and its real servers, as one
// configuration (one state) sees it. A service object is never changed
// once its state is published but through atomics: Apply builds new ones
// that share the realServer objects and counters of what stays.
type service struct {
	// slot is what connection entries call the service
	// (conntable.Entry.Service): stable while the service (its key) is
	// configured, and kept after it is removed while entries name it.
	slot uint16
	// idx is the service's index in the configuration's Services
	// (Result.Service); -1 once removed.
	idx int
	key svcKey
	cfg config.Service
	// reals are in configuration order: schedulers and Result.Real index
	// them. bySlot finds a connection entry's server by its slot: the
	// configured ones, and removed ones while entries may name them.
	reals  []*realServer
	bySlot []realRef
	// sorry is the service's sorry server (nil: none): one more server
	// for the connection table, MACs and counters (it has a slot, and
	// Result.Real == len(reals) names it) that the scheduler never sees.
	// live says a real server can take new connections (usable, weight
	// above 0): while none can, new connections go to the sorry server.
	// It is set with each scheduler build, which every change goes
	// through.
	sorry      *realServer
	live       atomic.Bool
	sched      scheduler.Handle
	consistent bool
	ctr        *svcCounters

	rebuild sync.Mutex // serialises scheduler rebuilds

	// stateless places SYNs under table pressure when sched is not
	// consistent (stateless.go); unset for persistent services.
	stateless scheduler.Handle
	// gen counts scheduler builds (StatelessSYNGeneration).
	gen atomic.Uint64
}

// ref returns the real server slot names and its configuration index; a
// zero realRef for a slot that names nothing.
func (s *service) ref(slot uint16) realRef {
	if int(slot) < len(s.bySlot) {
		return s.bySlot[slot]
	}
	return realRef{idx: -1}
}

// entries is how many connection entries and templates name a server of
// s. For a service or server that is no longer configured it only goes
// down: nothing schedules to it.
func (s *service) entries() int64 {
	var n int64
	for _, ref := range s.bySlot {
		if ref.r != nil {
			n += ref.r.entries()
		}
	}
	return n
}

func (r *realServer) entries() int64 {
	return int64(r.active.Load()) + int64(r.inactive.Load()) + int64(r.persistent.Load())
}

// Conns implements scheduler.Load over the live counters.
func (s *service) Conns(i int) (active, inactive uint32) {
	r := s.reals[i]
	a, in := r.active.Load(), r.inactive.Load()
	if a < 0 {
		a = 0
	}
	if in < 0 {
		in = 0
	}
	return uint32(a), uint32(in)
}

// effectiveWeight is the weight new connections see: 0 while inhibited.
func (r *realServer) effectiveWeight() int {
	if r.inhibited.Load() {
		return 0
	}
	return int(r.weight.Load())
}

// usable reports whether r may own traffic: available and its MAC known.
func (r *realServer) usable() bool { return r.available.Load() && r.mac.Load()&macKnown != 0 }

// drainOver reports whether r's drain deadline has passed at now: its
// connections end as a removed server's do.
func (r *realServer) drainOver(now int64) bool {
	d := r.drainDeadline.Load()
	return d != 0 && now >= d
}

// snapshot is what a scheduler is built from.
func (s *service) snapshot() []scheduler.Server {
	snap := make([]scheduler.Server, len(s.reals))
	for i, r := range s.reals {
		snap[i] = scheduler.Server{Addr: r.addr, Weight: r.effectiveWeight(), Available: r.usable()}
	}
	return snap
}

// anyLive reports whether a server of snap can take new connections.
func anyLive(snap []scheduler.Server) bool {
	for _, x := range snap {
		if x.Available && x.Weight > 0 {
			return true
		}
	}
	return false
}

// server returns the server Result.Real index ri names: a configured real
// server, or at len(reals) the sorry server.
func (s *service) server(ri int) *realServer {
	if ri == len(s.reals) && s.sorry != nil {
		return s.sorry
	}
	return s.reals[ri]
}

// sorryGone reports whether r is the sorry server while a real server can
// take connections again: keepalived then removes the sorry server (unless
// sorry_server_inhibit), so its connections end and new ones go to the
// real servers.
func (s *service) sorryGone(r *realServer) bool {
	return r != nil && r == s.sorry && s.live.Load()
}

// rebuildScheduler swaps in a scheduler built from the current weights and
// availability, continuing from the one it replaces (rr after its last
// pick, wrr at its current weight: scheduler.NewAfter). Pickers keep using
// the old one until the swap.
func (s *service) rebuildScheduler() error {
	s.rebuild.Lock()
	defer s.rebuild.Unlock()
	snap := s.snapshot()
	sc, err := scheduler.NewAfter(s.cfg.Scheduler, snap, s.cfg.SchedOptions, s.sched.Load())
	if err != nil {
		return err
	}
	s.sched.Store(sc)
	s.buildStateless(snap)
	s.live.Store(anyLive(snap))
	s.gen.Add(1)
	return nil
}

// state is one configuration as the data path sees it. It is published
// whole through Forwarder.cur and never changed afterwards (but through
// the atomics of its services and real servers): Apply prepares the next
// one beside the running data path and swaps the pointer.
type state struct {
	services []*service // configuration order: Result.Service indexes it
	byKey    map[svcKey]*service
	vips     map[netip.Addr]struct{}
	// slots finds a connection entry's service by its slot: configured
	// services, and removed ones while entries may name them (nil: free).
	slots    []*service
	timeouts timeouts
	// vipx answers vips and byKey for the data path without a map
	// lookup (vipindex.go).
	vipx vipIndex
}

// lookupService finds the service for (proto, VIP, port), then the VIP's
// every-port service.
func (st *state) lookupService(proto uint8, vip netip.Addr, port uint16) *service {
	v := st.vipx.find(vip)
	if v == nil {
		return nil
	}
	if v.svcs == nil {
		return st.lookupServiceMap(proto, vip, port)
	}
	var every *service
	for _, s := range v.svcs {
		if s.key.proto == proto {
			if s.key.port == port {
				return s
			}
			if s.key.port == 0 {
				every = s
			}
		}
	}
	return every
}

// lookupServiceMap is lookupService by the map, for a VIP with many
// services.
func (st *state) lookupServiceMap(proto uint8, vip netip.Addr, port uint16) *service {
	if s, ok := st.byKey[svcKey{proto: proto, vip: vip, port: port}]; ok {
		return s
	}
	if s, ok := st.byKey[svcKey{proto: proto, vip: vip}]; ok {
		return s
	}
	return nil
}

// owner returns the real server a connection entry names, with its
// service; nil when the slots name nothing (cannot happen for an entry
// still in the table: slots are freed only once no entry names them).
func (st *state) owner(svc, real uint16) (*service, *realServer) {
	if int(svc) >= len(st.slots) || st.slots[svc] == nil {
		return nil, nil
	}
	s := st.slots[svc]
	return s, s.ref(real).r
}

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
// control goroutines (health checks, neighbor resolution) and read by the
// data path, hence atomics.
type realServer struct {
	addr netip.Addr
	// mac holds the MAC in its low 48 bits, bit 48 set when known.
	mac       atomic.Uint64
	weight    atomic.Int32
	available atomic.Bool
	// inhibited is a failed health check with on_fail: inhibit: the
	// server takes no new connections whatever its configured weight
	// (which a reload may change meanwhile), open ones continue.
	inhibited atomic.Bool

	active, inactive, persistent atomic.Int32
	connections, packets, bytes  atomic.Uint64
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

// service is one virtual service and its real servers. reals never changes
// length, so conntable entries can name a real server by index.
type service struct {
	id    uint16
	key   svcKey
	cfg   config.Service
	reals []*realServer
	// nreal is how many of reals are the configured real servers; a
	// sorry server follows them at index sorry (-1 = none), so the
	// connection table, MACs and counters treat it as one more server
	// while the scheduler never sees it.
	nreal int
	sorry int
	// live says a real server can take new connections (usable, weight
	// above 0): while none can, new connections go to the sorry server.
	// Set with each scheduler rebuild, which every change goes through.
	live       atomic.Bool
	sched      scheduler.Handle
	consistent bool

	connections, packets, bytes atomic.Uint64

	rebuild sync.Mutex // serialises scheduler rebuilds
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

// rebuildScheduler swaps in a scheduler built from the current weights and
// availability. Pickers keep using the old one until the swap.
func (s *service) rebuildScheduler() error {
	s.rebuild.Lock()
	defer s.rebuild.Unlock()
	snap := make([]scheduler.Server, s.nreal)
	live := false
	for i, r := range s.reals[:s.nreal] {
		snap[i] = scheduler.Server{Addr: r.addr, Weight: r.effectiveWeight(), Available: r.usable()}
		live = live || snap[i].Available && snap[i].Weight > 0
	}
	sc, err := scheduler.New(s.cfg.Scheduler, snap, s.cfg.SchedOptions)
	if err != nil {
		return err
	}
	s.sched.Store(sc)
	s.live.Store(live)
	return nil
}

// sorryGone reports whether ri is the sorry server while a real server
// can take connections again: keepalived then removes the sorry server
// (unless sorry_server_inhibit), so its connections end and new ones go
// to the real servers.
func (s *service) sorryGone(ri int) bool {
	return ri == s.sorry && s.live.Load()
}

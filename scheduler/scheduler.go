package scheduler

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
)

// ErrNoServer is returned by Pick when no real server may take a new
// connection: all are unavailable or quiesced (weight 0), or there are none.
var ErrNoServer = errors.New("scheduler: no real server available")

// ErrUnknown is returned by New for a scheduler name it does not know.
var ErrUnknown = errors.New("scheduler: unknown scheduler")

// ErrBadOption is returned by New for an option that does not fit the
// scheduler (for example a maglev table size that is not prime).
var ErrBadOption = errors.New("scheduler: bad option")

// Server is one real server in an immutable snapshot handed to New.
// Schedulers refer to servers by their index in that snapshot.
type Server struct {
	Addr      netip.Addr
	Weight    int  // 0 = quiesced: no new connections
	Available bool // false = failed health check, unresolved MAC, removed
}

// usable reports whether s may take a new connection.
func (s Server) usable() bool { return s.Available && s.Weight > 0 }

// Flow is what a scheduler may look at to place a new connection.
type Flow struct {
	Proto   uint8 // IP protocol number (6 tcp, 17 udp)
	Src     netip.Addr
	SrcPort uint16
	Dst     netip.Addr
	DstPort uint16
}

// Load reports live connection counts by server index, as the connection
// table sees them when Pick is called. The LoadBased schedulers (lc, wlc,
// sed, nq) read it; the others ignore it (nil is allowed for them).
type Load interface {
	Conns(i int) (active, inactive uint32)
}

// Scheduler places new connections. Implementations are built once from a
// snapshot and never change it: to change servers or weights, build a new
// one and swap it in through a Handle. Pick is safe for concurrent use and
// allocates nothing.
type Scheduler interface {
	// Name is the ipvsadm -s name: "rr", "wrr", ...
	Name() string
	// Pick returns the index in the snapshot of the server that gets the
	// new connection f, or ErrNoServer.
	Pick(f *Flow, load Load) (int, error)
}

// Options tune the hashing schedulers. The zero value is the IPVS default.
type Options struct {
	// HashPort includes the source port in sh/mh hashes (ipvsadm sh-port /
	// mh-port).
	HashPort bool
	// Fallback makes sh/mh pick another server when the hashed one is
	// unavailable or quiesced, instead of failing (sh-fallback / mh-fallback).
	Fallback bool
	// TableSize is the maglev lookup table size; it must be prime. 0 means
	// DefaultTableSize.
	TableSize int
}

// DefaultTableSize is the maglev lookup table size used when Options.TableSize is 0.
const DefaultTableSize = 65537

// constructor builds one algorithm from a snapshot.
type constructor func(servers []Server, opts Options) (Scheduler, error)

// Traits say what an algorithm's picks depend on, so that callers (config
// validation, the forwarder, drlb schedule, drlb lab) ask the scheduler
// package instead of comparing names. Every algorithm skips unavailable
// and quiesced (weight 0) servers; the traits are about the rest.
type Traits struct {
	// Weighted: the servers' weights shape where new connections go (wrr,
	// wlc, sed, nq, sh, mh). rr and lc treat every usable server alike.
	Weighted bool
	// Consistent: Pick is a pure function of the snapshot (addresses,
	// weights, availability) and the flow: sh and mh. Directors behind
	// ECMP, or a restarted one, pick the same server for the same flow, so
	// the forwarder may adopt a mid-flow TCP packet that has no connection
	// entry instead of dropping it.
	Consistent bool
	// LoadBased: Pick reads live connection counts through Load (lc, wlc,
	// sed, nq); the other algorithms accept a nil Load.
	LoadBased bool
}

// algorithm is one registered scheduler: how to build it and its traits.
type algorithm struct {
	traits Traits
	build  constructor
}

// algorithms maps ipvsadm -s names to algorithms. It is written only by
// register, during package initialisation.
var algorithms = map[string]algorithm{}

// register adds the algorithm called name (as ipvsadm -s); each algorithm's
// file calls it from init, next to its constructor.
func register(name string, t Traits, c constructor) {
	if _, dup := algorithms[name]; dup {
		panic("scheduler: " + name + " registered twice")
	}
	algorithms[name] = algorithm{traits: t, build: c}
}

// Names lists the scheduler names New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(algorithms))
	for n := range algorithms {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// unknown is the error New and TraitsOf return for a name they do not know.
func unknown(name string) error {
	return fmt.Errorf("%w %q (valid: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
}

// TraitsOf returns the traits of the scheduler called name (as ipvsadm -s),
// or an error wrapping ErrUnknown.
func TraitsOf(name string) (Traits, error) {
	a, ok := algorithms[name]
	if !ok {
		return Traits{}, unknown(name)
	}
	return a.traits, nil
}

// New builds the scheduler called name (as ipvsadm -s) over a copy of servers.
func New(name string, servers []Server, opts Options) (Scheduler, error) {
	a, ok := algorithms[name]
	if !ok {
		return nil, unknown(name)
	}
	snap := make([]Server, len(servers))
	copy(snap, servers)
	return a.build(snap, opts)
}

// NewAfter builds the scheduler called name as New does, continuing from
// prev, the one it replaces (nil: none), as IPVS's schedulers carry their
// state across edits of a service's destinations:
//
//   - rr continues after the server prev picked last (or, before its first
//     pick, the one prev itself continued after): the next pick is the
//     first usable server after it in snapshot order. If that server is
//     not in servers any more, it continues after the nearest server before
//     it that is (ip_vs_rr_del_dest), from the first server when none is.
//   - wrr starts its scan at the first server again but keeps its current
//     weight, fitted to the new weights (ip_vs_wrr_dest_changed).
//
// Servers are matched between prev's snapshot and servers by address when
// the addresses within each are distinct (as the forwarder's are), else by
// position when both have the same length, else not at all (rr starts at
// the first server). A prev of another algorithm is ignored, and so is
// prev by the other algorithms.
//
// NewAfter only reads prev, which pickers may go on using meanwhile: a
// pick on prev after NewAfter read its position is not seen, so the
// server it picked may be picked again once.
func NewAfter(name string, servers []Server, opts Options, prev Scheduler) (Scheduler, error) {
	s, err := New(name, servers, opts)
	if err != nil || prev == nil || prev.Name() != name {
		return s, err
	}
	if r, ok := s.(resumer); ok {
		r.resume(prev)
	}
	return s, nil
}

// resumer is a scheduler that continues from the one it replaces. resume
// runs once, before the scheduler is shared; prev has the same Name.
type resumer interface {
	resume(prev Scheduler)
}

// Handle holds the current scheduler of a virtual service. Pickers Load it
// without locks while a rebuild Stores a new one.
type Handle struct{ p atomic.Pointer[Scheduler] }

// Load returns the current scheduler, or nil before the first Store.
func (h *Handle) Load() Scheduler {
	if p := h.p.Load(); p != nil {
		return *p
	}
	return nil
}

// Store makes s the current scheduler.
func (h *Handle) Store(s Scheduler) { h.p.Store(&s) }

package forwarder

import (
	"net"
	"net/netip"
	"time"

	"github.com/drlb/drlb/config"
)

// Counters are totals since the forwarder started (since the server or
// service was added). They never go back, ipvsadm -Z included: Prometheus
// reads them as counters.
type Counters struct {
	// Connections counts the connections scheduled (persistence templates
	// aside), like ipvsadm's Conns column.
	Connections    uint64
	Packets, Bytes uint64
}

// Since is c less an earlier reading z, each field at least 0: the counts
// since z. The listings show Counters.Since(Zeroed).
func (c Counters) Since(z Counters) Counters {
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return Counters{Connections: sub(c.Connections, z.Connections), Packets: sub(c.Packets, z.Packets), Bytes: sub(c.Bytes, z.Bytes)}
}

// RealServerStats is a real server as `drlb ctl list` shows it.
type RealServerStats struct {
	Addr      netip.Addr
	MAC       net.HardwareAddr // nil while unresolved
	Weight    int
	Available bool
	Inhibited bool // weight 0 by a failed health check (on_fail: inhibit)
	// Unchecked: its health check has given no verdict yet since the
	// server was added (or added back after a removal).
	Unchecked bool
	// Active counts SYN_RECV and ESTABLISHED connections (as Linux IPVS
	// since 2016), Inactive the others, Persistent the persistence
	// templates pointing at the server.
	Active, Inactive, Persistent int
	Counters
	// Zeroed is Counters at the last ZeroCounters or ZeroService (ipvsadm
	// -Z) of its service, zero before any: what the listings subtract.
	Zeroed Counters
}

// ServiceStats is a virtual service with its real servers.
type ServiceStats struct {
	Protocol  config.Protocol
	VIP       netip.Addr
	Port      uint16
	Scheduler string
	// Persistence is ipvsadm -p (0 = none).
	Persistence time.Duration
	Counters
	// Zeroed is Counters at the last ZeroCounters or ZeroService (ipvsadm
	// -Z), zero before any: what the listings subtract.
	Zeroed      Counters
	RealServers []RealServerStats
	// Sorry is the sorry server, nil when the service has none. Its
	// Available is whether it is standing in for the real servers now.
	Sorry *RealServerStats
}

// Stats returns a snapshot of every service's counters, in the order of
// the running configuration. It may be called from any goroutine while
// Process or Apply runs: it reads one configuration whole.
func (f *Forwarder) Stats() []ServiceStats {
	st := f.cur.Load()
	out := make([]ServiceStats, 0, len(st.services))
	for _, s := range st.services {
		zeroed := s.ctr.zeroed.load() // before the totals: never above them
		ss := ServiceStats{
			Protocol:    config.Protocol(s.key.proto),
			VIP:         s.key.vip,
			Port:        s.key.port,
			Scheduler:   s.cfg.Scheduler,
			Persistence: s.cfg.Persistence,
			Counters:    s.ctr.totals.sum(),
			Zeroed:      zeroed,
		}
		for _, r := range s.reals {
			ss.RealServers = append(ss.RealServers, realStats(r))
		}
		if s.sorry != nil {
			rs := realStats(s.sorry)
			rs.Available = !s.live.Load() // standing in for the real servers now
			ss.Sorry = &rs
		}
		out = append(out, ss)
	}
	return out
}

func realStats(r *realServer) RealServerStats {
	zeroed := r.zeroed.load() // before the totals: never above them
	rs := RealServerStats{
		Addr:       r.addr,
		Weight:     int(r.weight.Load()),
		Available:  r.available.Load(),
		Inhibited:  r.inhibited.Load(),
		Unchecked:  r.unchecked.Load(),
		Active:     int(r.active.Load()),
		Inactive:   int(r.inactive.Load()),
		Persistent: int(r.persistent.Load()),
		Counters:   r.totals.sum(),
		Zeroed:     zeroed,
	}
	if m := r.mac.Load(); m&macKnown != 0 {
		rs.MAC = make(net.HardwareAddr, 6)
		putMAC(rs.MAC, m)
	}
	return rs
}

// Count returns how many frames got reason r, in all the workers.
func (f *Forwarder) Count(r Reason) uint64 {
	if r >= numReasons {
		return 0
	}
	var n uint64
	for _, w := range f.workers {
		n += w.counts[r].Load()
	}
	return n
}

// Frames returns how many frames this worker processed (every reason).
func (f *Forwarder) Frames() uint64 {
	var n uint64
	for i := range f.counts {
		n += f.counts[i].Load()
	}
	return n
}

// TableLen returns the number of entries in this worker's connection
// table (connections and persistence templates). Unlike Stats and Count
// it reads the table itself, so call it only from the goroutine that runs
// this worker's Process.
func (f *Forwarder) TableLen() int { return f.table.Len() }

// TableSlots is this worker's connection table's slot count: a full expiry pass
// (Tick) examines this many slots.
func (f *Forwarder) TableSlots() int { return f.table.Slots() }

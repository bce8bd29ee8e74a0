package control

import (
	"net/netip"
	"time"

	"github.com/drlb/drlb/forwarder"
)

// Source is what a Snapshot is taken from; *forwarder.Forwarder is one.
type Source interface {
	Stats() []forwarder.ServiceStats
	Count(r forwarder.Reason) uint64
}

// Snapshot is the director's state at one moment, as `drlb ctl` shows it.
type Snapshot struct {
	Time     time.Time         `json:"time"`
	MaxConns int               `json:"max_conns"`
	Services []Service         `json:"services"`
	Frames   map[string]uint64 `json:"frames"` // by verdict reason, non-zero only
	// KernelForwarded counts the frames of established flows the kernel
	// (the XDP or tc program) forwarded itself (drlb run -kernel-flows);
	// they are in Frames
	// ("existing") and the services' and servers' packets too.
	KernelForwarded uint64 `json:"kernel_forwarded,omitempty"`
	// KernelSYNs counts the bare SYNs the kernel forwarded itself under
	// table pressure (drlb run -kernel-syns); also counted in
	// Frames[syn-stateless] (and Overload's SynStateless).
	KernelSYNs uint64 `json:"kernel_syns,omitempty"`
	// KernelSYNsState is the state of the kernel's SYN forwarding (drlb
	// run -kernel-syns): "" when off (or turned off at start-up), "on"
	// while the kernel may forward bare SYNs under table pressure, or
	// "held" while drlb takes every SYN itself because its tc program
	// does not run first at tc ingress (AF_PACKET; another program ahead
	// of it, or detached), or because its XDP program was detached
	// (AF_XDP; XDP says so).
	KernelSYNsState string `json:"kernel_syns_state,omitempty"`
	// KernelFlows is the state of kernel flows: "" when off, "on", or
	// "held" while drlb forwards every frame itself because its tc
	// program does not run first at tc ingress (AF_PACKET; another
	// program ahead of it, or detached), or because its XDP program was
	// detached (AF_XDP; XDP says so), or "failed" once a write to the
	// kernel failed and drlb turned them off until it restarts.
	KernelFlows string `json:"kernel_flows,omitempty"`
	// KernelFlowsOut is how many flows are handed to the kernel now
	// (handed out and not taken back; those its map had no room for
	// count too, see Link's kernel_flows_full).
	KernelFlowsOut int64 `json:"kernel_flows_out,omitempty"`
	// XDP is the AF_XDP port's XDP program (drlb run -io afxdp): "driver"
	// or "generic", the mode it was attached in, or "detached" once it was
	// detached from outside drlb; "" with AF_PACKET.
	XDP string `json:"xdp,omitempty"`
	// AFXDP is how the kernel bound the AF_XDP sockets (drlb run -io
	// afxdp): "zero-copy" or "copy"; "" with AF_PACKET.
	AFXDP string `json:"af_xdp,omitempty"`
	// Overload is the connection table's pressure defence (short SYN_RECV
	// timeouts, SYN_RECV eviction when full); nil when not read.
	Overload *Overload `json:"overload,omitempty"`
	// Workers is each data-path worker's share (nil with one worker):
	// the frames it processed and the entries its connection table holds.
	Workers []Worker `json:"workers,omitempty"`
	// ConnEntries is the connection table, when asked for (ctl list
	// -conns); ConnEntriesOmitted counts entries left out beyond the
	// listing's bound.
	ConnEntries        []ConnEntry `json:"conns,omitempty"`
	ConnEntriesOmitted int         `json:"conns_omitted,omitempty"`
	// Link counts frames the sockets dropped (rx: receive queue full,
	// everything but bare TCP SYNs; rx_syn: the SYN sockets' receive
	// queues (or AF_XDP ring) full, bare SYNs only; rx_syn_trusted: the
	// same for trusted clients' bare SYNs, queued apart; rx_xdp, with -io
	// afxdp: the main AF_XDP socket's; tx, truncated, unrepresentable;
	// kernel_flows_full, with -kernel-flows: flows the kernel's map had
	// no room for, which stay with drlb); ARP the VIP responder's events (requests,
	// probes, replies, conflicts, malformed); Neighbors the real-server
	// resolver's (requests, send_errors, accepted, rejected).
	Link      map[string]uint64 `json:"link,omitempty"`
	ARP       map[string]uint64 `json:"arp,omitempty"`
	Neighbors map[string]uint64 `json:"neighbors,omitempty"`
	// BGP is the director's sessions and announcements (nil without bgp:).
	BGP *BGPStatus `json:"bgp,omitempty"`
	// HA is the director's VRRP state and counters (nil without ha:):
	// its IPv4 virtual router, or the IPv6 one when every VIP is IPv6.
	// HA6 is the IPv6 virtual router when there are both (one per
	// address family of the VIPs, as keepalived's vrrp_instances).
	HA  *HAStatus `json:"ha,omitempty"`
	HA6 *HAStatus `json:"ha_ipv6,omitempty"`
}

// Snapshot.KernelFlows' states besides "" (off).
const (
	KernelFlowsOn   = "on"
	KernelFlowsHeld = "held"
	// KernelFlowsFailed: turned off for good after a write to the
	// kernel failed; drlb forwards every frame itself until it restarts.
	KernelFlowsFailed = "failed"
)

// Snapshot.KernelSYNsState's states besides "" (off): the strings of
// KernelFlowsOn, KernelFlowsHeld and KernelFlowsFailed, under names of
// their own. Failed: a worker's write to the kernel failed, and that
// worker takes every SYN itself until drlb restarts.
const (
	KernelSYNsOn     = "on"
	KernelSYNsHeld   = "held"
	KernelSYNsFailed = "failed"
)

// XDPDetached is Snapshot.XDP once the XDP program was detached from
// outside drlb.
const XDPDetached = "detached"

// Overload is forwarder.Overload: whether the table is under pressure
// (SYN_RECV entries get the short timeout), how often pressure began, and
// how many SYN_RECV connections a full table evicted, how many SYNs went
// through without entry under pressure.
type Overload struct {
	Pressure         bool   `json:"pressure"`
	PressureEpisodes uint64 `json:"pressure_episodes"`
	SynEvicted       uint64 `json:"syn_evicted"`
	SynStateless     uint64 `json:"syn_stateless"`
	// TrustedClients counts the clients put in the ports' trusted lane
	// after a handshake (their SYNs skip a flooded SYN queue).
	TrustedClients uint64 `json:"trusted_clients"`
}

// Worker is one data-path worker's share of the traffic: frames are
// sorted among workers by client address, so a worker far busier than the
// others carries a few heavy clients.
type Worker struct {
	Frames  uint64 `json:"frames"`
	Entries int    `json:"entries"`
	// XDPFrames is how many of the frames its port read through AF_XDP
	// (-io afxdp; the rest through AF_PACKET).
	XDPFrames uint64 `json:"xdp_frames,omitempty"`
}

// ConnEntry is one connection table entry (a connection or a persistence
// template), as ipvsadm -Lnc lists it.
type ConnEntry struct {
	Protocol string         `json:"protocol"`
	Client   netip.AddrPort `json:"client"`
	Virtual  netip.AddrPort `json:"virtual"`
	Real     netip.Addr     `json:"real"`
	State    string         `json:"state"`
	Expires  float64        `json:"expires_seconds"`
}

// ConnEntryOf converts a forwarder entry.
func ConnEntryOf(c forwarder.ConnEntry) ConnEntry {
	return ConnEntry{Protocol: c.Protocol.String(), Client: c.Client, Virtual: c.Virtual, Real: c.Real,
		State: c.State, Expires: c.Expires.Seconds()}
}

// Service is one virtual service with its real servers.
type Service struct {
	Protocol    string     `json:"protocol"`
	VIP         netip.Addr `json:"vip"`
	Port        uint16     `json:"port"`
	Scheduler   string     `json:"scheduler"`
	Persistence string     `json:"persistence,omitempty"`
	// The counters are since the last ipvsadm -Z, as the listings show
	// them; Zeroed is what -Z took off (the Prometheus counters add it
	// back: they never go back). Zeroed is not in the JSON.
	Connections uint64             `json:"conns"` // scheduled, like ipvsadm's Conns
	InPackets   uint64             `json:"in_packets"`
	InBytes     uint64             `json:"in_bytes"`
	Zeroed      forwarder.Counters `json:"-"`
	RealServers []Real             `json:"realservers"`
	// Sorry is the sorry server, nil when the service has none. Its
	// State is SorryStandingIn while it takes the new connections (no
	// real server can), else SorryStandby.
	Sorry *Real `json:"sorry,omitempty"`
}

// States of a sorry server (Service.Sorry).
const (
	SorryStandingIn = "standing in"
	SorryStandby    = "standby"
)

// Real is one real server of a service.
type Real struct {
	Address    netip.Addr `json:"address"`
	MAC        string     `json:"mac,omitempty"` // empty while unresolved
	Weight     int        `json:"weight"`
	State      string     `json:"state"` // up, down, inhibited, unresolved
	Active     int        `json:"active_conns"`
	Inactive   int        `json:"inactive_conns"`
	Persistent int        `json:"persistent"`
	// As Service's: since the last ipvsadm -Z, Zeroed what it took off.
	Connections uint64             `json:"conns"` // scheduled, like ipvsadm's Conns
	InPackets   uint64             `json:"in_packets"`
	InBytes     uint64             `json:"in_bytes"`
	Zeroed      forwarder.Counters `json:"-"`
}

// totals are the counters since the director started, -Z or not: what
// Prometheus reads.
func totals(conns, packets, bytes uint64, zeroed forwarder.Counters) forwarder.Counters {
	return forwarder.Counters{Connections: conns + zeroed.Connections, Packets: packets + zeroed.Packets, Bytes: bytes + zeroed.Bytes}
}

// Totals are s's counters since the director started, -Z or not.
func (s Service) Totals() forwarder.Counters {
	return totals(s.Connections, s.InPackets, s.InBytes, s.Zeroed)
}

// Totals are r's counters since the director started, -Z or not.
func (r Real) Totals() forwarder.Counters {
	return totals(r.Connections, r.InPackets, r.InBytes, r.Zeroed)
}

// Take reads src now.
func Take(src Source, maxConns int, persistence map[int]time.Duration) Snapshot {
	s := Snapshot{Time: time.Now(), MaxConns: maxConns, Frames: map[string]uint64{}}
	for i, st := range src.Stats() {
		c := st.Counters.Since(st.Zeroed)
		svc := Service{
			Protocol: st.Protocol.String(), VIP: st.VIP, Port: st.Port, Scheduler: st.Scheduler,
			Connections: c.Connections, InPackets: c.Packets, InBytes: c.Bytes, Zeroed: st.Zeroed,
			// Not nil: a service without real servers (ipvsadm -A
			// before its -a) is "realservers": [] in the JSON, not
			// null, which a script iterating over it fails on.
			RealServers: []Real{},
		}
		if p := persistence[i]; p > 0 {
			svc.Persistence = p.String()
		}
		for _, r := range st.RealServers {
			svc.RealServers = append(svc.RealServers, realOf(r, state(r)))
		}
		if st.Sorry != nil {
			role := SorryStandby
			if st.Sorry.Available { // forwarder: standing in for the real servers now
				role = SorryStandingIn
			}
			rs := realOf(*st.Sorry, role)
			svc.Sorry = &rs
		}
		s.Services = append(s.Services, svc)
	}
	for _, r := range forwarder.Reasons() {
		if n := src.Count(r); n > 0 {
			s.Frames[r.String()] = n
		}
	}
	return s
}

// realOf is r as a snapshot shows it, in state st.
func realOf(r forwarder.RealServerStats, st string) Real {
	c := r.Counters.Since(r.Zeroed)
	rs := Real{
		Address: r.Addr, Weight: r.Weight, State: st,
		Active: r.Active, Inactive: r.Inactive, Persistent: r.Persistent,
		Connections: c.Connections, InPackets: c.Packets, InBytes: c.Bytes, Zeroed: r.Zeroed,
	}
	if r.MAC != nil {
		rs.MAC = r.MAC.String()
	}
	return rs
}

func state(r forwarder.RealServerStats) string {
	switch {
	case !r.Available:
		return "down"
	case r.MAC == nil:
		return "unresolved"
	case r.Inhibited:
		return "inhibited"
	}
	return "up"
}

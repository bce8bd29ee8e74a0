package control

import (
	"strconv"

	"github.com/drlb/drlb/forwarder"
	"github.com/prometheus/client_golang/prometheus"
)

// collector turns one Snapshot taken at scrape time into Prometheus
// metrics, BGP's included (collectBGP): one snapshot, so every series of
// a scrape is of the same moment, and the workers' locks and the
// sockets' statistics are taken once.
type collector struct{ take func() Snapshot }

// Kinds of Snapshot.Link the collector treats apart.
const (
	linkKernelFlowsFull = "kernel_flows_full"
	linkXDPRx           = "rx_xdp"
)

var (
	svcLabels  = []string{"protocol", "vip", "port"}
	realLabels = []string{"protocol", "vip", "port", "realserver"}
	// A sorry server's series are of their own: its address may be a real
	// server's of the same service.
	sorryLabels = []string{"protocol", "vip", "port", "sorryserver"}

	descSvcConns      = prometheus.NewDesc("drlb_service_connections_total", "Connections scheduled for the virtual service.", svcLabels, nil)
	descSvcPackets    = prometheus.NewDesc("drlb_service_packets_total", "Packets forwarded for the virtual service.", svcLabels, nil)
	descSvcBytes      = prometheus.NewDesc("drlb_service_bytes_total", "IP bytes forwarded for the virtual service.", svcLabels, nil)
	descRealConns     = prometheus.NewDesc("drlb_realserver_connections_total", "Connections scheduled to the real server.", realLabels, nil)
	descRealPackets   = prometheus.NewDesc("drlb_realserver_packets_total", "Packets forwarded to the real server.", realLabels, nil)
	descRealBytes     = prometheus.NewDesc("drlb_realserver_bytes_total", "IP bytes forwarded to the real server.", realLabels, nil)
	descActive        = prometheus.NewDesc("drlb_realserver_active_connections", "SYN_RECV and ESTABLISHED connections (ipvsadm ActiveConn).", realLabels, nil)
	descInactive      = prometheus.NewDesc("drlb_realserver_inactive_connections", "Other connections (ipvsadm InActConn).", realLabels, nil)
	descWeight        = prometheus.NewDesc("drlb_realserver_weight", "Configured weight.", realLabels, nil)
	descUp            = prometheus.NewDesc("drlb_realserver_up", "1 if the real server takes new connections: its health check passes (it is neither down nor inhibited), its MAC address is resolved, and its weight is above 0.", realLabels, nil)
	descSorryConns    = prometheus.NewDesc("drlb_sorryserver_connections_total", "Connections scheduled to the service's sorry server (in drlb_service_connections_total too).", sorryLabels, nil)
	descSorryPackets  = prometheus.NewDesc("drlb_sorryserver_packets_total", "Packets forwarded to the service's sorry server (in drlb_service_packets_total too).", sorryLabels, nil)
	descSorryBytes    = prometheus.NewDesc("drlb_sorryserver_bytes_total", "IP bytes forwarded to the service's sorry server (in drlb_service_bytes_total too).", sorryLabels, nil)
	descSorryActive   = prometheus.NewDesc("drlb_sorryserver_active_connections", "SYN_RECV and ESTABLISHED connections of the sorry server.", sorryLabels, nil)
	descSorryInactive = prometheus.NewDesc("drlb_sorryserver_inactive_connections", "Other connections of the sorry server.", sorryLabels, nil)
	descSorryStanding = prometheus.NewDesc("drlb_sorryserver_standing_in", "1 while the sorry server takes the service's new connections (no real server can).", sorryLabels, nil)
	descFrames        = prometheus.NewDesc("drlb_frames_total", "Frames by verdict reason (forwarded, passed to the kernel, dropped).", []string{"reason"}, nil)
	descPressure      = prometheus.NewDesc("drlb_conntable_pressure", "1 while the connection table is past half full and SYN_RECV entries get the short timeout.", nil, nil)
	descPressureOn    = prometheus.NewDesc("drlb_conntable_pressure_episodes_total", "Times the connection table came under pressure.", nil, nil)
	descKernelOut     = prometheus.NewDesc("drlb_kernel_flows", "Flows handed to the kernel now (drlb run -kernel-flows): handed out and not taken back, including those the kernel's map had no room for (drlb_kernel_flows_full_total counts those).", nil, nil)
	descKernelHeld    = prometheus.NewDesc("drlb_kernel_flows_held", "1 while kernel flows are held: drlb forwards every frame itself because its tc program does not run first at tc ingress (another program ahead of it, or detached), or because its XDP program was detached (drlb_xdp_attached), or for good after a failed write (drlb ctl: failed); 0 while the kernel forwards them (drlb run -kernel-flows only).", nil, nil)
	descSYNsHeld      = prometheus.NewDesc("drlb_kernel_syns_held", "1 while the kernel's SYN forwarding is held: drlb takes every SYN itself because its tc program does not run first at tc ingress (another program ahead of it, or detached), or because its XDP program was detached, or for good after a failed write (drlb ctl: failed); 0 while the kernel may forward SYNs under table pressure (drlb run -kernel-syns only).", nil, nil)
	descXDPAttached   = prometheus.NewDesc("drlb_xdp_attached", "1 while drlb's XDP program is attached (drlb run -io afxdp), 0 once it was detached from outside drlb: VIP frames then reach drlb through AF_PACKET and the kernel's IP stack sees them too.", nil, nil)
	descKernelFwd     = prometheus.NewDesc("drlb_kernel_forwarded_frames_total", "Frames of established flows the kernel (the XDP or tc program) forwarded itself (drlb run -kernel-flows); also counted in drlb_frames_total{reason=\"existing\"} and the real servers' packets.", nil, nil)
	descKernelSYNs    = prometheus.NewDesc("drlb_kernel_syns_total", "Bare SYNs the kernel (the XDP or tc program) forwarded itself while the connection table was under pressure (drlb run -kernel-syns); also counted in drlb_frames_total{reason=\"syn-stateless\"}.", nil, nil)
	descWorkerFrames  = prometheus.NewDesc("drlb_worker_frames_total", "Frames each data-path worker processed (frames are sorted among workers by client address).", []string{"worker"}, nil)
	descWorkerEntries = prometheus.NewDesc("drlb_worker_conntable_entries", "Entries in each data-path worker's connection table.", []string{"worker"}, nil)
	descWorkerXDP     = prometheus.NewDesc("drlb_worker_xdp_frames_total", "Frames each data-path worker read through AF_XDP (-io afxdp with a worker per receive queue; the rest of drlb_worker_frames_total came through AF_PACKET, such as the worker's clients' frames the NIC put on another queue; ARP and NDP are in neither).", []string{"worker"}, nil)
	descEvicted       = prometheus.NewDesc("drlb_conntable_evicted_total", "Entries evicted from a full connection table for a new connection, by state (only SYN_RECV is ever evicted).", []string{"state"}, nil)
	descTrusted       = prometheus.NewDesc("drlb_trusted_clients_total", "Clients put in the trusted lane after a completed TCP handshake: their bare SYNs reach a queue of their own, not the SYN socket a flood fills.", nil, nil)
	descLinkDrops     = prometheus.NewDesc("drlb_link_dropped_frames_total", "Frames the sockets dropped: rx (receive queue full; every kind of frame but bare TCP SYNs), rx_syn (the SYN socket's receive queue, or with -io afxdp its receive ring, full: bare TCP SYNs only, a SYN flood's cost), rx_syn_trusted (the same for bare SYNs from trusted clients, which have a queue of their own), rx_xdp (with -io afxdp: the main AF_XDP socket's receive ring full or out of fill chunks; every kind of VIP frame but bare TCP SYNs), tx (send queue full), tx_failed (refused by the kernel on the way out for another reason, or not sendable: counted forwarded, never sent), truncated, unrepresentable.", []string{"kind"}, nil)
	descKernelFull    = prometheus.NewDesc("drlb_kernel_flows_full_total", "Flows the kernel's map had no room for (drlb run -kernel-flows), left to drlb, which forwards their frames itself: flows, not frames.", nil, nil)
	descARP           = prometheus.NewDesc("drlb_arp_events_total", "VIP responder events: requests, probes, replies, conflicts, malformed.", []string{"event"}, nil)
	descNeighbors     = prometheus.NewDesc("drlb_neighbor_events_total", "Real-server resolution events: requests, send_errors, accepted, rejected.", []string{"event"}, nil)

	descHAState       = prometheus.NewDesc("drlb_ha_state", "1 for the VRRP state the director is in (INIT, BACKUP, MASTER, FAULT: the link is down), 0 for the others.", []string{"family", "state"}, nil)
	descHATransitions = prometheus.NewDesc("drlb_ha_transitions_total", "VRRP state transitions.", []string{"family"}, nil)
	descHAReceived    = prometheus.NewDesc("drlb_ha_adverts_received_total", "VRRP adverts for our virtual router taken into the election.", []string{"family"}, nil)
	descHASent        = prometheus.NewDesc("drlb_ha_adverts_sent_total", "VRRP adverts sent (send errors included).", []string{"family"}, nil)
	descHASendErrors  = prometheus.NewDesc("drlb_ha_advert_send_errors_total", "VRRP adverts the socket refused.", []string{"family"}, nil)
	descHAAddrTaken   = prometheus.NewDesc("drlb_ha_adverts_addr_list_taken_total", "VRRP adverts for our virtual router whose address list differs from ours, taken all the same: the list follows the VIPs (YAML, IPv6), and a reload changes it on one director before the other.", []string{"family"}, nil)
	descHAIgnored     = prometheus.NewDesc("drlb_ha_adverts_ignored_total", "VRRP packets ignored, by reason: ttl, version, vrid, checksum, addr_list (an advert for our virtual router whose address list is not our keepalived.conf's virtual_ipaddress: keepalived's addr_list_err), malformed.", []string{"family", "reason"}, nil)

	descSyncSent       = prometheus.NewDesc("drlb_ha_sync_messages_sent_total", "Connection sync messages sent to peers, one per peer (those the socket refused are not counted here: drlb_ha_sync_send_errors_total).", nil, nil)
	descSyncSendErrors = prometheus.NewDesc("drlb_ha_sync_send_errors_total", "Connection sync messages the socket refused.", nil, nil)
	descSyncReceived   = prometheus.NewDesc("drlb_ha_sync_messages_received_total", "Connection sync messages accepted (MAC and replay checks passed).", nil, nil)
	descSyncRejected   = prometheus.NewDesc("drlb_ha_sync_messages_rejected_total", "Connection sync messages dropped, by reason: bad_mac, replay, unknown_peer, malformed.", []string{"reason"}, nil)
	descSyncEntries    = prometheus.NewDesc("drlb_ha_sync_entries_total", "Received sync entries by outcome: applied, ended, unknown_service, unknown_server, invalid, table_full.", []string{"outcome"}, nil)
	descSyncDropped    = prometheus.NewDesc("drlb_ha_sync_events_dropped_total", "Table changes not sent because a worker's event buffer was full (more than a batch records).", nil, nil)
	descSyncBulk       = prometheus.NewDesc("drlb_ha_sync_bulk_done", "1 once the bulk copy of a peer's table arrived, or its wait ended without it (timed out, or incomplete after its retries: drlb ctl says which).", nil, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSvcConns, descSvcPackets, descSvcBytes, descRealConns, descRealPackets,
		descRealBytes, descActive, descInactive, descWeight, descUp,
		descSorryConns, descSorryPackets, descSorryBytes, descSorryActive, descSorryInactive, descSorryStanding, descFrames, descKernelFwd, descKernelSYNs, descSYNsHeld, descKernelFull, descKernelHeld, descKernelOut, descXDPAttached, descPressure, descPressureOn, descEvicted, descWorkerFrames, descWorkerEntries, descWorkerXDP, descLinkDrops, descARP, descNeighbors,
		descHAState, descHATransitions, descHAReceived, descHASent, descHASendErrors, descHAIgnored, descHAAddrTaken,
		descSyncSent, descSyncSendErrors, descSyncReceived, descSyncRejected, descSyncEntries, descSyncDropped, descSyncBulk,
		descBGPPeerUp, descBGPPeerState, descBGPAnnounced, descBGPUsable, descBGPDrained} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.take()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, svc := range s.Services {
		l := []string{svc.Protocol, svc.VIP.String(), strconv.Itoa(int(svc.Port))}
		// The totals, not the listings' counts: -Z zeroes those, and a
		// Prometheus counter must never go back.
		t := svc.Totals()
		counter(descSvcConns, t.Connections, l...)
		counter(descSvcPackets, t.Packets, l...)
		counter(descSvcBytes, t.Bytes, l...)
		for _, r := range svc.RealServers {
			rl := append(append([]string(nil), l...), r.Address.String())
			t := r.Totals()
			counter(descRealConns, t.Connections, rl...)
			counter(descRealPackets, t.Packets, rl...)
			counter(descRealBytes, t.Bytes, rl...)
			gauge(descActive, float64(r.Active), rl...)
			gauge(descInactive, float64(r.Inactive), rl...)
			gauge(descWeight, float64(r.Weight), rl...)
			up := 0.0
			if r.State == "up" && r.Weight > 0 {
				up = 1
			}
			gauge(descUp, up, rl...)
		}
		if r := svc.Sorry; r != nil {
			sl := append(append([]string(nil), l...), r.Address.String())
			t := r.Totals()
			counter(descSorryConns, t.Connections, sl...)
			counter(descSorryPackets, t.Packets, sl...)
			counter(descSorryBytes, t.Bytes, sl...)
			gauge(descSorryActive, float64(r.Active), sl...)
			gauge(descSorryInactive, float64(r.Inactive), sl...)
			standing := 0.0
			if r.State == SorryStandingIn {
				standing = 1
			}
			gauge(descSorryStanding, standing, sl...)
		}
	}
	// Every reason, 0 included: a series that appears only at its first
	// frame loses that increase to rate() and increase().
	for _, r := range forwarder.Reasons() {
		counter(descFrames, s.Frames[r.String()], r.String())
	}
	if s.KernelFlows != "" {
		// From the start, 0 included, as drlb_frames_total.
		counter(descKernelFwd, s.KernelForwarded)
		counter(descKernelFull, s.Link[linkKernelFlowsFull])
		held := 0.0
		if s.KernelFlows == KernelFlowsHeld || s.KernelFlows == KernelFlowsFailed {
			held = 1
		}
		gauge(descKernelHeld, held)
		gauge(descKernelOut, float64(s.KernelFlowsOut))
	}
	// From the start, 0 included, as drlb_frames_total, and always (the
	// series costs one line); the hold's gauge only with -kernel-syns.
	counter(descKernelSYNs, s.KernelSYNs)
	if s.KernelSYNsState != "" {
		held := 0.0
		if s.KernelSYNsState == KernelSYNsHeld || s.KernelSYNsState == KernelSYNsFailed {
			held = 1
		}
		gauge(descSYNsHeld, held)
	}
	if s.XDP != "" {
		attached := 1.0
		if s.XDP == XDPDetached {
			attached = 0
		}
		gauge(descXDPAttached, attached)
	}
	if o := s.Overload; o != nil {
		p := 0.0
		if o.Pressure {
			p = 1
		}
		ch <- prometheus.MustNewConstMetric(descPressure, prometheus.GaugeValue, p)
		counter(descPressureOn, o.PressureEpisodes)
		counter(descEvicted, o.SynEvicted, "SYN_RECV")
		counter(descTrusted, o.TrustedClients)
	}
	for i, wk := range s.Workers {
		counter(descWorkerFrames, wk.Frames, strconv.Itoa(i))
		gauge(descWorkerEntries, float64(wk.Entries), strconv.Itoa(i))
		if s.AFXDP != "" {
			counter(descWorkerXDP, wk.XDPFrames, strconv.Itoa(i))
		}
	}
	for kind, n := range s.Link {
		if kind != linkKernelFlowsFull { // flows, not frames: a counter of its own
			counter(descLinkDrops, n, kind)
		}
	}
	if _, ok := s.Link[linkXDPRx]; !ok && s.AFXDP != "" && s.Link != nil {
		counter(descLinkDrops, 0, linkXDPRx) // from the start, as the other kinds
	}
	for ev, n := range s.ARP {
		counter(descARP, n, ev)
	}
	for ev, n := range s.Neighbors {
		counter(descNeighbors, n, ev)
	}
	for _, h := range s.HAInstances() {
		f := h.Family
		for _, st := range HAStates {
			v := 0.0
			if st == h.State {
				v = 1
			}
			gauge(descHAState, v, f, st)
		}
		counter(descHATransitions, h.Transitions, f)
		counter(descHAReceived, h.Received, f)
		counter(descHASent, h.Sent, f)
		counter(descHASendErrors, h.SendErrors, f)
		counter(descHAAddrTaken, h.AddrListTaken, f)
		for reason, n := range h.Ignored {
			counter(descHAIgnored, n, f, reason)
		}
	}
	if h := s.HA; h != nil {
		if y := h.Sync; y != nil {
			counter(descSyncSent, y.Sent)
			counter(descSyncSendErrors, y.SendErrors)
			counter(descSyncReceived, y.Received)
			for _, reason := range SyncRejectReasons {
				counter(descSyncRejected, y.Rejected[reason], reason)
			}
			for outcome, n := range y.Entries {
				counter(descSyncEntries, n, outcome)
			}
			counter(descSyncDropped, y.Dropped)
			done := 0.0
			if y.Bulk != "waiting" {
				done = 1
			}
			gauge(descSyncBulk, done)
		}
	}
	collectBGP(ch, s.BGP)
}

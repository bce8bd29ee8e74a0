package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BGPStatus is the director's BGP side, in a Snapshot when the config has
// a bgp: block: each session and what is announced.
type BGPStatus struct {
	ASN            uint32     `json:"asn,omitempty"`
	RouterID       netip.Addr `json:"router_id,omitzero"`
	Drained        bool       `json:"drained"`
	Stopping       bool       `json:"stopping,omitempty"`
	MinRealServers int        `json:"min_realservers"`
	Peers          []BGPPeer  `json:"peers"`
	VIPs           []BGPVIP   `json:"vips"`
}

// BGPPeer is one BGP session.
type BGPPeer struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	State   string     `json:"state"` // idle, connect, active, opensent, openconfirm, established
	// Since is when the session last came up or went down (zero: never).
	Since    time.Time `json:"since,omitzero"`
	HoldTime float64   `json:"hold_time_seconds,omitempty"` // negotiated
}

// BGPVIP is one VIP: announced or not, and why not.
type BGPVIP struct {
	VIP       netip.Addr `json:"vip"`
	NextHop   netip.Addr `json:"next_hop,omitzero"`
	Usable    int        `json:"usable_realservers"` // the fewest among the VIP's services
	Announced bool       `json:"announced"`
	Why       string     `json:"why,omitempty"`
}

// WriteBGP prints the sessions and the announced VIPs, the way `drlb ctl
// bgp` shows them; nothing when s has no BGP side.
func WriteBGP(w io.Writer, s Snapshot) {
	b := s.BGP
	if b == nil {
		return
	}
	state := "announcing"
	switch {
	case b.Stopping:
		state = "stopping (everything withdrawn)"
	case b.Drained:
		state = "drained (everything withdrawn: drlb ctl bgp undrain)"
	}
	fmt.Fprintf(w, "BGP %s, at least %d usable real server(s) per service\n", state, b.MinRealServers)
	fmt.Fprintf(w, "%-28s %-10s %-12s %s\n", "Peer", "AS", "State", "Since")
	for _, p := range b.Peers {
		since := "-"
		if !p.Since.IsZero() {
			since = s.Time.Sub(p.Since).Truncate(time.Second).String()
		}
		fmt.Fprintf(w, "%-28s %-10d %-12s %s\n", p.Address, p.ASN, p.State, since)
	}
	fmt.Fprintf(w, "%-28s %-10s %-6s %s\n", "VIP", "Announced", "Usable", "Next hop / why not")
	for _, v := range b.VIPs {
		yes, note := "no", v.Why
		if v.Announced {
			yes, note = "yes", v.NextHop.String()
		}
		fmt.Fprintf(w, "%-28s %-10s %-6d %s\n", v.VIP, yes, v.Usable, note)
	}
}

// bgpRequest is the body of POST /v1/bgp.
type bgpRequest struct {
	Drain bool `json:"drain"`
}

// WithBGP adds POST /v1/bgp ({"drain": true|false}) to h, run by drain:
// `drlb ctl bgp drain` and `undrain`.
func WithBGP(h http.Handler, drain func(on bool) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("POST /v1/bgp", func(w http.ResponseWriter, r *http.Request) {
		var req bgpRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req); err != nil {
			http.Error(w, `want {"drain": true|false}`, http.StatusBadRequest)
			return
		}
		if err := drain(req.Drain); err != nil {
			writeResult(w, refused(err))
			return
		}
		out := "BGP: every VIP withdrawn; this director keeps forwarding what still reaches it\n"
		if !req.Drain {
			out = "BGP: VIPs announced again while they have enough usable real servers\n"
		}
		writeResult(w, Result{Output: out})
	})
	return mux
}

// BGPDrain asks the director on the socket at path to withdraw every VIP
// (on) or announce them again (off).
func BGPDrain(ctx context.Context, path string, on bool) (Result, error) {
	return post(ctx, Client(path), path, "/v1/bgp", bgpRequest{Drain: on}, true)
}

var (
	descBGPPeerUp    = prometheus.NewDesc("drlb_bgp_peer_up", "1 if the BGP session with the peer is established.", []string{"peer", "asn"}, nil)
	descBGPPeerState = prometheus.NewDesc("drlb_bgp_peer_state", "1 for the BGP session's current FSM state.", []string{"peer", "state"}, nil)
	descBGPAnnounced = prometheus.NewDesc("drlb_bgp_vip_announced", "1 if the VIP is in the BGP speaker's table: sent to every established peer that carries its address family (see drlb_bgp_peer_up).", []string{"vip"}, nil)
	descBGPUsable    = prometheus.NewDesc("drlb_bgp_vip_usable_realservers", "Usable real servers of the VIP (the fewest among its services).", []string{"vip"}, nil)
	descBGPDrained   = prometheus.NewDesc("drlb_bgp_drained", "1 while the director is drained (drlb ctl bgp drain).", nil, nil)
)

// collectBGP adds the BGP metrics, when the director speaks BGP.
func collectBGP(ch chan<- prometheus.Metric, b *BGPStatus) {
	if b == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v bool, labels ...string) {
		f := 0.0
		if v {
			f = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, f, labels...)
	}
	gauge(descBGPDrained, b.Drained)
	for _, p := range b.Peers {
		gauge(descBGPPeerUp, p.State == "established", p.Address.String(), fmt.Sprint(p.ASN))
		gauge(descBGPPeerState, true, p.Address.String(), p.State)
	}
	for _, v := range b.VIPs {
		gauge(descBGPAnnounced, v.Announced, v.VIP.String())
		ch <- prometheus.MustNewConstMetric(descBGPUsable, prometheus.GaugeValue, float64(v.Usable), v.VIP.String())
	}
}

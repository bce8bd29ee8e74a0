package lab

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// service is the one virtual service of the lab: TCP VIP:80 over the real
// servers, as drlb YAML.
type service struct {
	iface     string
	vip       netip.Addr
	port      uint16
	scheduler string
	reals     []netip.Addr
	weights   []int
	client    netip.Addr // the lab's (only) client: sh and mh hash it
	// flags are the scheduler's flags (mh-port, ...), none by default.
	flags []string
	// udpPort, when not 0, adds a UDP service VIP:udpPort over the same
	// real servers and scheduler (the real servers' echo).
	udpPort uint16
	// bgp, when set, announces the VIP to this router by BGP.
	bgp *bgpPeer
	// ha, when set, shares the VIP with the other directors on the LAN by
	// VRRP: only the master answers ARP for it.
	ha *vrrpGroup
}

// vrrpGroup is a director's ha: block: the VRRP virtual router it is in,
// its priority there and its advert interval.
type vrrpGroup struct {
	vrid, priority int
	interval       time.Duration
}

// bgpPeer is the router a director announces the VIPs to: its address,
// AS numbers and the hold time.
type bgpPeer struct {
	router         netip.Addr
	asn, routerASN int
	holdTime       time.Duration
}

// yaml renders the service as the director's config file.
func (s service) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s          # the director's LAN interface\n", s.iface)
	if p := s.bgp; p != nil {
		fmt.Fprintf(&b, "bgp:                    # announce the VIP to the router while it can be served\n  asn: %d\n  hold_time: %s\n  peers:\n    - {address: %s, asn: %d}\n",
			p.asn, p.holdTime, p.router, p.routerASN)
	}
	if h := s.ha; h != nil {
		fmt.Fprintf(&b, "ha:                     # share the VIP by VRRP: only the master answers ARP for it\n  vrid: %d\n  priority: %d\n  advert_interval: %s\n",
			h.vrid, h.priority, h.interval)
	}
	b.WriteString("services:\n")
	s.service(&b, "tcp", s.port)
	if s.udpPort != 0 {
		s.service(&b, "udp", s.udpPort)
	}
	return b.String()
}

// service renders one entry of the services list.
func (s service) service(b *strings.Builder, proto string, port uint16) {
	fmt.Fprintf(b, "  - vip: %s\n    port: %d\n    protocol: %s\n    scheduler: %s\n", s.vip, port, proto, s.scheduler)
	if len(s.flags) > 0 {
		fmt.Fprintf(b, "    flags: [%s]\n", strings.Join(s.flags, ", "))
	}
	b.WriteString("    realservers:\n")
	for i, r := range s.reals {
		fmt.Fprintf(b, "      - {address: %s, weight: %d}\n", r, s.weights[i])
	}
}

// closedLoad is the connection count the director sees at each new
// connection of the lab: the requests run one after another and the client
// closes each before opening the next, so every earlier connection is in
// FIN_WAIT (inactive, IPVS-style) and none is active. The load-based
// schedulers (lc, wlc, sed, nq) read it; the others ignore it.
type closedLoad []uint32

func (l closedLoad) Conns(i int) (active, inactive uint32) { return 0, l[i] }

// expected returns how many of n new connections each real server should
// get, by running the same scheduler the director runs from the same
// fresh state: the lab's distribution must match it exactly.
func (s service) expected(n int) ([]int, error) {
	servers := make([]scheduler.Server, len(s.reals))
	for i, r := range s.reals {
		servers[i] = scheduler.Server{Addr: r, Weight: s.weights[i], Available: true}
	}
	sc, err := scheduler.New(s.scheduler, servers, scheduler.Options{})
	if err != nil {
		return nil, err
	}
	counts := make([]int, len(s.reals))
	load := make(closedLoad, len(s.reals))
	f := scheduler.Flow{Proto: 6, Src: s.client, Dst: s.vip, DstPort: s.port}
	for i := 0; i < n; i++ {
		k, err := sc.Pick(&f, load)
		if err != nil {
			return nil, err
		}
		counts[k]++
		load[k]++
	}
	return counts, nil
}

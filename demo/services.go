package demo

import (
	"fmt"
	"net/netip"
	"strings"

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
}

// yaml renders the service as the director's config file.
func (s service) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s          # the director's LAN interface\n", s.iface)
	b.WriteString("services:\n")
	fmt.Fprintf(&b, "  - vip: %s\n    port: %d\n    protocol: tcp\n    scheduler: %s\n    realservers:\n", s.vip, s.port, s.scheduler)
	for i, r := range s.reals {
		fmt.Fprintf(&b, "      - {address: %s, weight: %d}\n", r, s.weights[i])
	}
	return b.String()
}

// noLoad is the connection count of an idle service: rr and wrr ignore it.
type noLoad struct{}

func (noLoad) Conns(int) (active, inactive uint32) { return 0, 0 }

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
	f := scheduler.Flow{Proto: 6, Dst: s.vip, DstPort: s.port}
	for i := 0; i < n; i++ {
		k, err := sc.Pick(&f, noLoad{})
		if err != nil {
			return nil, err
		}
		counts[k]++
	}
	return counts, nil
}

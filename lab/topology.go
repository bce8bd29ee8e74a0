package lab

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/drlb/drlb/testbed"
)

// printTopology draws the lab: every host with its namespace, interface,
// address and MAC, and the role it plays in DR.
func printTopology(w io.Writer, l *testbed.Lab) {
	row := func(name string, p testbed.Port, ns, note string) {
		line := fmt.Sprintf("  %-12s %-5s %-12s %-18s %-20s %s", name, p.Iface, p.IPv4, p.MAC, ns, note)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "  %-12s %-5s %-12s %-18s %-20s %s\n", "HOST", "IFACE", "IPv4", "MAC", "NAMESPACE", "ROLE")
	row("client", l.Client.Port, l.Client.NSName, "HTTP client")
	fmt.Fprintf(w, "     |         routed link %s\n", prefix24(l.Client.IPv4))
	row("router", l.RouterUplink, l.Router.NSName, routerRole(l))
	row("", l.Router.Port, "", "")
	fmt.Fprintf(w, "     |\n  ===+=== LAN %s: bridge %s in namespace %s ===\n     |\n", prefix24(l.Router.IPv4), l.Switch.Iface, l.Switch.NSName)
	for _, d := range directors(l) {
		row("+- "+d.Name, d.Port, d.NSName, directorRole(l))
	}
	for _, rs := range l.RealServers {
		row("+- "+rs.Name, rs.Port, rs.NSName, "VIP/32 on lo")
	}
	if routedVIP(l) {
		fmt.Fprintf(w, "\n  VIP %s, port %d: off the LAN; each director announces it to the router by BGP.\n", l.VIP, testbed.HTTPPort)
		return
	}
	by := "drlb"
	if len(directors(l)) > 1 {
		by = "drlb on the VRRP master"
	}
	fmt.Fprintf(w, "\n  VIP %s, port %d: the address clients use; no host answers ARP for it but %s.\n", l.VIP, testbed.HTTPPort, by)
}

// directors are the lab's directors, the first one at least.
func directors(l *testbed.Lab) []*testbed.Host {
	if len(l.Directors) == 0 {
		return []*testbed.Host{l.Director}
	}
	return l.Directors
}

// routedVIP reports whether the VIP is off the LAN (announced by BGP).
func routedVIP(l *testbed.Lab) bool {
	lan, err := l.Router.IPv4.Prefix(24)
	return err == nil && !lan.Contains(l.VIP)
}

// routerRole and directorRole say what the router and a director do in l.
func routerRole(l *testbed.Lab) string {
	if routedVIP(l) {
		return "gateway; BIRD 2: BGP, ECMP"
	}
	return "gateway, ip_forward=1"
}

func directorRole(l *testbed.Lab) string {
	if routedVIP(l) {
		return "drlb; announces the VIP by BGP"
	}
	if len(directors(l)) > 1 {
		return "drlb, VRRP; VIP NOT on it"
	}
	return "drlb; the VIP is NOT on it"
}

// prefix24 names the /24 an address is in.
func prefix24(a netip.Addr) string {
	p, err := a.Prefix(24)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// Topology drawing geometry.
const (
	topoBoxW   = 204
	topoBoxH   = 100
	topoGap    = 26
	topoMargin = 20
	// topoMaxRS is how many real servers the drawing shows; more are
	// summed up in one box.
	topoMaxRS = 6
)

// topologySVG draws the lab: client and router on top, the LAN's bridge
// as a bus, the director and the real servers under it. marks adds a red
// line to the named hosts' boxes (what a scenario changed on them).
func topologySVG(l *testbed.Lab, marks map[string]string) string {
	type box struct {
		h     *testbed.Host
		lines []string
		role  string
	}
	var lan []box
	for _, d := range directors(l) {
		lan = append(lan, box{h: d, role: directorRole(l)})
	}
	for i, rs := range l.RealServers {
		if i == topoMaxRS {
			lan = append(lan, box{lines: []string{fmt.Sprintf("+ %d more", len(l.RealServers)-topoMaxRS), "real servers"}})
			break
		}
		lan = append(lan, box{h: rs, role: "VIP/32 on lo"})
	}
	// A real server whose ARP settings a scenario changed (arp-flux's
	// rs1 answers ARP for the VIP) is named: the caption must not say it
	// stays silent. Other marks (mtu's rs1) change nothing of ARP.
	silent := "every real server holds it on lo and stays silent."
	for _, rs := range l.RealServers {
		if strings.Contains(marks[rs.Name], "arp_") {
			silent = "every real server holds it on lo and stays silent, but " + rs.Name + " (marked in red)."
			break
		}
	}
	vip := fmt.Sprintf("VIP %s:%d: drlb answers ARP for it on the director; %s", l.VIP, testbed.HTTPPort, silent)
	if len(directors(l)) > 1 {
		vip = fmt.Sprintf("VIP %s:%d: drlb answers ARP for it on the VRRP master only; %s", l.VIP, testbed.HTTPPort, silent)
	}
	if routedVIP(l) {
		vip = fmt.Sprintf("VIP %s:%d, off the LAN: each director announces it to the router by BGP; every real server holds it on lo.", l.VIP, testbed.HTTPPort)
	}
	width := max(2*topoMargin+len(lan)*topoBoxW+(len(lan)-1)*topoGap, 2*topoMargin+2*topoBoxW+200, 2*topoMargin+len(vip)*7)
	busY := topoMargin + topoBoxH + 56
	row2 := busY + 44
	s := newSVG(width, row2+topoBoxH+44)
	draw := func(x, y int, b box) {
		class := "box"
		if slices.Contains(directors(l), b.h) {
			class = "box-director"
		}
		mark := ""
		if b.h != nil {
			mark = marks[b.h.Name]
		}
		if mark != "" {
			class = "box-marked"
		}
		s.rect(x, y, topoBoxW, topoBoxH, class)
		lines := b.lines
		if b.h != nil {
			s.text(x+10, y+22, "name", "start", b.h.Name)
			if b.h == l.Router {
				lines = []string{l.RouterUplink.Iface + " " + l.RouterUplink.IPv4.String(), b.h.Iface + " " + b.h.IPv4.String(), b.h.MAC.String()}
			} else {
				lines = []string{b.h.Iface + " " + b.h.IPv4.String(), b.h.MAC.String()}
			}
		}
		for i, line := range lines {
			s.text(x+10, y+38+i*13, "mono", "start", line)
		}
		n := len(lines)
		if b.role != "" {
			s.text(x+10, y+38+n*13, "small", "start", b.role)
			n++
		}
		if mark != "" {
			s.text(x+10, y+38+n*13, "mark", "start", mark)
		}
	}
	// Top row: the client, its link, the router.
	cx, rx := topoMargin, topoMargin+topoBoxW+200
	draw(cx, topoMargin, box{h: l.Client, role: "HTTP client"})
	draw(rx, topoMargin, box{h: l.Router, role: routerRole(l)})
	ly := topoMargin + topoBoxH/2
	s.line(cx+topoBoxW, ly, rx, ly, "wire")
	s.text((cx+topoBoxW+rx)/2, ly-8, "small", "middle", "routed link "+prefix24(l.Client.IPv4))
	// The LAN: the bridge as a bus, every LAN host hanging from it.
	s.line(topoMargin, busY, width-topoMargin, busY, "bus")
	s.line(rx+topoBoxW/2, topoMargin+topoBoxH, rx+topoBoxW/2, busY, "wire")
	s.text(topoMargin, busY-10, "small", "start",
		fmt.Sprintf("LAN %s: bridge %s in namespace %s", prefix24(l.Router.IPv4), l.Switch.Iface, l.Switch.NSName))
	for i, b := range lan {
		x := topoMargin + i*(topoBoxW+topoGap)
		s.line(x+topoBoxW/2, busY, x+topoBoxW/2, row2, "wire")
		draw(x, row2, b)
	}
	s.text(topoMargin, row2+topoBoxH+28, "", "start", vip)
	return s.String()
}

// lanes makes sequence-diagram lanes of hosts: each with its address and
// the MAC of its LAN interface (the router: both addresses).
func lanes(l *testbed.Lab, hosts ...*testbed.Host) []seqLane {
	var ls []seqLane
	for _, h := range hosts {
		ip := h.IPv4.String()
		if h == l.Router {
			ip = l.RouterUplink.IPv4.String() + " | " + h.IPv4.String()
		}
		ls = append(ls, seqLane{name: h.Name, sub: []string{ip, h.MAC.String()}})
	}
	return ls
}

package demo

import (
	"fmt"
	"io"
	"net/netip"

	"github.com/drlb/drlb/lab"
)

// printTopology draws the lab: every host with its namespace, interface,
// addresses and MAC, and the role it plays in DR.
func printTopology(w io.Writer, l *lab.Lab) {
	row := func(name string, p lab.Port, ns, note string) {
		fmt.Fprintf(w, "  %-9s %-5s %-13s %-18s %-20s %s\n", name, p.Iface, p.IPv4, p.MAC, ns, note)
	}
	fmt.Fprintf(w, "  %-9s %-5s %-13s %-18s %-20s %s\n", "HOST", "IFACE", "IPv4", "MAC", "NAMESPACE", "ROLE")
	row("client", l.Client.Port, l.Client.NSName, "sends HTTP requests to the VIP "+l.VIP.String())
	fmt.Fprintf(w, "     |      routed link %s\n", prefix24(l.Client.IPv4))
	row("router", l.RouterUplink, l.Router.NSName, "ip_forward=1, the client's and the real servers' gateway")
	row("", l.Router.Port, "", "")
	fmt.Fprintf(w, "     |\n  ===+=== LAN %s: bridge %s in namespace %s ===\n", prefix24(l.Router.IPv4), l.Switch.Iface, l.Switch.NSName)
	fmt.Fprintf(w, "     |\n")
	row("+- director", l.Director.Port, l.Director.NSName, "drlb answers ARP for the VIP; the VIP is NOT on it")
	for _, rs := range l.RealServers {
		row("+- "+rs.Name, rs.Port, rs.NSName, "VIP "+l.VIP.String()+"/32 on lo, ARP for it suppressed")
	}
}

// prefix24 names the /24 an address is in.
func prefix24(a netip.Addr) string {
	p, err := a.Prefix(24)
	if err != nil {
		return a.String()
	}
	return p.String()
}

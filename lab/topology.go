package lab

import (
	"fmt"
	"io"
	"net/netip"
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
	row("router", l.RouterUplink, l.Router.NSName, "gateway, ip_forward=1")
	row("", l.Router.Port, "", "")
	fmt.Fprintf(w, "     |\n  ===+=== LAN %s: bridge %s in namespace %s ===\n     |\n", prefix24(l.Router.IPv4), l.Switch.Iface, l.Switch.NSName)
	row("+- director", l.Director.Port, l.Director.NSName, "drlb; the VIP is NOT on it")
	for _, rs := range l.RealServers {
		row("+- "+rs.Name, rs.Port, rs.NSName, "VIP/32 on lo")
	}
	fmt.Fprintf(w, "\n  VIP %s, port %d: the address clients use; no host answers ARP for it but drlb.\n", l.VIP, testbed.HTTPPort)
}

// prefix24 names the /24 an address is in.
func prefix24(a netip.Addr) string {
	p, err := a.Prefix(24)
	if err != nil {
		return a.String()
	}
	return p.String()
}

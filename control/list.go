package control

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// hostPort prints an address the way ipvsadm -n does: [v6]:port.
func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// WriteList prints s like `ipvsadm -Ln`: the same header and columns, the
// real servers' forwarding method is always Route (direct routing). A real
// server that takes no traffic says why after the columns.
func WriteList(w io.Writer, s Snapshot) {
	fmt.Fprintf(w, "IP Virtual Server version drlb (size=%d)\n", s.MaxConns)
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
	for _, svc := range s.Services {
		flags := ""
		if svc.Persistence != "" {
			d, _ := time.ParseDuration(svc.Persistence)
			flags = fmt.Sprintf(" persistent %d", int(d.Seconds()))
		}
		fmt.Fprintf(w, "%-4s %s %s%s\n", strings.ToUpper(svc.Protocol), hostPort(svc.VIP, svc.Port), svc.Scheduler, flags)
		for _, r := range svc.RealServers {
			note := ""
			if r.State != "up" {
				note = "  (" + r.State + ")"
			}
			line := fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-9d%s", hostPort(r.Address, svc.Port), "Route", r.Weight, r.Active, r.Inactive, note)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
}

// WriteStats prints s like `ipvsadm -Ln --stats`. Out columns are 0: in
// direct routing replies never pass the director.
func WriteStats(w io.Writer, s Snapshot) {
	fmt.Fprintln(w, "IP Virtual Server version drlb")
	fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	fmt.Fprintln(w, "  -> RemoteAddress:Port")
	for _, svc := range s.Services {
		fmt.Fprintf(w, "%-4s %-28s %8s %8s %8s %8s %8s\n", strings.ToUpper(svc.Protocol), hostPort(svc.VIP, svc.Port),
			human(svc.Connections), human(svc.InPackets), "0", human(svc.InBytes), "0")
		for _, r := range svc.RealServers {
			fmt.Fprintf(w, "  -> %-28s %8s %8s %8s %8s %8s\n", hostPort(r.Address, svc.Port),
				human(r.Connections), human(r.InPackets), "0", human(r.InBytes), "0")
		}
	}
}

// WriteRate prints the per-second rates between two snapshots, like
// `ipvsadm -Ln --rate`.
func WriteRate(w io.Writer, before, after Snapshot) {
	dt := after.Time.Sub(before.Time).Seconds()
	if dt <= 0 {
		dt = 1
	}
	rate := func(a, b uint64) string {
		if b < a {
			return "0"
		}
		return human(uint64(float64(b-a)/dt + 0.5))
	}
	fmt.Fprintln(w, "IP Virtual Server version drlb")
	fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	fmt.Fprintln(w, "  -> RemoteAddress:Port")
	for i, svc := range after.Services {
		if i >= len(before.Services) {
			break
		}
		b := before.Services[i]
		fmt.Fprintf(w, "%-4s %-28s %8s %8s %8s %8s %8s\n", strings.ToUpper(svc.Protocol), hostPort(svc.VIP, svc.Port),
			rate(b.Connections, svc.Connections), rate(b.InPackets, svc.InPackets), "0", rate(b.InBytes, svc.InBytes), "0")
		for j, r := range svc.RealServers {
			if j >= len(b.RealServers) {
				break
			}
			br := b.RealServers[j]
			fmt.Fprintf(w, "  -> %-28s %8s %8s %8s %8s %8s\n", hostPort(r.Address, svc.Port),
				rate(br.Connections, r.Connections), rate(br.InPackets, r.InPackets), "0", rate(br.InBytes, r.InBytes), "0")
		}
	}
}

// human abbreviates large counters as ipvsadm does (K, M, G).
func human(n uint64) string {
	switch {
	case n >= 1e11:
		return fmt.Sprintf("%dG", n/1e9)
	case n >= 1e8:
		return fmt.Sprintf("%dM", n/1e6)
	case n >= 1e5:
		return fmt.Sprintf("%dK", n/1e3)
	}
	return fmt.Sprint(n)
}

// WriteConnEntries prints the connection table like `ipvsadm -Lnc`.
func WriteConnEntries(w io.Writer, s Snapshot) {
	fmt.Fprintln(w, "IPVS connection entries")
	fmt.Fprintf(w, "%-4s %-6s %-11s %-40s %-40s %s\n", "pro", "expire", "state", "source", "virtual", "destination")
	for _, c := range s.ConnEntries {
		exp := int(c.Expires + 0.5)
		fmt.Fprintf(w, "%-4s %02d:%02d  %-11s %-40s %-40s %s\n", strings.ToUpper(c.Protocol), exp/60, exp%60, c.State,
			c.Client, c.Virtual, netip.AddrPortFrom(c.Real, c.Virtual.Port()))
	}
	if s.ConnEntriesOmitted > 0 {
		fmt.Fprintf(w, "(%d more entries not listed)\n", s.ConnEntriesOmitted)
	}
}

package control

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// The listings of `drlb ctl list` and of `drlb ctl -L` (ipvsadm's
// syntax) share their rows: ipvsadm's columns, filled by the helpers
// below. `drlb ctl list` adds why a real server takes no traffic and
// abbreviates counters from 100000 on; `drlb ctl -L` is ipvsadm's output
// byte for byte (ipvsadm.go).

// hostPort prints an address the way ipvsadm -n does: [v6]:port.
func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// The column titles ipvsadm prints.
const (
	titleList = "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
	titleRemote = "  -> RemoteAddress:Port\n"
)

// counterTitle is the title of the --stats and --rate layouts.
func counterTitle(cols ...string) string {
	return fmt.Sprintf("%-33s %8s %8s %8s %8s %8s\n", append([]any{"Prot LocalAddress:Port"}, toAny(cols)...)...) + titleRemote
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

var (
	statsTitle = counterTitle("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	rateTitle  = counterTitle("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
)

// serviceName is the first column of a service line: "TCP  198.18.0.100:80".
func serviceName(protocol, addr string) string { return strings.ToUpper(protocol) + "  " + addr }

// realLine is a real server's line in the default layout, columns padded
// as ipvsadm pads them.
func realLine(addr string, weight, active, inactive int) string {
	return fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-10d", addr, "Route", weight, active, inactive)
}

// counterLine is a service's line in the --stats and --rate layouts: each
// column comes formatted, 9 characters wide.
func counterLine(name string, cols ...string) string {
	return fmt.Sprintf("%-33s%s\n", name, strings.Join(cols, ""))
}

// realCounterLine is a real server's line in the --stats and --rate layouts.
func realCounterLine(addr string, cols ...string) string {
	return fmt.Sprintf("  -> %-28s%s\n", addr, strings.Join(cols, ""))
}

// short is a counter column of drlb ctl list: abbreviated by human.
func short(n uint64) string { return fmt.Sprintf(" %8s", human(n)) }

// persistenceSeconds reads a Service's Persistence ("5m0s"), 0 when off.
func persistenceSeconds(p string) int {
	if p == "" {
		return 0
	}
	d, _ := time.ParseDuration(p)
	return int(d.Seconds())
}

// WriteList prints s like `ipvsadm -Ln`: the same header and columns, the
// real servers' forwarding method is always Route (direct routing). A real
// server that takes no traffic says why after the columns.
func WriteList(w io.Writer, s Snapshot) {
	fmt.Fprintf(w, "IP Virtual Server version drlb (size=%d)\n", s.MaxConns)
	io.WriteString(w, titleList)
	for _, svc := range s.Services {
		flags := ""
		if p := persistenceSeconds(svc.Persistence); p > 0 {
			flags = fmt.Sprintf(" persistent %d", p)
		}
		fmt.Fprintf(w, "%s %s%s\n", serviceName(svc.Protocol, hostPort(svc.VIP, svc.Port)), svc.Scheduler, flags)
		line := func(r Real, note string) {
			l := fmt.Sprintf("  -> %-28s %-7s %-6d %-10d %-9d%s", hostPort(r.Address, svc.Port), "Route", r.Weight, r.Active, r.Inactive, note)
			fmt.Fprintln(w, strings.TrimRight(l, " "))
		}
		for _, r := range svc.RealServers {
			note := ""
			if r.State != "up" {
				note = "  (" + r.State + ")"
			}
			line(r, note)
		}
		if r := svc.Sorry; r != nil {
			line(*r, "  (sorry server, "+r.State+")")
		}
	}
	// The kernel's SYN forwarding held: said here unless the kernel
	// flows' line below says it for both (held, or the XDP program
	// detached).
	synsHeld := s.KernelSYNsState == KernelSYNsHeld && s.KernelFlows != KernelFlowsHeld && s.XDP != XDPDetached
	writeOverload(w, s.Overload, s.KernelSYNs, synsHeld, s.KernelSYNsState == KernelSYNsFailed)
	writeKernelFlows(w, s)
}

// writeKernelFlows says, once the kernel forwarded frames of
// established flows itself (drlb run -kernel-flows) or holds flows, how
// many: the frames are in the packet counters above too; while kernel
// flows are held, why; and once the XDP program was detached from
// outside, that (nothing is printed before any of these).
func writeKernelFlows(w io.Writer, s Snapshot) {
	if s.KernelForwarded > 0 || s.KernelFlowsOut > 0 {
		fmt.Fprintf(w, "\nKernel flows: %d flows handed to the kernel; %d frames of established flows forwarded by the kernel itself (counted above too)\n",
			s.KernelFlowsOut, s.KernelForwarded)
	}
	var why string
	switch {
	case s.XDP == XDPDetached:
		why = "XDP program detached from outside drlb: VIP frames reach drlb through AF_PACKET and the kernel's IP stack sees them too; drlb forwards every frame itself until it restarts"
	case s.KernelFlows == KernelFlowsHeld:
		why = "Kernel flows held: another tc program runs before drlb's at tc ingress (or drlb's was detached); drlb forwards every frame itself"
	case s.KernelFlows == KernelFlowsFailed:
		why = "Kernel flows failed: a write to the kernel failed (see the log); drlb forwards every frame itself until it restarts"
	default:
		return
	}
	if s.KernelForwarded == 0 && s.KernelFlowsOut == 0 {
		fmt.Fprintln(w) // no counts line above: this one opens the section
	}
	fmt.Fprintln(w, why)
}

// writeOverload says, once the connection table has been under pressure,
// what its SYN-flood defence did, and below that how many of the SYNs
// forwarded without entry the kernel forwarded itself (drlb run
// -kernel-syns), once it did, and whether the kernel's SYN forwarding is
// held (synsHeld) or failed (synsFailed; nothing is printed before any
// of these: the listing stays ipvsadm's).
func writeOverload(w io.Writer, o *Overload, kernelSYNs uint64, synsHeld, synsFailed bool) {
	if o == nil || (!o.Pressure && o.PressureEpisodes == 0 && o.SynEvicted == 0) {
		if kernelSYNs > 0 || synsHeld || synsFailed {
			fmt.Fprintln(w) // no pressure line above: this one opens the section
			writeKernelSYNs(w, kernelSYNs, synsHeld, synsFailed)
		}
		return
	}
	state := "off"
	if o.Pressure {
		state = "ON (SYNs go through without entry, new SYN_RECV entries get a short timeout)"
	}
	fmt.Fprintf(w, "\nConnection table pressure %s; %d episodes, %d SYNs forwarded without entry, %d SYN_RECV entries evicted; %d clients trusted after a handshake\n",
		state, o.PressureEpisodes, o.SynStateless, o.SynEvicted, o.TrustedClients)
	writeKernelSYNs(w, kernelSYNs, synsHeld, synsFailed)
}

// writeKernelSYNs is the line of the bare SYNs the kernel forwarded itself
// under table pressure (Snapshot.KernelSYNs), once there are any, and the
// line of the kernel's SYN forwarding held or failed
// (Snapshot.KernelSYNsState).
func writeKernelSYNs(w io.Writer, n uint64, held, failed bool) {
	if n > 0 {
		fmt.Fprintf(w, "Kernel SYNs: %d bare SYNs forwarded by the kernel itself under table pressure (also among the SYNs forwarded without entry)\n", n)
	}
	switch {
	case failed:
		fmt.Fprintln(w, "Kernel SYNs failed: a write to the kernel failed (see the log); drlb takes every SYN itself until it restarts")
	case held:
		fmt.Fprintln(w, "Kernel SYNs held: another tc program runs before drlb's at tc ingress (or drlb's was detached); drlb takes every SYN itself")
	}
}

// WriteStats prints s like `ipvsadm -Ln --stats`. Out columns are 0: in
// direct routing replies never pass the director.
func WriteStats(w io.Writer, s Snapshot) {
	io.WriteString(w, "IP Virtual Server version drlb\n"+statsTitle)
	for _, svc := range s.Services {
		io.WriteString(w, counterLine(serviceName(svc.Protocol, hostPort(svc.VIP, svc.Port)),
			short(svc.Connections), short(svc.InPackets), short(0), short(svc.InBytes), short(0)))
		for _, r := range svc.RealServers {
			io.WriteString(w, realCounterLine(hostPort(r.Address, svc.Port),
				short(r.Connections), short(r.InPackets), short(0), short(r.InBytes), short(0)))
		}
		// Its counters are in the service's: without its row the
		// service's totals exceed the sum of the rows.
		if r := svc.Sorry; r != nil {
			io.WriteString(w, sorryNote(realCounterLine(hostPort(r.Address, svc.Port),
				short(r.Connections), short(r.InPackets), short(0), short(r.InBytes), short(0)), r.State))
		}
	}
}

// sorryNote adds a sorry server's role to its counter line.
func sorryNote(line, state string) string {
	return strings.TrimSuffix(line, "\n") + "  (sorry server, " + state + ")\n"
}

// perSecond is the rate of a counter between two snapshots dt seconds
// apart, rounded (0 if the counter went back, as after ipvsadm -Z).
func perSecond(before, after uint64, dt float64) uint64 {
	if after < before {
		return 0
	}
	return uint64(float64(after-before)/dt + 0.5)
}

// interval is the time between two snapshots in seconds (1 if they are
// not in order).
func interval(before, after Snapshot) float64 {
	if dt := after.Time.Sub(before.Time).Seconds(); dt > 0 {
		return dt
	}
	return 1
}

// sampleKey names a service across two samples: rates match them by
// service (and real servers by address), not by position, which an edit
// or reload between the samples moves.
func sampleKey(s Service) string { return s.Protocol + " " + hostPort(s.VIP, s.Port) }

// servicesByKey indexes a sample's services by sampleKey.
func servicesByKey(s Snapshot) map[string]Service {
	m := make(map[string]Service, len(s.Services))
	for _, svc := range s.Services {
		m[sampleKey(svc)] = svc
	}
	return m
}

// realsByAddr indexes a service's real servers by address, and its sorry
// server: -L --rate lists one standing in as a real server, and without
// its earlier sample its rate was all it had counted since the start
// divided by the interval (a real server of the same address wins).
func realsByAddr(s Service) map[netip.Addr]Real {
	m := make(map[netip.Addr]Real, len(s.RealServers)+1)
	if s.Sorry != nil {
		m[s.Sorry.Address] = *s.Sorry
	}
	for _, r := range s.RealServers {
		m[r.Address] = r
	}
	return m
}

// WriteRate prints the per-second rates between two snapshots, like
// `ipvsadm -Ln --rate`.
func WriteRate(w io.Writer, before, after Snapshot) {
	dt := interval(before, after)
	rate := func(a, b uint64) string { return short(perSecond(a, b, dt)) }
	io.WriteString(w, "IP Virtual Server version drlb\n"+rateTitle)
	// One that was not in the first sample reads as 0.
	earlier := servicesByKey(before)
	for _, svc := range after.Services {
		b, ok := earlier[sampleKey(svc)]
		if !ok {
			b = svc
		}
		io.WriteString(w, counterLine(serviceName(svc.Protocol, hostPort(svc.VIP, svc.Port)),
			rate(b.Connections, svc.Connections), rate(b.InPackets, svc.InPackets), short(0), rate(b.InBytes, svc.InBytes), short(0)))
		reals := realsByAddr(b)
		for _, r := range svc.RealServers {
			br, ok := reals[r.Address]
			if !ok {
				br = r
			}
			io.WriteString(w, realCounterLine(hostPort(r.Address, svc.Port),
				rate(br.Connections, r.Connections), rate(br.InPackets, r.InPackets), short(0), rate(br.InBytes, r.InBytes), short(0)))
		}
		if r := svc.Sorry; r != nil {
			br := *r
			if b.Sorry != nil && b.Sorry.Address == r.Address {
				br = *b.Sorry
			}
			io.WriteString(w, sorryNote(realCounterLine(hostPort(r.Address, svc.Port),
				rate(br.Connections, r.Connections), rate(br.InPackets, r.InPackets), short(0), rate(br.InBytes, r.InBytes), short(0)), r.State))
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

// expires prints a connection's remaining time as ipvsadm -c does: mm:ss,
// of whole seconds truncated as IPVS's /proc/net/ip_vs_conn gives them
// (rounded, an entry just refreshed read 15:00 where IPVS reads 14:59,
// and one about to expire 00:01).
func expires(seconds float64) string {
	exp := int(seconds)
	return fmt.Sprintf("%02d:%02d", exp/60, exp%60)
}

// WriteConnEntries prints the connection table like `ipvsadm -Lnc`.
func WriteConnEntries(w io.Writer, s Snapshot) {
	fmt.Fprintln(w, "IPVS connection entries")
	fmt.Fprintf(w, "%-4s %-6s %-11s %-40s %-40s %s\n", "pro", "expire", "state", "source", "virtual", "destination")
	for _, c := range s.ConnEntries {
		fmt.Fprintf(w, "%-4s %-6s %-11s %-40s %-40s %s\n", strings.ToUpper(c.Protocol), expires(c.Expires), c.State,
			c.Client, c.Virtual, netip.AddrPortFrom(c.Real, c.Virtual.Port()))
	}
	if s.ConnEntriesOmitted > 0 {
		fmt.Fprintf(w, "(%d more entries not listed)\n", s.ConnEntriesOmitted)
	}
}

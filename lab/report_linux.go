package lab

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// walk is section 7: the first request, hop by hop.
func (r *runner) walk(t *traffic) {
	w, l := r.w, r.l
	heading(w, 7, "One request, hop by hop")
	if len(t.ports) == 0 {
		return
	}
	var rsIdx = -1
	for i, rs := range l.RealServers {
		if rs.Name == t.servers[0] {
			rsIdx = i
		}
	}
	if rsIdx < 0 {
		r.checks.add("walked request answered by a lab real server", false, "answered by %q", t.servers[0])
		return
	}
	rs := l.RealServers[rsIdx]
	client := netip.AddrPortFrom(l.Client.IPv4, t.ports[0])
	fmt.Fprintf(w, "Request #1: %s -> %s:%d, answered by %s. From the captures:\n\n", client, l.VIP, r.svc.port, rs.Name)
	in := &walkInput{
		vip:    netip.AddrPortFrom(l.VIP, r.svc.port),
		client: client,
		names: map[string]string{
			l.Client.MAC.String():       "client",
			l.RouterUplink.MAC.String(): "router eth1",
			l.Router.MAC.String():       "router eth0",
			l.Director.MAC.String():     "director",
		},
		clientMAC: l.Client.MAC, routerLANMAC: l.Router.MAC, directorMAC: l.Director.MAC, rsMAC: rs.MAC,
		rsName:    rs.Name,
		flushed:   t.flushed,
		clientCap: t.byHost(l.Client, l.Client.Iface),
		routerLAN: t.byHost(l.Router, l.Router.Iface),
		director:  t.byHost(l.Director, l.Director.Iface),
		rs:        t.byHost(rs, rs.Iface),
		reals:     map[string][]frame{},
	}
	for _, x := range l.RealServers {
		in.names[x.MAC.String()] = x.Name
		in.reals[x.Name] = t.byHost(x, x.Iface)
		in.order = append(in.order, x.Name)
	}
	r.checks = append(r.checks, walk(w, in)...)
	if r.o.Trace {
		r.narration(client)
	}
}

// narration shows the director's own -trace lines for the walked request:
// the SYN in full, the connection's later packets one line each.
func (r *runner) narration(client netip.AddrPort) {
	w := r.w
	key := client.String() + " "
	fmt.Fprintf(w, "\nThe director's own narration of this request (drlb run -trace, in %s):\n\n", filepath.Base(r.logPath))
	n := 0
	for _, line := range strings.Split(r.dproc.logs(), "\n") {
		if !strings.HasPrefix(line, "trace: ") || !strings.Contains(line, key) {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(line, "trace: "), " | ")
		n++
		if n == 1 {
			fmt.Fprintf(w, "  %s\n", parts[0])
			for _, p := range parts[1:] {
				fmt.Fprintf(w, "      | %s\n", p)
			}
			continue
		}
		// "forward existing tcp ... [.] | real server ..."
		fmt.Fprintf(w, "  %s | %s\n", parts[0], strings.Join(parts[2:min(3, len(parts))], ""))
	}
	if n == 0 {
		fmt.Fprintf(w, "  (no trace lines for it: see %s)\n", r.logPath)
	}
}

// summary is section 8: the pcaps and the verdicts.
func (r *runner) summary(t *traffic) {
	w := r.w
	heading(w, 8, "Captures and checks")
	fmt.Fprintf(w, "One pcap per interface in %s (open them with Wireshark,\nor: tcpdump -nn -e -r FILE):\n\n", r.dir)
	saved := 0
	for _, c := range t.caps {
		path := filepath.Join(r.dir, c.name())
		frames := t.frames[c]
		if err := writePcap(path, frames); err != nil {
			fmt.Fprintf(w, "  %-22s NOT SAVED: %v\n", c.name(), err)
			continue
		}
		saved++
		fmt.Fprintf(w, "  %-22s %4d frames\n", c.name(), len(frames))
	}
	r.checks.add("pcaps saved", saved == len(t.caps), "%d of %d in %s", saved, len(t.caps), r.dir)
	fmt.Fprintf(w, "  %-22s the director's log", filepath.Base(r.logPath))
	if r.o.Trace {
		fmt.Fprint(w, " and -trace narration")
	}
	fmt.Fprintf(w, "\n  (locally sent TCP frames may show \"checksum incorrect\" in Wireshark: the\n   checksum is filled in later by the NIC, or here by the receiving veth)\n\n")
	r.checks.print(w)
	if r.checks.failed() {
		fmt.Fprintln(w, "\nSome checks FAILED: see above, and the director's log.")
	} else {
		fmt.Fprintf(w, "\nAll %d checks passed.\n", len(r.checks))
	}
}

// keepInstructions says how to look around a kept lab and remove it.
func (r *runner) keepInstructions() {
	w, l := r.w, r.l
	heading(w, 9, "The lab stays up (--keep)")
	fmt.Fprintf(w, "The director (pid %d) and each real server's web server keep running. Enter a host:\n\n", r.dproc.cmd.Process.Pid)
	for _, h := range l.Hosts() {
		fmt.Fprintf(w, "  ip netns exec %-20s bash\n", h.NSName)
	}
	fmt.Fprintf(w, "\nTry, for example:\n\n")
	fmt.Fprintf(w, "  # a request through the VIP, and the director's view of it:\n")
	fmt.Fprintf(w, "  ip netns exec %s curl -s http://%s/\n", l.Client.NSName, l.VIP)
	fmt.Fprintf(w, "  ip netns exec %s tcpdump -nn -e -i %s\n", l.Director.NSName, l.Director.Iface)
	fmt.Fprintf(w, "  tail -f %s\n", r.logPath)
	fmt.Fprintf(w, "\nRemove it (stops the director and the web servers, deletes the namespaces):\n\n")
	fmt.Fprintf(w, "  drlb lab down --name %s\n", l.Name)
}

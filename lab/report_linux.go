package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// walk is section 7: the first request, hop by hop.
func (r *runner) walk(t *traffic) {
	w, l := r.w, r.l
	r.section("One request, hop by hop")
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
		clientCap: t.of(l.Client, l.Client.Iface),
		routerLAN: t.of(l.Router, l.Router.Iface),
		director:  t.of(l.Director, l.Director.Iface),
		rs:        t.of(rs, rs.Iface),
		reals:     map[string][]frame{},
	}
	for _, x := range l.RealServers {
		in.names[x.MAC.String()] = x.Name
		in.reals[x.Name] = t.of(x, x.Iface)
		in.order = append(in.order, x.Name)
	}
	walked := walk(w, in)
	r.checks = append(r.checks, walked...)
	r.page.add("One request, hop by hop", in.diagram(lanes(l, l.Client, l.Router, l.Director, rs)).svg(),
		walkCaption(walked, client, in.vip, rs.Name))
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
		// "forward existing tcp ... [.] | real server ...". Not every
		// line has three parts (step.Narrator: a pass has two, a drop
		// before any service was found one): parts[2:min(3, len)] panicked
		// on one part and dropped the second of two. Show the real server
		// where there is one, else the line's last part, else the line.
		tail := ""
		if len(parts) > 1 {
			tail = parts[len(parts)-1]
		}
		for _, p := range parts[1:] {
			if strings.HasPrefix(p, "real server ") {
				tail = p
				break
			}
		}
		if tail == "" {
			fmt.Fprintf(w, "  %s\n", parts[0])
			continue
		}
		fmt.Fprintf(w, "  %s | %s\n", parts[0], tail)
	}
	if n == 0 {
		fmt.Fprintf(w, "  (no trace lines for it: see %s)\n", r.logPath)
	}
}

// summary is section 8: the pcaps and the verdicts.
func (r *runner) summary(t *traffic) {
	r.savePcaps(t.captures, "")
	r.finish()
}

// savedPcap is one pcap file a run wrote.
type savedPcap struct {
	prefix, name string
	frames       int
}

// savePcaps writes one pcap per captured interface into the run's
// directory, each name prefixed with prefix (a scenario's phase).
func (r *runner) savePcaps(cs *captures, prefix string) {
	r.captureLost += cs.lost()
	for _, c := range cs.caps {
		r.pcapsWanted++
		name := prefix + c.name()
		frames := cs.frames[c]
		if err := writePcap(filepath.Join(r.dir, name), frames); err != nil {
			fmt.Fprintf(r.w, "  %s NOT SAVED: %v\n", name, err)
			continue
		}
		r.pcaps = append(r.pcaps, savedPcap{prefix: prefix, name: name, frames: len(frames)})
	}
}

// finish is the last section: where the pcaps are, and the check table.
func (r *runner) finish() {
	w := r.w
	r.section("Captures and checks")
	fmt.Fprintf(w, "One pcap per interface in %s (open them with Wireshark,\nor: tcpdump -nn -e -r FILE):\n\n", r.dir)
	var prefixes []string
	files, frames := map[string]int{}, map[string]int{}
	for _, p := range r.pcaps {
		if files[p.prefix] == 0 {
			prefixes = append(prefixes, p.prefix)
		}
		files[p.prefix]++
		frames[p.prefix] += p.frames
	}
	if len(prefixes) == 1 && prefixes[0] == "" {
		for _, p := range r.pcaps {
			fmt.Fprintf(w, "  %-22s %4d frames\n", p.name, p.frames)
		}
	} else {
		for _, p := range prefixes {
			fmt.Fprintf(w, "  %-22s %d files, %d frames\n", p+"*.pcap", files[p], frames[p])
		}
	}
	// The captures are the evidence of every other check: one that missed
	// frames (a full socket buffer) could show "0 frames from the VIP on
	// the director" where there were some, so a loss fails the run.
	saved := fmt.Sprintf("%d of %d in %s", len(r.pcaps), r.pcapsWanted, r.dir)
	if r.captureLost > 0 {
		saved += fmt.Sprintf("; the captures MISSED %d frames: the checks above counted incomplete captures", r.captureLost)
	}
	r.checks.add("pcaps saved", len(r.pcaps) == r.pcapsWanted && r.captureLost == 0, "%s", saved)
	for _, log := range r.logs {
		fmt.Fprintf(w, "  %-22s the director's log", filepath.Base(log))
		if r.o.Trace {
			fmt.Fprint(w, " and -trace narration")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  (locally sent TCP frames may show \"checksum incorrect\" in Wireshark: the\n   checksum is filled in later by the NIC, or here by the receiving veth)\n\n")
	r.checks.print(w)
	if r.checks.failed() {
		fmt.Fprintln(w, "\nSome checks FAILED: see above, and the director's log.")
	} else {
		fmt.Fprintf(w, "\nAll %d checks passed.\n", len(r.checks))
	}
}

// writeHTML writes the run's page (--html).
func (r *runner) writeHTML() error {
	f, err := os.Create(r.o.HTML)
	if err != nil {
		return err
	}
	if err := r.page.render(f, r.checks, pageFooter(time.Now(), r.dir)); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", r.o.HTML, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(r.w, "\nThe run as one page, with drawings (opens offline in any browser): %s\n", r.o.HTML)
	return nil
}

// keepInstructions says how to look around a kept lab and remove it.
func (r *runner) keepInstructions() {
	w, l := r.w, r.l
	r.section("The lab stays up (--keep)")
	fmt.Fprintf(w, "The director (pid %d) and each real server's web server keep running. Enter a host:\n\n", r.dproc.cmd.Process.Pid)
	for _, h := range l.Hosts() {
		fmt.Fprintf(w, "  ip netns exec %-20s bash\n", h.NSName)
	}
	fmt.Fprintf(w, "\nTry, for example:\n\n")
	fmt.Fprintf(w, "  # a request through the VIP, and the director's view of it:\n")
	fmt.Fprintf(w, "  ip netns exec %s curl -s http://%s/\n", l.Client.NSName, l.VIP)
	fmt.Fprintf(w, "  ip netns exec %s tcpdump -nn -e -i %s\n", l.Director.NSName, l.Director.Iface)
	fmt.Fprintf(w, "  tail -f %s\n", r.logPath)
	fmt.Fprintf(w, "  # the director's table, like ipvsadm -Ln (its control socket is the lab's own):\n")
	fmt.Fprintf(w, "  drlb ctl -s %s list --stats\n", r.ctlPath())
	fmt.Fprintf(w, "\nRemove it (stops the director and the web servers, deletes the namespaces):\n\n")
	fmt.Fprintf(w, "  drlb lab down --name %s\n", l.Name)
}

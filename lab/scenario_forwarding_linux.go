package lab

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"time"

	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// forwardingRequests is how many requests each phase of forwarding-on sends.
const forwardingRequests = 4

// forwardingOn is `drlb lab --scenario forwarding-on`: IP forwarding is
// switched on under a running director whose kernel has a next hop for
// the VIP, so the kernel routes its own copy of every VIP frame to the
// real server: rs1 gets each packet twice (the director runs with
// -keep-kernel-copy, or its tc drop would keep the kernel from seeing the
// frames). drlb run then refuses to start; with -blackhole-vip each packet
// arrives once.
func (r *runner) forwardingOn(ctx context.Context) error {
	w, l := r.w, r.l
	rs1 := l.RealServers[0]
	r.topology(map[string]string{l.Director.Name: "ip_forward=1"})

	r.section("The director")
	// sh, not the lab's wrr (one real server here, so the same choice):
	// the kernel's routed copy of a SYN can reach rs1 before drlb has read
	// its own from the SYN socket, and the client's ACK can then reach
	// drlb first; wrr drops such an ACK (no connection), sh places it by
	// its hash, so rs1 still gets both copies of every frame.
	svc := r.svc
	svc.scheduler = "sh"
	if _, err := r.writeConfig("drlb.yaml", svc); err != nil {
		return err
	}
	// -keep-kernel-copy: by default drlb drops the kernel's copy of VIP
	// frames at tc ingress, which would hide the trap this shows.
	if err := r.startDirector("director.log", false, "-keep-kernel-copy"); err != nil {
		return err
	}
	fmt.Fprintln(w, "  drlb checked the host as it started: IP forwarding was off, as DR needs.")
	fmt.Fprintln(w, "  It runs with -keep-kernel-copy here: by default it drops the kernel's copy of each VIP")
	fmt.Fprintln(w, "  frame at tc ingress once its socket has read the frame, which would hide this trap.")

	r.section("The trap: the director's kernel forwards")
	fmt.Fprintln(w, "The director's kernel receives its own copy of every frame sent to the VIP (the")
	fmt.Fprintln(w, "frame is addressed to its MAC). With forwarding off it drops that copy. Now something")
	fmt.Fprintln(w, "switches forwarding on while drlb runs (a container runtime does), and the kernel has a")
	fmt.Fprintf(w, "next hop for the VIP: here a static neighbour entry left from when the VIP lived on %s\n", rs1.Name)
	fmt.Fprintln(w, "(a route for the VIP, or a VIP the router sends back, do the same):")
	fmt.Fprintln(w)
	if err := r.sysctl(l.Director, "like dockerd at start", "net.ipv4.ip_forward", "1"); err != nil {
		return err
	}
	cmdLine(w, fmt.Sprintf("ip -n %s neigh replace %s lladdr %s dev %s nud permanent", l.Director.NSName, l.VIP, rs1.MAC, l.Director.Iface), "the next hop")
	if err := setNeighbor(l, l.Director, l.VIP, rs1.MAC); err != nil {
		return err
	}

	r.section("The symptom: " + rs1.Name + " gets every packet twice")
	twice, err := r.copiesPhase(ctx, "twice-")
	if err != nil {
		return err
	}
	r.printCopies(twice)
	fmt.Fprintln(w, "TCP shrugs duplicates off, so requests still work; the real server does twice the work,")
	fmt.Fprintln(w, "a UDP service answers twice, and with several real servers the kernel's copy of every")
	fmt.Fprintln(w, "connection goes to whichever one its next hop names, not to the one drlb chose.")
	r.checks.add("trap: "+rs1.Name+" gets every packet twice", twice.received > 0 && twice.arrived == 2*twice.received,
		"director received %d, %s received %d", twice.received, rs1.Name, twice.arrived)
	r.checks.add("trap: the extra copies are the kernel's (ttl - 1)", twice.kernelCopies > 0 && twice.kernelCopies == twice.received,
		"%d of %d copies one ttl lower than drlb's", twice.kernelCopies, twice.arrived-twice.received)

	r.section("drlb run refuses to start like this")
	fmt.Fprintln(w, "drlb checks forwarding when it starts. Restarted now, it refuses and says what to change:")
	fmt.Fprintln(w)
	if err := r.stopDirector(); err != nil {
		return err
	}
	out, refused := r.tryDirector(ctx)
	indent(w, "  ", out)
	named := strings.Contains(out, "net.ipv4.ip_forward=0") && strings.Contains(out, "-blackhole-vip")
	r.checks.add("drlb run refuses with forwarding on", refused && strings.Contains(out, "refusing to start") && named,
		"refused: %v; names ip_forward=0 and -blackhole-vip: %v", refused, named)

	r.section("The fix: -blackhole-vip")
	fmt.Fprintln(w, "Where forwarding is not needed: sysctl -w net.ipv4.ip_forward=0. On a host that must")
	fmt.Fprintln(w, "forward, drlb run -blackhole-vip adds a blackhole route for each VIP, so the kernel")
	fmt.Fprintln(w, "drops its copy (drlb reads its own from the raw socket), and removes it on exit:")
	fmt.Fprintln(w)
	// -keep-kernel-copy again, so that the route, not the tc drop, is
	// what keeps the kernel's copy from rs1.
	if err := r.startDirector("director-blackhole.log", false, "-blackhole-vip", "-keep-kernel-copy"); err != nil {
		return err
	}
	route, err := blackholeRoute(l, l.Director, l.VIP)
	if err != nil {
		return err
	}
	cmdLine(w, fmt.Sprintf("ip -n %s route show type blackhole", l.Director.NSName), "")
	fmt.Fprintf(w, "  %s\n\n", route)
	r.checks.add("fix: a blackhole route for the VIP while drlb runs", route != "", "%s", route)
	once, err := r.copiesPhase(ctx, "once-")
	if err != nil {
		return err
	}
	r.printCopies(once)
	r.checks.add("fix: "+rs1.Name+" gets every packet once", once.received > 0 && once.arrived == once.received && once.failed == 0,
		"director received %d, %s received %d; %d of %d requests answered", once.received, rs1.Name, once.arrived, len(once.answers)-once.failed, len(once.answers))
	r.page.add("The director's kernel forwards its copy, then the fix", r.copiesDiagram(twice, once).svg(),
		fmt.Sprintf("With forwarding on and a next hop for the VIP, the director's kernel routes its own copy of each frame: %s receives drlb's copy "+
			"and the kernel's (one ttl lower). With -blackhole-vip the kernel drops its copy.", rs1.Name))
	r.finish()
	return nil
}

// copiesResult is what one phase of forwarding-on saw.
type copiesResult struct {
	cs      *captures
	answers []answer
	failed  int
	// received counts client frames to the VIP the director received,
	// arrived those that reached rs1, kernelCopies those of them one ttl
	// lower than drlb's copy (routed by the director's kernel).
	received, arrived, kernelCopies int
	// syn lists every copy of the first request's SYN at rs1, synTTL is
	// the ttl it had when the director received it: drlb's copy keeps it.
	syn    []*frame
	synTTL uint8
}

// copiesPhase sends forwardingRequests requests while capturing and
// counts, per client frame the director received, the copies at rs1.
func (r *runner) copiesPhase(ctx context.Context, prefix string) (*copiesResult, error) {
	l := r.l
	rs1 := l.RealServers[0]
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	res := &copiesResult{cs: cs}
	res.answers = r.getN(ctx, forwardingRequests, 2*time.Second)
	_, res.failed = r.answerCounts(res.answers)
	cs.settle()
	r.savePcaps(cs, prefix)
	ports := map[uint16]bool{}
	for _, a := range res.answers {
		ports[a.port] = true
	}
	mine := func(f *frame) bool {
		return f.proto == protoTCP && f.ipSrc == l.Client.IPv4 && f.ipDst == l.VIP && ports[f.sport]
	}
	// drlb's copy keeps the ttl it arrived with; the kernel's is one lower.
	ttl := map[uint16]uint8{}
	for _, f := range cs.of(l.Director, l.Director.Iface) {
		if mine(&f) && bytes.Equal(f.dst, l.Director.MAC) {
			res.received++
			ttl[ipID(&f)] = f.ttl
			if len(res.answers) > 0 && f.sport == res.answers[0].port && f.isSYN() {
				res.synTTL = f.ttl
			}
		}
	}
	at := cs.of(rs1, rs1.Iface)
	for i := range at {
		f := &at[i]
		if !mine(f) || !bytes.Equal(f.dst, rs1.MAC) {
			continue
		}
		res.arrived++
		if t, ok := ttl[ipID(f)]; ok && f.ttl == t-1 {
			res.kernelCopies++
		}
		if len(res.answers) > 0 && f.sport == res.answers[0].port && f.isSYN() {
			res.syn = append(res.syn, f)
		}
	}
	return res, nil
}

// printCopies shows a phase: the first SYN's copies, and the counts.
func (r *runner) printCopies(res *copiesResult) {
	w, l := r.w, r.l
	rs1 := l.RealServers[0]
	dist, _ := r.answerCounts(res.answers)
	fmt.Fprintf(w, "%d requests from the client, each on a new connection: answers %s.\n\n", len(res.answers), dist)
	fmt.Fprintf(w, "Request #1's SYN as it arrived at %s (captured on its %s):\n", rs1.Name, rs1.Iface)
	for i, f := range res.syn {
		fmt.Fprintf(w, "  copy %d  eth %s -> %s  ip id %d  ttl %d  %s\n", i+1, f.src, f.dst, ipID(f), f.ttl, res.whose(f))
	}
	fmt.Fprintf(w, "Client frames to the VIP: the director received %d, %s received %d.\n\n", res.received, rs1.Name, res.arrived)
}

// whose says who sent a copy of the first SYN, by its ttl.
func (res *copiesResult) whose(f *frame) string {
	switch f.ttl {
	case res.synTTL:
		return "(drlb: only the MACs rewritten)"
	case res.synTTL - 1:
		return "(the director's kernel: routed, ttl - 1)"
	}
	return ""
}

// copiesDiagram draws both phases of forwarding-on for request #1.
func (r *runner) copiesDiagram(twice, once *copiesResult) *seqDiagram {
	l := r.l
	rs1 := l.RealServers[0]
	d := &seqDiagram{lanes: lanes(l, l.Router, l.Director, rs1)}
	const router, director, rs = 0, 1, 2
	phase := func(res *copiesResult, blackhole bool) {
		if len(res.answers) == 0 {
			return
		}
		port := res.answers[0].port
		if in := first(res.cs.of(l.Director, l.Director.Iface), func(f *frame) bool {
			return f.isSYN() && f.sport == port && bytes.Equal(f.dst, l.Director.MAC)
		}); in != nil {
			d.msg(router, director, kindReq, synLabel(in, ""), ethLine(in))
		}
		for _, f := range res.syn {
			if f.ttl == res.synTTL {
				d.msg(director, rs, kindReq, synLabel(f, ": drlb's copy"), ethLine(f))
				continue
			}
			d.msg(director, rs, kindBad, synLabel(f, ": the kernel's copy, routed"), ethLine(f))
		}
		// Only after the fix is a single copy the blackhole route's doing:
		// before it, one copy means the trap did not show, and the drawing
		// claimed a blackhole route that did not exist.
		if len(res.syn) == 1 && blackhole {
			d.msg(director, rs, kindBad, "the kernel's copy: blackhole route, dropped", "").stub = true
		}
	}
	phase(twice, false)
	d.note("The fix: drlb run -blackhole-vip (forwarding stays on): the kernel's route for the VIP is a blackhole.")
	phase(once, true)
	return d
}

// tryDirector runs `drlb run -c CONFIG` in the director's namespace and
// returns its output and whether it refused (exited with an error) within
// 10 s; a director that starts is stopped.
func (r *runner) tryDirector(ctx context.Context) (string, bool) {
	cmdLine(r.w, fmt.Sprintf("ip netns exec %s drlb run -c %s", r.l.Director.NSName, r.cfgPath), "")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out []byte
	err := r.l.Do(r.l.Director, func() error {
		cmd := exec.CommandContext(ctx, r.o.Executable, "run", "-c", r.cfgPath, "-ctl", r.ctlPath(), "-label", directorLabel(r.l.Name))
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	refused := err != nil && ctx.Err() == nil
	return strings.TrimRight(string(out), "\n"), refused
}

// ipID is an IPv4 packet's identification field.
func ipID(f *frame) uint16 {
	if len(f.ip) < 6 {
		return 0
	}
	return binary.BigEndian.Uint16(f.ip[4:6])
}

// setNeighbor adds a permanent neighbour entry addr -> mac on h's LAN
// interface.
func setNeighbor(l *testbed.Lab, h *testbed.Host, addr netip.Addr, mac net.HardwareAddr) error {
	nh, link, err := lanLink(l, h)
	if err != nil {
		return err
	}
	defer nh.Close()
	return nh.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: netlink.FAMILY_V4,
		State: netlink.NUD_PERMANENT, IP: addr.AsSlice(), HardwareAddr: mac})
}

// blackholeRoute returns h's blackhole route for addr as ip route prints
// it, or "" when there is none.
func blackholeRoute(l *testbed.Lab, h *testbed.Host, addr netip.Addr) (string, error) {
	nh, err := l.Netlink(h)
	if err != nil {
		return "", err
	}
	defer nh.Close()
	routes, err := nh.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", err
	}
	for _, rt := range routes {
		if rt.Type == unix.RTN_BLACKHOLE && rt.Dst != nil && rt.Dst.IP.Equal(addr.AsSlice()) {
			return "blackhole " + addr.String(), nil
		}
	}
	return "", nil
}

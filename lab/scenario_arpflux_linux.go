package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/drlb/drlb/testbed"
)

// fluxRequests is how many requests each phase of arp-flux sends: a
// multiple of the real servers, so rr spreads them evenly from any start.
const fluxRequests = 6

// arpFlux is `drlb lab --scenario arp-flux`: rs1 holds the VIP on lo
// without arp_ignore/arp_announce, answers the router's ARP question for
// the VIP and takes the VIP's traffic; drlb doctor names it, drlb
// realserver up fixes it.
func (r *runner) arpFlux(ctx context.Context) error {
	w, l := r.w, r.l
	rs1 := l.RealServers[0]
	r.topology(map[string]string{rs1.Name: "arp_ignore=0 arp_announce=0"})

	r.section("The trap: a real server that answers ARP for the VIP")
	fmt.Fprintf(w, "%s holds the VIP on lo, as every real server must, but was set up by hand without\n", rs1.Name)
	fmt.Fprintln(w, "the ARP settings that `drlb realserver up` makes: by default Linux answers ARP for any")
	fmt.Fprintln(w, "of its addresses on any interface (arp_ignore=0), the VIP on lo included, and puts")
	fmt.Fprintf(w, "the VIP in its own ARP requests (arp_announce=0). The lab undoes them on %s:\n\n", rs1.Name)
	if err := r.sysctl(rs1, "as a fresh host has them",
		"net.ipv4.conf.all.arp_ignore", "0", "net.ipv4.conf."+rs1.Iface+".arp_ignore", "0",
		"net.ipv4.conf.all.arp_announce", "0", "net.ipv4.conf."+rs1.Iface+".arp_announce", "0"); err != nil {
		return err
	}

	r.section("The director")
	if _, err := r.writeConfig("drlb.yaml", r.svc); err != nil {
		return err
	}
	if err := r.startDirector("director.log", false); err != nil {
		return err
	}
	fmt.Fprintf(w, "  drlb is up (%s over %d real servers); it answers ARP for %s.\n", r.svc.scheduler, len(l.RealServers), l.VIP)

	r.section("The symptom: the router sends the VIP's traffic to " + rs1.Name)
	broken, err := r.fluxPhase(ctx, "flux-")
	if err != nil {
		return err
	}
	r.printFlux(broken)
	fmt.Fprintf(w, "The director saw %d of the %d connections: its scheduler, health checks and counters\n", broken.viaDirector, len(broken.answers))
	fmt.Fprintln(w, "are bypassed, and the VIP follows whoever answered ARP last (\"ARP flux\").")
	if n := strings.Count(r.dproc.logs(), "another station claims a VIP"); n > 0 {
		fmt.Fprintf(w, "drlb noticed: %d time(s) \"another station claims a VIP\" in its log, and re-announced it.\n", n)
	}
	r.checks.add("trap: "+rs1.Name+" answers ARP for the VIP", broken.answeredBy[rs1.Name] > 0,
		"%s answered %d time(s), the director %d", rs1.Name, broken.answeredBy[rs1.Name], broken.answeredBy["director"])
	r.checks.add("trap: the router's cache points at "+rs1.Name, bytes.Equal(broken.cached, rs1.MAC),
		"%s (%s)", broken.cacheLine, r.macName(broken.cached))
	r.checks.add("trap: requests bypass the director", broken.bypassed > 0,
		"%d of %d SYNs sent straight to %s; answers %s", broken.bypassed, len(broken.answers), rs1.Name, broken.dist)

	r.section("drlb doctor names the real server")
	fmt.Fprintln(w, "The director cannot see who else answers ARP for the VIP on a switched LAN (the")
	fmt.Fprintln(w, "answers are unicast to the router). Each real server can check itself:")
	fmt.Fprintln(w)
	var named, clean []string
	for _, rs := range l.RealServers {
		rep, err := r.doctorRealServer(rs)
		if err != nil {
			return err
		}
		if rep.Failed() {
			named = append(named, rs.Name+": "+strings.Join(failedChecks(rep), ", "))
			r.printDoctor(rs.Name, r.doctorRSCommand(rs), rep)
		} else {
			clean = append(clean, rs.Name)
			fmt.Fprintf(w, "On %s: %s\n", rs.Name, reportSummary(rep))
		}
	}
	r.checks.add("doctor names "+rs1.Name, len(named) == 1 && strings.HasPrefix(named[0], rs1.Name+":") && strings.Contains(named[0], "arp_ignore"),
		"%s; passed: %s", strings.Join(named, "; "), strings.Join(clean, ", "))

	r.section("The fix: drlb realserver up on " + rs1.Name)
	fmt.Fprintf(w, "On %s, `drlb realserver up --vip %s --iface %s` does (ran here for real):\n\n", rs1.Name, l.VIP, rs1.Iface)
	steps, err := r.realserverUp(rs1)
	if err != nil {
		return err
	}
	for _, s := range steps {
		fmt.Fprintf(w, "  $ %s\n", s)
	}
	rep, err := r.doctorRealServer(rs1)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nOn %s: %s: %s\n", rs1.Name, r.doctorRSCommand(rs1), reportSummary(rep))
	r.checks.add("fix: doctor passes on "+rs1.Name, !rep.Failed(), "%s", reportSummary(rep))
	fmt.Fprintln(w, "The router still holds the old answer until its entry expires or drlb's next")
	fmt.Fprintln(w, "gratuitous ARP replaces it; the lab makes it forget at once:")
	fmt.Fprintln(w)
	fixed, err := r.fluxPhase(ctx, "fixed-")
	if err != nil {
		return err
	}
	r.printFlux(fixed)
	others := 0
	for name, n := range fixed.answeredBy {
		if name != "director" {
			others += n
		}
	}
	r.checks.add("fix: only the director answers ARP", fixed.answeredBy["director"] > 0 && others == 0,
		"director %d, others %d", fixed.answeredBy["director"], others)
	r.checks.add("fix: the router's cache on the director", bytes.Equal(fixed.cached, l.Director.MAC),
		"%s (%s)", fixed.cacheLine, r.macName(fixed.cached))
	even := fixed.failed == 0
	for _, rs := range l.RealServers {
		even = even && fixed.by[rs.Name] == len(fixed.answers)/len(l.RealServers)
	}
	r.checks.add("fix: every request through the director, "+r.svc.scheduler+" again", fixed.viaDirector == len(fixed.answers) && even,
		"%d of %d via the director; answers %s", fixed.viaDirector, len(fixed.answers), fixed.dist)
	r.page.add("ARP flux, then the fix", r.fluxDiagram(broken, fixed).svg(),
		fmt.Sprintf("%s answers the router's ARP question for the VIP before drlb does, so the router sends the client's packets straight to it, "+
			"bypassing the director. After drlb realserver up on %s only drlb answers, and the traffic goes through the director again.", rs1.Name, rs1.Name))
	r.finish()
	return nil
}

// fluxResult is what one phase of arp-flux saw.
type fluxResult struct {
	cs      *captures
	flushed time.Time
	// ask is the router's ARP question for the VIP; arpAnswers the
	// answers for the VIP it received, answeredBy counts them by host.
	ask        *frame
	arpAnswers []*frame
	answeredBy map[string]int
	// announces are ARP requests from others than the director that
	// carry the VIP as their sender.
	announces []*frame
	cached    net.HardwareAddr
	cacheLine string
	answers   []answer
	// sentTo[i] is the host the router sent request i's SYN to.
	sentTo                []string
	bypassed, viaDirector int
	by                    map[string]int
	dist                  string
	failed                int
}

// fluxPhase makes the router forget the VIP, sends fluxRequests requests
// while capturing everywhere, reads the router's cache and saves the
// pcaps with prefix.
func (r *runner) fluxPhase(ctx context.Context, prefix string) (*fluxResult, error) {
	l := r.l
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	if err := r.flushRouter(); err != nil {
		return nil, err
	}
	res := &fluxResult{cs: cs, flushed: time.Now(), answeredBy: map[string]int{}, by: map[string]int{}}
	res.answers = r.getN(ctx, fluxRequests, 2*time.Second)
	if res.cached, res.cacheLine, err = neighbor(l, l.Router, l.VIP); err != nil {
		return nil, err
	}
	cs.settle()
	r.savePcaps(cs, prefix)

	lan := cs.of(l.Router, l.Router.Iface)
	res.ask = first(lan, func(f *frame) bool {
		return f.arpOp == arpRequest && f.arpTargetIP == l.VIP && bytes.Equal(f.src, l.Router.MAC) && !f.at.Before(res.flushed)
	})
	for i := range lan {
		f := &lan[i]
		switch {
		case f.at.Before(res.flushed):
		case f.arpOp == arpReply && f.arpSenderIP == l.VIP:
			res.arpAnswers = append(res.arpAnswers, f)
			res.answeredBy[r.macName(f.arpSenderMAC)]++
		case f.arpOp == arpRequest && f.arpSenderIP == l.VIP && !bytes.Equal(f.src, l.Director.MAC):
			// Not drlb's gratuitous ARP: a real server's own request.
			res.announces = append(res.announces, f)
		}
	}
	for _, a := range res.answers {
		to := "(no SYN seen)"
		if f := r.synOf(lan, a.port); f != nil && f.dst != nil {
			to = r.macName(f.dst)
		}
		res.sentTo = append(res.sentTo, to)
		if to == "director" {
			res.viaDirector++
		} else if r.realServerByName(to) != nil {
			res.bypassed++
		}
		if a.err == nil {
			res.by[a.server]++
		}
	}
	res.dist, res.failed = r.answerCounts(res.answers)
	return res, nil
}

// printFlux shows one phase: who answered ARP, the router's cache, where
// each request went.
func (r *runner) printFlux(res *fluxResult) {
	w, l := r.w, r.l
	fmt.Fprintf(w, "%d requests from the client, each on a new connection.\n\n", len(res.answers))
	if res.ask != nil {
		fmt.Fprintf(w, "The router asked who-has %s (broadcast); the answers it got, captured on its %s:\n", l.VIP, l.Router.Iface)
	} else {
		fmt.Fprintf(w, "The router did not ask for %s while we captured; answers it got on its %s:\n", l.VIP, l.Router.Iface)
	}
	for i, f := range res.arpAnswers {
		who := r.macName(f.arpSenderMAC)
		how := "drlb"
		if who != "director" {
			how = "its kernel"
		}
		fmt.Fprintf(w, "  %d. %-9s %s is-at %s   (%s)\n", i+1, who, f.arpSenderIP, f.arpSenderMAC, how)
	}
	if len(res.arpAnswers) > 1 {
		fmt.Fprintln(w, "The router keeps the first answer: for a while (locktime, 1 s) it ignores a later,")
		fmt.Fprintln(w, "different one. A kernel answers in the same softirq; drlb answers from user space.")
	}
	if len(res.announces) > 0 {
		fmt.Fprintf(w, "  and %d ARP request(s) with the VIP as sender, from %s (arp_announce=0):\n", len(res.announces), r.macName(res.announces[0].src))
		fmt.Fprintln(w, "  each one re-points the router's cache at its sender.")
	}
	fmt.Fprintf(w, "\nThe router's cache after the requests:\n")
	cmdLine(w, fmt.Sprintf("ip -n %s neigh show %s", l.Router.NSName, l.VIP), "")
	fmt.Fprintf(w, "  %s   <- %s\n\n", res.cacheLine, r.macName(res.cached))
	fmt.Fprintf(w, "Where the router sent each request's SYN (captured on its %s), and who answered:\n", l.Router.Iface)
	for i, a := range res.answers {
		got := a.server
		if a.err != nil {
			got = "NO ANSWER (" + a.err.Error() + ")"
		}
		note := ""
		if r.realServerByName(res.sentTo[i]) != nil {
			note = " (bypassing the director)"
		}
		fmt.Fprintf(w, "  #%d :%-5d sent to %s%s, answered by %s\n", i+1, a.port, res.sentTo[i], note, got)
	}
	fmt.Fprintf(w, "\n%s over %d real servers: %s.\n", r.svc.scheduler, len(l.RealServers), res.dist)
}

// fluxDiagram draws both phases of arp-flux from the captures: the ARP
// answers and where the first request went.
func (r *runner) fluxDiagram(broken, fixed *fluxResult) *seqDiagram {
	l := r.l
	hosts := []*testbed.Host{l.Client, l.Router, l.Director, l.RealServers[0]}
	lane := map[string]int{"client": 0, "router": 1, "director": 2, l.RealServers[0].Name: 3}
	// A fixed request may have gone to another real server: give it a lane.
	if len(fixed.answers) > 0 && fixed.answers[0].err == nil {
		if rs := r.realServerByName(fixed.answers[0].server); rs != nil && lane[rs.Name] == 0 {
			lane[rs.Name] = len(hosts)
			hosts = append(hosts, rs)
		}
	}
	d := &seqDiagram{lanes: lanes(l, hosts...)}
	last := len(hosts) - 1
	phase := func(res *fluxResult) {
		var port uint16
		if len(res.answers) > 0 {
			port = res.answers[0].port
		}
		if syn := r.synOf(res.cs.of(l.Client, l.Client.Iface), port); syn != nil {
			d.msg(lane["client"], lane["router"], kindReq, synLabel(syn, ""), ethLine(syn))
		}
		if res.ask != nil {
			d.msg(lane["router"], last, kindARP, fmt.Sprintf("ARP who-has %s? tell %s (broadcast)", res.ask.arpTargetIP, res.ask.arpSenderIP), ethLine(res.ask)).broadcast = true
		}
		for n, f := range res.arpAnswers {
			who := r.macName(f.arpSenderMAC)
			i, ok := lane[who]
			if !ok {
				continue
			}
			kind, how := kindARP, "drlb answers"
			if who != "director" {
				kind, how = kindBad, who+"'s kernel answers"
			}
			if len(res.arpAnswers) > 1 {
				how += " (" + ordinal(n+1) + ")"
			}
			d.msg(i, lane["router"], kind, fmt.Sprintf("ARP %s is-at %s: %s", f.arpSenderIP, f.arpSenderMAC, how), ethLine(f))
		}
		d.note("The router's cache: " + res.cacheLine + " (" + r.macName(res.cached) + ")")
		syn := r.synOf(res.cs.of(l.Router, l.Router.Iface), port)
		if syn == nil {
			d.note("request #1's SYN was not captured on the router's LAN side")
			return
		}
		to := r.macName(syn.dst)
		server := to
		if to == "director" {
			d.msg(lane["router"], lane["director"], kindReq, synLabel(syn, ""), ethLine(syn))
			dir := l.Director.MAC
			out := first(res.cs.of(l.Director, l.Director.Iface), func(f *frame) bool {
				return f.isSYN() && f.sport == port && bytes.Equal(f.src, dir) && f.ipDst == l.VIP
			})
			if out == nil {
				return
			}
			server = r.macName(out.dst)
			if j, ok := lane[server]; ok {
				d.msg(lane["director"], j, kindReq, synLabel(out, ": drlb forwards it"), ethLine(out))
			}
		} else if j, ok := lane[to]; ok {
			d.msg(lane["router"], j, kindBad, synLabel(syn, ": straight to "+to+", bypassing the director"), ethLine(syn))
		}
		if rs := r.realServerByName(server); rs != nil {
			back := first(res.cs.of(rs, rs.Iface), func(f *frame) bool {
				return f.isSYNACK() && f.dport == port && f.ipSrc == l.VIP && bytes.Equal(f.src, rs.MAC)
			})
			if j, ok := lane[server]; ok && back != nil {
				d.msg(j, lane["router"], kindReply, synLabel(back, ": the reply, never via the director"), ethLine(back))
			}
		}
	}
	phase(broken)
	d.note("The fix: drlb realserver up on " + l.RealServers[0].Name + " (arp_ignore=1, arp_announce=2); the router forgets the VIP.")
	phase(fixed)
	return d
}

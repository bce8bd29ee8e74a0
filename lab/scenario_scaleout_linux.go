package lab

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/scheduler"
	"github.com/drlb/drlb/testbed"
)

// Shape of the scale-out scenario.
const (
	scaleNew = 16 // new connections: all on one director has odds 2^-15
	// scaleKeepMin keep-alive connections at least, more (up to
	// scaleKeepMax) until scaleKeepEach crossed each director.
	scaleKeepMin, scaleKeepMax, scaleKeepEach = 6, 24, 2
	scaleHold                                 = testbed.DefaultBGPHold
	// scaleWait bounds each request; a moved connection that broke stays
	// silent this long.
	scaleWait = 2 * time.Second
)

// scaleConn is one keep-alive connection of the scale-out scenario.
type scaleConn struct {
	*heldConn
	// afterWd and afterExit are who answered the request after the
	// withdraw, and after director2 exited.
	afterWd, afterExit string
	errWd, errExit     error
	// viaAfter is the director the request after the withdraw crossed.
	viaAfter string
}

// scaleOut is `drlb lab --scenario scale-out`: two directors announce the
// VIP by BGP to BIRD on the router, which spreads flows over both (ECMP);
// mh sends each flow to the same real server on either director; one
// director stops (SIGTERM: it withdraws first) and the open connections
// that crossed it continue through the other, on the same real server.
func (r *runner) scaleOut(ctx context.Context) error {
	w, l := r.w, r.l
	d1, d2 := l.Directors[0], l.Directors[1]
	r.topology(map[string]string{d2.Name: "stopped mid-run (SIGTERM)"})

	r.section("The router: BIRD 2, ECMP over the directors")
	fmt.Fprintf(w, "The VIP %s is not on the LAN: the router reaches it only through the routes the\n", l.VIP)
	fmt.Fprintln(w, "directors announce. BIRD peers with each director (passive: the directors connect) and")
	fmt.Fprintln(w, "merges their routes into one kernel route with a next hop per director; the kernel")
	fmt.Fprintln(w, "hashes each flow (addresses and ports) to one of them.")
	fmt.Fprintln(w)
	cmdLine(w, fmt.Sprintf("ip netns exec %s sysctl -w net.ipv4.fib_multipath_hash_policy=1", l.Router.NSName), "hash by ports too: one client here")
	bird, err := l.StartBIRD(ctx, testbed.BIRDOptions{Dir: r.dir, Hold: scaleHold})
	if err != nil {
		return err
	}
	r.atEnd = append(r.atEnd, bird.Stop)
	cmdLine(w, fmt.Sprintf("ip netns exec %s bird -f -c bird.conf -s bird.ctl -P bird.pid", l.Router.NSName), fmt.Sprintf("pid %d, log %s", bird.Pid(), filepath.Base(bird.Log)))
	fmt.Fprintf(w, "\n%s (%s):\n\n", filepath.Base(bird.Config), bird.Config)
	indent(w, "    ", l.BIRDConfig(scaleHold))

	r.section("Two directors announce the VIP")
	svc := r.svc
	svc.flags = []string{"mh-port"}
	svc.bgp = &bgpPeer{router: l.Router.IPv4, asn: testbed.DirectorASN, routerASN: testbed.RouterASN, holdTime: scaleHold}
	svc2 := svc
	svc2.reals = slices.Clone(svc.reals)
	slices.Reverse(svc2.reals)
	cfg2, err := r.writeConfig(d2.Name+".yaml", svc2)
	if err != nil {
		return err
	}
	cfg2Path := r.cfgPath
	cfg1, err := r.writeConfig(d1.Name+".yaml", svc)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Both directors run the same service, mh with mh-port, and announce its VIP (%s):\n\n", filepath.Base(r.cfgPath))
	indent(w, "    ", svc.yaml())
	fmt.Fprintf(w, "\n%s lists the real servers in the opposite order (%s): mh sorts them by address.\n\n", d2.Name, filepath.Base(cfg2Path))
	started := time.Now()
	if err := r.startDirector(d1.Name+".log", false); err != nil {
		return err
	}
	p2, _, err := r.startPeer(d2, cfg2Path)
	if err != nil {
		return err
	}
	for _, p := range []*directorProc{r.dproc, p2} {
		if err := p.waitLog("bgp: announced", 1, 15*time.Second); err != nil {
			return err
		}
	}
	var upAfter time.Duration
	both, _, err := r.waitRoute(ctx, 2, 20*time.Second, 5*time.Millisecond, func(time.Duration) string {
		upAfter = time.Since(started)
		return fmt.Sprintf("\nBoth announced; %v after the first director started the router has two next hops:\n\n", upAfter.Round(time.Millisecond))
	})
	if err != nil {
		return err
	}
	r.checks.add("BGP: the router has a next hop per director", len(both.NextHops) == 2 && slices.Contains(both.NextHops, d1.IPv4) && slices.Contains(both.NextHops, d2.IPv4),
		"%s (proto %s), %v after the first director started", addrList(both.NextHops), both.Proto, upAfter.Round(100*time.Millisecond))

	cs, err := startCaptures(l)
	if err != nil {
		return err
	}
	defer cs.stop()

	r.section("New connections: spread over both directors, the same server on either")
	fmt.Fprintf(w, "%d requests, each on a new connection; which director each crossed, from the captures:\n\n", scaleNew)
	as := r.getN(ctx, scaleNew, scaleWait)
	picks, err := mhPicks(l, []*config.Config{cfg1, cfg2})
	if err != nil {
		return err
	}
	perDir := map[string]int{}
	agree, answered := 0, 0
	for i, a := range as {
		via := r.waitVia(cs, a.port, time.Time{})
		perDir[via]++
		p1, p2 := picks(a.port)
		mark := ""
		if a.err == nil {
			answered++
			if p1 == a.server && p2 == a.server {
				agree++
			} else {
				mark = fmt.Sprintf("  (mh: %s / %s)", p1, p2)
			}
		}
		sep := "\n"
		if i%2 == 0 {
			sep = "    "
		}
		fmt.Fprintf(w, "  :%-5d %-9s -> %s%s%s", a.port, orNone(via), orNone(a.server), mark, sep)
	}
	fmt.Fprintf(w, "\nSYNs at %s: %d, at %s: %d. Answers: %s.\n\n", d1.Name, perDir[d1.Name], d2.Name, perDir[d2.Name], r.mustCounts(as))
	fmt.Fprintln(w, "Why the same server on either director: mh's pick is a pure function of the")
	fmt.Fprintln(w, "configuration and the flow (fixed seeds, the servers sorted by address; mh-port hashes")
	fmt.Fprintln(w, "the client's address and port). Computed here from each director's config file, for")
	fmt.Fprintf(w, "every flow above: %s's and %s's mh name the same server, the one that answered.\n", d1.Name, d2.Name)
	fmt.Fprintln(w, "No state is shared between the directors, and none needs to be.")
	r.checks.add("ECMP: new connections spread over both directors", perDir[d1.Name] > 0 && perDir[d2.Name] > 0 && answered == scaleNew,
		"%s %d, %s %d of %d SYNs (captures); %d answered", d1.Name, perDir[d1.Name], d2.Name, perDir[d2.Name], scaleNew, answered)
	r.checks.add("mh: each flow's server is the same on either director", agree == answered && answered == scaleNew,
		"%d of %d flows: both configs' mh name the server that answered", agree, scaleNew)

	r.section("Keep-alive connections, then " + d2.Name + " stops")
	conns, err := r.scaleKeepAlive(ctx, cs, d1, d2)
	defer func() {
		for _, c := range conns {
			c.ka.conn.Close()
		}
	}()
	if err != nil {
		return err
	}
	stopAt := time.Now()
	fmt.Fprintf(w, "\n%s gets SIGTERM: drlb withdraws the VIP, forwards on for 1.5 s while the router\nmoves the flows, then exits.\n\n", d2.Name)
	cmdLine(w, fmt.Sprintf("kill -TERM %d", p2.cmd.Process.Pid), d2.Name)
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	one, gone, err := r.waitRoute(ctx, 1, 10*time.Second, time.Millisecond, func(gone time.Duration) string {
		return fmt.Sprintf("  %v later the router has one next hop:\n", gone.Round(time.Millisecond))
	})
	if err != nil {
		return err
	}
	withdrawn := stopAt.Add(gone)

	// The next request on every connection at once, each bounded.
	var wg sync.WaitGroup
	deadline := time.Now().Add(scaleWait)
	for _, c := range conns {
		wg.Go(func() { c.afterWd, c.errWd = c.ka.get(l.VIP.String(), deadline) })
	}
	wg.Wait()
	for _, c := range conns {
		c.viaAfter = r.waitVia(cs, c.port, withdrawn)
	}
	exited := time.Duration(0)
	select {
	case <-p2.done:
		exited = time.Since(stopAt)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s did not exit within 5s of SIGTERM", d2.Name)
	}
	fmt.Fprintf(w, "  %s exited %v after SIGTERM; its log: %s\n", d2.Name, exited.Round(time.Millisecond), lastLine(p2.logs(), "bgp: withdrawn"))
	deadline = time.Now().Add(scaleWait)
	for _, c := range conns {
		wg.Go(func() { c.afterExit, c.errExit = c.ka.get(l.VIP.String(), deadline) })
	}
	wg.Wait()
	counters, err := r.counters(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe next request on each connection, right after the withdraw, then after %s exited:\n\n", d2.Name)
	var moved, movedOK, stayed, stayedOK int
	for i, c := range conns {
		ok := c.errWd == nil && c.errExit == nil && c.afterWd == c.server && c.afterExit == c.server && c.viaAfter == d1.Name
		if c.via == d2.Name {
			moved++
			if ok {
				movedOK++
			}
		} else {
			stayed++
			if ok {
				stayedOK++
			}
		}
		verdict := "the same server"
		if !ok {
			verdict = "BROKEN"
		}
		fmt.Fprintf(w, "  #%-2d :%-5d was via %-9s -> %s   now via %-9s -> %s, then %s  (%s)\n", i+1, c.port, c.via, c.server,
			orNone(c.viaAfter), answerOf(c.afterWd, c.errWd), answerOf(c.afterExit, c.errExit), verdict)
	}
	after := 0
	for _, f := range cs.sofar(d2, d2.Iface) {
		if f.ipDst == l.VIP && bytes.Equal(f.dst, d2.MAC) && f.at.After(withdrawn) {
			after++
		}
	}
	fmt.Fprintf(w, "\n%s's counters: adopted %d (connections it had never seen, placed by mh mid-way), no-conn %d.\n",
		d1.Name, counters["adopted"], counters["no-conn"])
	fmt.Fprintf(w, "Frames to the VIP that reached %s after the router dropped it: %d.\n\n", d2.Name, after)
	fmt.Fprintf(w, "Why nothing broke: the router moved the flows of %s to %s; %s has no entry for\n", d2.Name, d1.Name, d1.Name)
	fmt.Fprintln(w, "them, but their next packet is not a SYN and mh computes the same real server the other")
	fmt.Fprintln(w, "director did, so it adopts each connection and forwards it there. The real server never")
	fmt.Fprintln(w, "noticed. With rr, wrr, lc and the like the moved connections would break (see --scenario")
	fmt.Fprintln(w, "restart): their picks depend on each director's own history.")
	r.checks.add("withdraw: the router drops "+d2.Name+" within ms", len(one.NextHops) == 1 && one.NextHops[0] == d1.IPv4 && gone < time.Second,
		"%s only, %v after SIGTERM; %s exited after %v", one.NextHops[0], gone.Round(time.Millisecond), d2.Name, exited.Round(time.Millisecond))
	r.checks.add("moved connections continue via "+d1.Name+" on their server", moved > 0 && movedOK == moved && counters["adopted"] >= uint64(moved),
		"%d of %d that crossed %s, before and after it exited; adopted %d", movedOK, moved, d2.Name, counters["adopted"])
	// stayed > 0: with no connection through director the check passed
	// on "0 of 0" (scaleKeepAlive stops at scaleKeepMax without error even
	// if the router never hashed one to director).
	r.checks.add("the other connections are untouched", stayed > 0 && stayedOK == stayed,
		"%d of %d that crossed %s", stayedOK, stayed, d1.Name)
	r.checks.add("nothing reaches "+d2.Name+" after the withdraw", after == 0, "%d frames to the VIP", after)

	for _, c := range conns {
		c.ka.conn.Close()
	}
	cs.settle()
	r.savePcaps(cs, "")
	r.page.add("Scale-out: two directors behind ECMP, one withdraws", r.scaleDiagram(cs, conns, both, one, withdrawn, gone, exited, perDir).svg(),
		fmt.Sprintf("A keep-alive connection that crossed %s, from the captures: a request while the router had both next hops, "+
			"then %s's withdraw, and the next request on the same connection: the router hashes it to %s, which has no entry for it, "+
			"computes the same real server with mh and adopts the connection.", d2.Name, d2.Name, d1.Name))
	r.finish()
	return nil
}

// waitRoute waits until the router's route to the VIP has n next hops,
// polling every poll for at most timeout, then prints head(how long it
// took) and the route as `ip route show VIP` shows it.
func (r *runner) waitRoute(ctx context.Context, n int, timeout, poll time.Duration, head func(time.Duration) string) (testbed.Route, time.Duration, error) {
	l := r.l
	route, took, err := l.WaitNextHops(ctx, l.Router, l.VIP, n, timeout, poll)
	if err != nil {
		return route, took, err
	}
	fmt.Fprint(r.w, head(took))
	cmdLine(r.w, fmt.Sprintf("ip -n %s route show %s", l.Router.NSName, l.VIP), "")
	indent(r.w, "    ", route.String())
	return route, took, nil
}

// scaleKeepAlive opens keep-alive connections with one request each,
// until scaleKeepEach crossed each director (at least scaleKeepMin, at most
// scaleKeepMax), and prints them.
func (r *runner) scaleKeepAlive(ctx context.Context, cs *captures, d1, d2 *testbed.Host) ([]*scaleConn, error) {
	fmt.Fprintf(r.w, "Keep-alive connections from the client, one request on each (the router hashes each\nto a director; more are opened until %d crossed each):\n\n", scaleKeepEach)
	held, err := r.holdConns(ctx, cs, scaleKeepMax, scaleWait, func(n int, via map[string]int) bool {
		return n < scaleKeepMin || via[d1.Name] < scaleKeepEach || via[d2.Name] < scaleKeepEach
	})
	conns := make([]*scaleConn, len(held))
	for i, h := range held {
		conns[i] = &scaleConn{heldConn: h}
	}
	return conns, err
}

// waitVia returns the director that frames from the client's port to the
// VIP crossed after after, from the running captures: a SYN or a frame
// with data (a request), not a late ACK of an answer that may still go to
// the director the flow left. It waits up to 500 ms for the capture to
// catch up, "" if none did.
func (r *runner) waitVia(cs *captures, port uint16, after time.Time) string {
	l := r.l
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		for _, d := range l.Directors {
			for _, f := range cs.sofar(d, d.Iface) {
				if f.ipDst == l.VIP && f.sport == port && f.proto == protoTCP && (f.isSYN() || f.tcpPayloadSize > 0) &&
					bytes.Equal(f.dst, d.MAC) && f.at.After(after) {
					return d.Name
				}
			}
		}
		if time.Now().After(deadline) {
			return ""
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mhPicks computes, from each director's config, which real server mh
// gives the client's connection from port: what each director would do
// with it, without asking either.
func mhPicks(l *testbed.Lab, cfgs []*config.Config) (func(port uint16) (string, string), error) {
	type picker struct {
		s     scheduler.Scheduler
		reals []netip.Addr
	}
	var ps []picker
	for _, cfg := range cfgs {
		svc := cfg.Services[0]
		var p picker
		servers := make([]scheduler.Server, len(svc.RealServers))
		for i, rs := range svc.RealServers {
			servers[i] = scheduler.Server{Addr: rs.Address, Weight: rs.Weight, Available: true}
			p.reals = append(p.reals, rs.Address)
		}
		var err error
		if p.s, err = scheduler.New(svc.Scheduler, servers, svc.SchedOptions); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	name := func(p picker, port uint16) string {
		f := scheduler.Flow{Proto: protoTCP, Src: l.Client.IPv4, SrcPort: port, Dst: l.VIP, DstPort: testbed.HTTPPort}
		i, err := p.s.Pick(&f, nil)
		if err != nil {
			return ""
		}
		for _, rs := range l.RealServers {
			if rs.IPv4 == p.reals[i] {
				return rs.Name
			}
		}
		return p.reals[i].String()
	}
	return func(port uint16) (string, string) { return name(ps[0], port), name(ps[1], port) }, nil
}

// mustCounts is answerCounts' distribution, with the failures if any.
func (r *runner) mustCounts(as []answer) string {
	dist, failed := r.answerCounts(as)
	if failed > 0 {
		return fmt.Sprintf("%s, %d unanswered", dist, failed)
	}
	return dist
}

// answerOf is who answered, or why nobody did.
func answerOf(server string, err error) string {
	if err != nil {
		return "no answer (" + shortErr(err) + ")"
	}
	return server
}

// addrList spells addresses "198.18.0.2, 198.18.0.3".
func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// lastLine returns the last log line of text containing s from its msg=
// on, or s.
func lastLine(text, s string) string {
	found := s
	for _, line := range strings.Split(text, "\n") {
		if i := strings.Index(line, s); i >= 0 {
			if j := strings.Index(line, "msg="); j >= 0 && j < i {
				i = j
			}
			found = strings.TrimSpace(line[i:])
		}
	}
	return found
}

// scaleDiagram draws one moved connection: a request through director2
// while the router has both next hops, the withdraw, and the next request
// through director, adopted on the same real server.
func (r *runner) scaleDiagram(cs *captures, conns []*scaleConn, both, one testbed.Route, withdrawn time.Time, gone, exited time.Duration, perDir map[string]int) *seqDiagram {
	l := r.l
	d1, d2 := l.Directors[0], l.Directors[1]
	hosts := []*testbed.Host{l.Router, d1, d2}
	hosts = append(hosts, l.RealServers...)
	// Six lanes: narrower than the others, to fit the page.
	d := &seqDiagram{lanes: lanes(l, hosts...), laneW: 180}
	lane := map[string]int{}
	for i, h := range hosts {
		lane[h.Name] = i
	}
	const router = 0
	d.note(fmt.Sprintf("BIRD: %s via %s (ECMP). New connections: %s %d, %s %d.", l.VIP, addrList(both.NextHops), d1.Name, perDir[d1.Name], d2.Name, perDir[d2.Name]))
	var c *scaleConn
	for _, x := range conns {
		if x.via == d2.Name {
			c = x
			break
		}
	}
	if c == nil {
		d.note("No keep-alive connection crossed " + d2.Name + ".")
		return d
	}
	rs := r.realServerByName(c.server)
	if rs == nil {
		d.note("Connection :" + fmt.Sprint(c.port) + " was not answered by a lab real server.")
		return d
	}
	// The first request on the connection before the withdraw, and the
	// first after it.
	before := func(f *frame) bool { return !f.at.After(withdrawn) }
	after := func(f *frame) bool { return f.at.After(withdrawn) }
	r.drawRequest(d, cs, lane, c.heldConn, d2, rs, before, "hashed to "+d2.Name, "mh picks "+rs.Name)
	d.note(fmt.Sprintf("SIGTERM %s: it withdraws the VIP; %v later the router has %s only.", d2.Name, gone.Round(time.Millisecond), addrList(one.NextHops)))
	r.drawRequest(d, cs, lane, c.heldConn, d1, rs, after, "moved to "+d1.Name, "no entry, mh places it on "+rs.Name+" again: adopted")
	d.note(fmt.Sprintf("%s exited %v after SIGTERM; the connection goes on through %s.", d2.Name, exited.Round(time.Millisecond), d1.Name))
	return d
}

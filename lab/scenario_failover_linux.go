package lab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/drlb/drlb/control"
	"github.com/drlb/drlb/testbed"
	"github.com/drlb/drlb/vrrp"
)

// Shape of the failover scenario: the VRRP settings of the HA e2e tests.
const (
	failVRID               = 51
	failMaster, failBackup = 150, 100 // the directors' priorities
	failInterval           = 100 * time.Millisecond
	failConns              = 6 // keep-alive connections through the master
	// failWait bounds each request; a connection that broke stays silent
	// this long.
	failWait = 2 * time.Second
	// failWatch is how long the adverts are watched with both directors up.
	failWatch = 500 * time.Millisecond
)

// failConn is one keep-alive connection of the failover scenario.
type failConn struct {
	*heldConn
	// after is who answered the request after the takeover (or err), and
	// viaAfter the director it crossed.
	after, viaAfter string
	err             error
}

// advert is a VRRP advert captured on the LAN.
type advert struct {
	f *frame
	vrrp.Packet
}

// adverts returns the valid VRRP adverts to 224.0.0.18 in frames.
func adverts(frames []frame) []advert {
	var as []advert
	for i := range frames {
		f := &frames[i]
		if f.proto != vrrp.IPProtocol || f.ipDst != vrrp.Group {
			continue
		}
		if p, err := vrrp.ParseIPv4(f.ip, nil); err == nil {
			as = append(as, advert{f: f, Packet: p})
		}
	}
	return as
}

// advertsFrom returns the adverts sent by h.
func advertsFrom(as []advert, h *testbed.Host) []advert {
	var out []advert
	for _, a := range as {
		if a.Src == h.IPv4 {
			out = append(out, a)
		}
	}
	return out
}

// gapStats are the times between consecutive adverts.
type gapStats struct {
	n              int
	mean, min, max time.Duration
}

// advertGaps measures the times between consecutive adverts of as.
func advertGaps(as []advert) gapStats {
	var g gapStats
	for i := 1; i < len(as); i++ {
		d := as[i].f.at.Sub(as[i-1].f.at)
		if g.n == 0 || d < g.min {
			g.min = d
		}
		g.max = max(g.max, d)
		g.mean += d
		g.n++
	}
	if g.n > 0 {
		g.mean /= time.Duration(g.n)
	}
	return g
}

// ok reports adverts at the configured interval, on average.
func (g gapStats) ok() bool {
	return g.n > 0 && g.mean > failInterval*8/10 && g.mean < failInterval*3/2
}

func (g gapStats) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("every %v on average (min %v, max %v)", r(g.mean), r(g.min), r(g.max))
}

// String spells an advert as a tcpdump line.
func (a advert) String() string {
	return fmt.Sprintf("%s  %s > %s  VRRPv3 advert vrid %d prio %d intvl %v ttl %d  addrs %s",
		a.f.at.Format("15:04:05.000000"), a.Src, a.f.ipDst, a.VRID, a.Priority, a.Interval, a.TTL, addrList(a.Addrs))
}

// waitHA polls the director behind sock every 5 ms until its HA status
// satisfies ok, at most timeout, and returns it with how long that took.
func waitHA(ctx context.Context, sock string, timeout time.Duration, ok func(*control.HAStatus) bool) (*control.HAStatus, time.Duration, error) {
	start := time.Now()
	var last *control.HAStatus
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		s, err := control.Get(c, sock, false)
		cancel()
		if err == nil && s.HA != nil {
			if last = s.HA; ok(last) {
				return last, time.Since(start), nil
			}
		}
		if time.Since(start) > timeout || ctx.Err() != nil {
			return last, time.Since(start), fmt.Errorf("%s: HA status %+v after %v", filepath.Base(sock), last, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// haLine is the HA line `drlb ctl -L -n` ends with, for the director
// behind sock.
func haLine(ctx context.Context, sock string) string {
	s, err := control.Get(ctx, sock, false)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	control.WriteHA(&b, s)
	return strings.TrimSpace(b.String())
}

// waitRouterNeighbor polls the router's neighbour entry for the VIP every
// 2 ms until it holds mac, at most timeout, and returns it as ip neigh
// prints it, with when it was seen.
func (r *runner) waitRouterNeighbor(mac net.HardwareAddr, timeout time.Duration) (string, time.Time, error) {
	l := r.l
	deadline := time.Now().Add(timeout)
	for {
		got, line, err := neighbor(l, l.Router, l.VIP)
		if err != nil {
			return "", time.Time{}, err
		}
		if bytes.Equal(got, mac) {
			return line, time.Now(), nil
		}
		if time.Now().After(deadline) {
			return line, time.Time{}, fmt.Errorf("the router's entry for %s is %q after %v, want %s", l.VIP, line, timeout, mac)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// garpCount is the count= of the director's "gratuitous ARP sent" log line.
var garpCount = regexp.MustCompile(`gratuitous ARP sent.* count=(\d+)`)

// failover is `drlb lab --scenario failover`: two directors share the VIP
// by VRRP; the master is killed; the backup takes over, moves the router's
// ARP entry with gratuitous ARP, and the keep-alive connections go on
// through it on the same real servers (mh: no connection sync needed).
func (r *runner) failover(ctx context.Context) error {
	w, l := r.w, r.l
	d1, d2 := l.Directors[0], l.Directors[1]
	r.topology(map[string]string{d1.Name: "VRRP master, SIGKILLed mid-run"})

	r.section("Two directors, one VIP: VRRP")
	fmt.Fprintln(w, "Both directors run the same service; an ha: block makes them one VRRP virtual router")
	fmt.Fprintln(w, "(RFC 5798, as keepalived does for IPVS): the master sends an advert every interval and")
	fmt.Fprintln(w, "alone answers ARP for the VIP; the backup listens, answers nothing, and takes over when")
	fmt.Fprintln(w, "the adverts stop. No connection sync between them: mh (with mh-port) is a pure function")
	fmt.Fprintln(w, "of the configuration and the flow, so the new master places each open connection on the")
	fmt.Fprintf(w, "server the old one chose.\n\n")
	svc := r.svc
	svc.flags = []string{"mh-port"}
	svc.ha = &vrrpGroup{vrid: failVRID, priority: failBackup, interval: failInterval}
	if _, err := r.writeConfig(d2.Name+".yaml", svc); err != nil {
		return err
	}
	cfg2Path := r.cfgPath
	svc.ha = &vrrpGroup{vrid: failVRID, priority: failMaster, interval: failInterval}
	if _, err := r.writeConfig(d1.Name+".yaml", svc); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s (%s):\n\n", d1.Name, r.cfgPath)
	indent(w, "    ", svc.yaml())
	fmt.Fprintf(w, "\n%s (%s): the same at priority %d.\n\n", d2.Name, filepath.Base(cfg2Path), failBackup)

	cs, err := startCaptures(l)
	if err != nil {
		return err
	}
	defer cs.stop()
	started := time.Now()
	if err := r.startDirector(d1.Name+".log", false); err != nil {
		return err
	}
	p1 := r.dproc
	isMaster := func(h *control.HAStatus) bool { return h.State == "MASTER" }
	if _, _, err := waitHA(ctx, r.ctlPath(), 5*time.Second, isMaster); err != nil {
		return err
	}
	fmt.Fprintf(w, "  %v after it started, alone on the LAN: %s\n\n", time.Since(started).Round(time.Millisecond), lastLine(p1.logs(), "-> MASTER"))
	p2, sock2, err := r.startPeer(d2, cfg2Path)
	if err != nil {
		return err
	}
	if _, _, err := waitHA(ctx, sock2, 5*time.Second, func(h *control.HAStatus) bool {
		return h.State == "BACKUP" && h.Master == d1.IPv4 && h.Received > 0
	}); err != nil {
		return err
	}
	fmt.Fprintf(w, "  it hears %s's adverts and stays BACKUP.\n\n", d1.Name)
	time.Sleep(failWatch)
	for _, x := range []struct {
		h    *testbed.Host
		sock string
	}{{d1, r.ctlPath()}, {d2, sock2}} {
		cmdLine(w, fmt.Sprintf("ip netns exec %s drlb ctl -s %s -L -n | tail -1", x.h.NSName, x.sock), x.h.Name)
		indent(w, "    ", haLine(ctx, x.sock))
	}

	r.section("The master's adverts")
	before := adverts(cs.sofar(l.Router, l.Router.Iface))
	from1, from2 := advertsFrom(before, d1), advertsFrom(before, d2)
	fmt.Fprintf(w, "Captured on the router's %s (the LAN; adverts go to %s, every host hears them):\n\n", l.Router.Iface, vrrp.Group)
	for i, a := range from1 {
		if i == 3 && len(from1) > 4 {
			fmt.Fprintln(w, "    ...")
		}
		if i < 3 || i == len(from1)-1 {
			fmt.Fprintf(w, "    %s\n", a)
		}
	}
	gaps := advertGaps(from1)
	ok1 := len(from1) >= 3
	for _, a := range from1 {
		ok1 = ok1 && a.VRID == failVRID && a.Priority == failMaster && a.Interval == failInterval && a.TTL == vrrp.TTL && len(a.Addrs) == 1 && a.Addrs[0] == l.VIP
	}
	fmt.Fprintf(w, "\n  from %s (%s): %d adverts, priority %d, interval %v, %s\n", d1.Name, d1.IPv4, len(from1), failMaster, failInterval, gaps)
	fmt.Fprintf(w, "  from %s (%s): %d (a backup sends none)\n", d2.Name, d2.IPv4, len(from2))
	r.checks.add("VRRP: the master advertises, the backup is silent", ok1 && gaps.ok() && len(from2) == 0,
		"%d adverts from %s, priority %d, %s; %d from %s", len(from1), d1.IPv4, failMaster, gaps, len(from2), d2.Name)

	r.section("The router finds the VIP at the master; keep-alive connections")
	if err := r.flushRouter(); err != nil {
		return err
	}
	flushed := time.Now()
	fmt.Fprintf(w, "\n%d keep-alive connections from the client, one request on each:\n\n", failConns)
	held, err := r.holdConns(ctx, cs, failConns, failWait, func(n int, _ map[string]int) bool { return n < failConns })
	defer func() {
		for _, c := range held {
			c.ka.conn.Close()
		}
	}()
	if err != nil {
		return err
	}
	mac1, entry1, err := neighbor(l, l.Router, l.VIP)
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	cmdLine(w, fmt.Sprintf("ip -n %s neigh show %s", l.Router.NSName, l.VIP), "")
	fmt.Fprintf(w, "    %s   <- %s\n", entry1, r.macName(mac1))
	answers := map[string]int{}
	for _, f := range cs.sofar(l.Router, l.Router.Iface) {
		if f.arpOp == arpReply && f.arpSenderIP == l.VIP && f.at.After(flushed) {
			answers[r.macName(f.arpSenderMAC)]++
		}
	}
	fmt.Fprintf(w, "  ARP answers for %s on the router's %s: %s %d, %s %d.\n", l.VIP, l.Router.Iface, d1.Name, answers[d1.Name], d2.Name, answers[d2.Name])
	through := 0
	for _, c := range held {
		if c.via == d1.Name && c.server != "" {
			through++
		}
	}
	r.checks.add("only the master answers ARP for the VIP", answers[d1.Name] > 0 && answers[d2.Name] == 0,
		"%s %d, %s %d", d1.Name, answers[d1.Name], d2.Name, answers[d2.Name])
	r.checks.add("the router's ARP entry: the master's MAC", bytes.Equal(mac1, d1.MAC), "%s", entry1)
	r.checks.add("keep-alive connections through the master", through == failConns, "%d of %d via %s", through, failConns, d1.Name)

	r.section("SIGKILL the master: the backup takes over")
	fmt.Fprintf(w, "SIGKILL: %s sends no priority-0 advert, it just goes silent. %s waits the master-\n", d1.Name, d2.Name)
	mdi := 3*failInterval + time.Duration(256-failBackup)*failInterval/256
	fmt.Fprintf(w, "down interval, 3 x %v + skew (256 - %d) x %v / 256 = %v, then becomes master.\n\n", failInterval, failBackup, failInterval, mdi)
	cmdLine(w, fmt.Sprintf("kill -KILL %d", p1.cmd.Process.Pid), d1.Name)
	killed := time.Now()
	if err := p1.cmd.Process.Kill(); err != nil {
		return err
	}
	select {
	case <-p1.done:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s did not die within 5s of SIGKILL", d1.Name)
	}
	r.dproc = nil // dead and reaped: nothing to stop
	if _, _, err := waitHA(ctx, sock2, 3*time.Second, isMaster); err != nil {
		return err
	}
	tookOver := time.Since(killed)
	// A router that keeps the old MAC is a failed check, with the run
	// going on to show what happened to the connections.
	entry2, movedAt, moveErr := r.waitRouterNeighbor(d2.MAC, 3*time.Second)
	if moveErr != nil {
		movedAt = time.Now()
	}
	fmt.Fprintf(w, "  %s: MASTER %v after the kill (its control socket). Its log:\n", d2.Name, tookOver.Round(time.Millisecond))
	fmt.Fprintf(w, "    %s\n", lastLine(p2.logs(), "-> MASTER"))
	fmt.Fprintf(w, "    %s\n\n", lastLine(p2.logs(), "gratuitous ARP sent"))
	cmdLine(w, fmt.Sprintf("ip -n %s neigh show %s", l.Router.NSName, l.VIP), fmt.Sprintf("%v after the kill", movedAt.Sub(killed).Round(time.Millisecond)))
	fmt.Fprintf(w, "    %s   <- %s\n", entry2, d2.Name)

	// The next request on every connection at once, each bounded.
	conns := make([]*failConn, len(held))
	var wg sync.WaitGroup
	deadline := time.Now().Add(failWait)
	for i, h := range held {
		c := &failConn{heldConn: h}
		conns[i] = c
		wg.Go(func() { c.after, c.err = c.ka.get(l.VIP.String(), deadline) })
	}
	wg.Wait()
	for _, c := range conns {
		c.viaAfter = r.waitVia(cs, c.port, killed)
	}
	counters, err := frameCounters(ctx, sock2)
	if err != nil {
		return err
	}
	for _, c := range held {
		c.ka.conn.Close()
	}
	cs.settle()

	lan := cs.of(l.Router, l.Router.Iface)
	all := adverts(lan)
	var last1, first2 *advert
	for i, a := range all {
		switch {
		case a.Src == d1.IPv4 && a.f.at.Before(killed):
			last1 = &all[i]
		case a.Src == d2.IPv4 && first2 == nil:
			first2 = &all[i]
		}
	}
	garps := takeoverGARPs(lan, d2.MAC, l.VIP, killed)
	logged := 0
	if m := garpCount.FindStringSubmatch(p2.logs()); m != nil {
		fmt.Sscan(m[1], &logged)
	}
	fmt.Fprintf(w, "\nFrom the captures on the router's %s:\n\n", l.Router.Iface)
	row := func(what string, at time.Time, text string) {
		fmt.Fprintf(w, "  %-30s %s  %s\n", what, at.Format("15:04:05.000000"), text)
	}
	silence := time.Duration(0)
	if last1 != nil && first2 != nil {
		silence = first2.f.at.Sub(last1.f.at)
		row("last advert from "+d1.Name, last1.f.at, fmt.Sprintf("(the kill came %v later)", killed.Sub(last1.f.at).Round(time.Millisecond)))
		row("first advert from "+d2.Name, first2.f.at, fmt.Sprintf("%v of silence; priority %d", silence.Round(time.Millisecond), first2.Priority))
	}
	burst := 0
	if len(garps) > 0 {
		for _, g := range garps {
			if g.at.Sub(garps[0].at) < time.Second {
				burst++
			}
		}
		row("gratuitous ARP from "+d2.Name, garps[0].at, fmt.Sprintf("%d at once, %s is-at %s;", burst, l.VIP, d2.MAC))
		fmt.Fprintf(w, "    its log says count=%d, and the same again 2 s later for caches that missed them\n", logged)
		fmt.Fprintf(w, "  the router's entry held %s's MAC %v after the first gratuitous ARP (polled every 2 ms)\n", d2.Name, movedAt.Sub(garps[0].at).Round(time.Millisecond))
	}

	r.section("The connections go on through the new master")
	fmt.Fprintf(w, "The next request on each keep-alive connection, after the takeover:\n\n")
	good := 0
	for i, c := range conns {
		ok := c.err == nil && c.after == c.server && c.viaAfter == d2.Name
		verdict := "the same server"
		if ok {
			good++
		} else {
			verdict = "BROKEN"
		}
		fmt.Fprintf(w, "  #%-2d :%-5d was via %-9s -> %s   now via %-9s -> %s  (%s)\n", i+1, c.port, c.via, c.server, orNone(c.viaAfter), answerOf(c.after, c.err), verdict)
	}
	fmt.Fprintf(w, "\n%s's counters: adopted %d (connections it had never seen, placed by mh mid-way), no-conn %d.\n\n",
		d2.Name, counters["adopted"], counters["no-conn"])
	fmt.Fprintf(w, "Why nothing broke: %s never saw these connections; their next packet is not a SYN,\n", d2.Name)
	fmt.Fprintln(w, "but mh computes the same real server the dead master did, so it adopts each one and")
	fmt.Fprintln(w, "forwards it there. With rr, wrr, lc and the like they would break (see --scenario")
	fmt.Fprintln(w, "restart) unless the directors sync their connections (ha: sync:, which this lab leaves off).")

	// At least three adverts missed (the capture's clock may lag a little),
	// under a second.
	r.checks.add("takeover after the master-down interval", last1 != nil && first2 != nil && silence >= 3*failInterval && silence < time.Second,
		"%s's first advert %v after %s's last (master-down interval %v); MASTER %v after the kill",
		d2.Name, silence.Round(time.Millisecond), d1.Name, mdi, tookOver.Round(time.Millisecond))
	r.checks.add("gratuitous ARP from the new master", burst > 0 && burst == logged,
		"%d captured at once, is-at %s (its log: count=%d)", burst, d2.MAC, logged)
	moved := fmt.Sprintf("%s, %v after the kill", entry2, movedAt.Sub(killed).Round(time.Millisecond))
	if moveErr != nil {
		moved = moveErr.Error()
	}
	r.checks.add("the router's ARP entry moved to the new master", moveErr == nil, "%s", moved)
	r.checks.add("connections continue via "+d2.Name+" on their server", good == failConns && counters["adopted"] >= failConns,
		"%d of %d; adopted %d, no-conn %d", good, failConns, counters["adopted"], counters["no-conn"])

	r.savePcaps(cs, "")
	ev := failEvidence{conns: conns, from1: from1, gaps: gaps, last1: last1, first2: first2, garps: garps, burst: burst,
		entry1: entry1, entry2: entry2, flushed: flushed, killed: killed, movedAt: movedAt}
	r.page.add("Failover: the master is killed, the backup takes over", r.failoverDiagram(cs, ev).svg(),
		fmt.Sprintf("From the captures: %s's adverts, the router finding the VIP at %s, a keep-alive request through it; %s is killed, "+
			"%s's adverts start after the master-down interval, its gratuitous ARP moves the router's cache (read with ip neigh), and the next request "+
			"on the same connection goes through %s to the same real server: mh places it there again, no state shared.", d1.Name, d1.Name, d1.Name, d2.Name, d2.Name))
	r.finish()
	return nil
}

// takeoverGARPs returns the gratuitous ARP for vip sent from mac after
// the kill, in lan: the new master's. One sent before (by the backup, which
// must announce nothing) is not the takeover's, and counting it let the
// check pass on the wrong frames.
func takeoverGARPs(lan []frame, mac net.HardwareAddr, vip netip.Addr, killed time.Time) []*frame {
	var garps []*frame
	for i := range lan {
		f := &lan[i]
		if f.arpOp != 0 && bytes.Equal(f.src, mac) && f.arpSenderIP == vip && f.arpTargetIP == vip && f.at.After(killed) {
			garps = append(garps, f)
		}
	}
	return garps
}

// failEvidence is what the failover diagram draws, from the run.
type failEvidence struct {
	conns          []*failConn
	from1          []advert // the master's adverts before the kill
	gaps           gapStats
	last1, first2  *advert // the master's last, the new master's first
	garps          []*frame
	burst          int
	entry1, entry2 string // the router's entry for the VIP, before and after
	flushed        time.Time
	killed         time.Time
	movedAt        time.Time
}

// failoverDiagram draws the failover: the master's adverts, the router
// finding the VIP at it, a request through it; the kill, the silence, the
// backup's first advert and gratuitous ARP, the router's cache, and the
// next request on the same connection through the new master.
func (r *runner) failoverDiagram(cs *captures, ev failEvidence) *seqDiagram {
	l := r.l
	d1, d2 := l.Directors[0], l.Directors[1]
	hosts := append([]*testbed.Host{l.Router, d1, d2}, l.RealServers...)
	var c *failConn
	var rs *testbed.Host
	if len(ev.conns) > 0 {
		c = ev.conns[0]
		rs = r.realServerByName(c.server)
	}
	// Six lanes, as scale-out's: narrower, to fit the page.
	d := &seqDiagram{lanes: lanes(l, hosts...), laneW: 180}
	lane := map[string]int{}
	for i, h := range hosts {
		lane[h.Name] = i
	}
	const router, dir1, dir2 = 0, 1, 2
	d.note(fmt.Sprintf("VRRP virtual router %d: %s priority %d, %s priority %d; both mh (mh-port), no connection sync.", failVRID, d1.Name, failMaster, d2.Name, failBackup))
	if len(ev.from1) > 0 {
		a := ev.from1[0]
		d.msg(dir1, dir2, kindVRRP, fmt.Sprintf("%d adverts, prio %d, every %v", len(ev.from1), a.Priority, ev.gaps.mean.Round(100*time.Microsecond)),
			fmt.Sprintf("%s → %s ttl %d", a.Src, a.f.ipDst, a.TTL))
	}
	lan := cs.of(l.Router, l.Router.Iface)
	if ask := first(lan, func(f *frame) bool {
		return f.arpOp == arpRequest && f.arpTargetIP == l.VIP && bytes.Equal(f.src, l.Router.MAC) && f.at.After(ev.flushed)
	}); ask != nil {
		d.msg(router, dir2, kindARP, "who-has "+l.VIP.String(), ethLine(ask)).broadcast = true
	}
	if is := first(lan, func(f *frame) bool {
		return f.arpOp == arpReply && f.arpSenderIP == l.VIP && f.at.After(ev.flushed)
	}); is != nil {
		d.msg(lane[r.macName(is.arpSenderMAC)], router, kindARP, "is-at "+is.arpSenderMAC.String()+" (the master only)", ethLine(is))
	}
	d.note("The router's cache: " + ev.entry1)
	killed := func(f *frame) bool { return f.at.After(ev.killed) }
	if c != nil && rs != nil {
		r.drawRequest(d, cs, lane, c.heldConn, d1, rs, func(f *frame) bool { return !killed(f) }, "keep-alive", "mh picks "+rs.Name)
	}
	if ev.last1 != nil {
		d.note(fmt.Sprintf("SIGKILL %s, %v after its last advert: no priority-0 advert, silence.", d1.Name, ev.killed.Sub(ev.last1.f.at).Round(time.Millisecond)))
	}
	// The new master's first advert and its gratuitous ARP, in the order
	// they were captured.
	takeover := func() {
		if a := ev.first2; a != nil && ev.last1 != nil {
			d.msg(dir2, router, kindVRRP, fmt.Sprintf("MASTER: first advert, prio %d, %v after the last", a.Priority, a.f.at.Sub(ev.last1.f.at).Round(time.Millisecond)),
				fmt.Sprintf("%s → %s ttl %d", a.Src, a.f.ipDst, a.TTL)).broadcast = true
		}
	}
	garp := func() {
		if len(ev.garps) > 0 {
			d.msg(dir2, router, kindARP, fmt.Sprintf("gratuitous ARP ×%d: %s is-at %s", ev.burst, l.VIP, d2.MAC), ethLine(ev.garps[0])).broadcast = true
		}
	}
	if ev.first2 != nil && len(ev.garps) > 0 && ev.garps[0].at.Before(ev.first2.f.at) {
		takeover, garp = garp, takeover
	}
	takeover()
	garp()
	d.note(fmt.Sprintf("The router's cache, %v after the kill: %s", ev.movedAt.Sub(ev.killed).Round(time.Millisecond), ev.entry2))
	if c != nil && rs != nil {
		r.drawRequest(d, cs, lane, c.heldConn, d2, rs, killed, "same connection", "no entry, mh places it on "+rs.Name+" again: adopted")
	}
	return d
}

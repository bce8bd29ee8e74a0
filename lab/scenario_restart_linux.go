package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/drlb/drlb/testbed"
)

// Shape of the restart scenario.
const (
	restartConns = 6 // keep-alive connections, a multiple of the real servers
	// restartWait is how long a request after the restart may take: a
	// broken connection is one that stays silent this long (the client
	// would go on retransmitting for minutes).
	restartWait = time.Second
)

// restart is `drlb lab --scenario restart`: keep-alive connections are
// open through the director when it restarts. With rr the new director
// cannot place them and every one breaks; with mh it computes the same
// real server for each and every one survives.
func (r *runner) restart(ctx context.Context) error {
	w := r.w
	r.topology(nil)
	rr, err := r.restartPhase(ctx, "rr", nil)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Why: the new director starts with an empty connection table. The next packet of each")
	fmt.Fprintln(w, "open connection is not a SYN, and rr keeps no memory of where it sent it: picking the")
	fmt.Fprintln(w, "next server in turn would reach one that never heard of the connection (and resets it),")
	fmt.Fprintln(w, "so drlb drops the packet and counts it (no-conn). The client retransmits into the void;")
	// IPVS does not drop such a packet: it schedules only SYNs (without
	// sloppy_tcp) and hands the rest to the director's own stack, which
	// holds the VIP and resets the connection (ARCHITECTURE.md, IPVS
	// semantics). The old line said IPVS "does the same".
	fmt.Fprintln(w, "the real servers still hold the connections. IPVS without connection sync breaks them")
	fmt.Fprintln(w, "too, but loudly: it hands such a packet to the director's own stack, which holds the VIP")
	fmt.Fprintln(w, "and answers with a reset.")
	r.checks.add("rr: the restart breaks every open connection", rr.survived == 0 && rr.counters["no-conn"] >= uint64(restartConns),
		"%d of %d answered within %v; no-conn drops %d", rr.survived, restartConns, restartWait, rr.counters["no-conn"])

	mh, err := r.restartPhase(ctx, "mh", []string{"mh-port"})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "Why: mh (Maglev hashing) is a pure function of the configuration and the flow (with")
	fmt.Fprintln(w, "mh-port: the client's address and port). The new director computes the same real server")
	fmt.Fprintln(w, "for each packet of an unknown connection, adopts the connection and forwards it: nothing")
	fmt.Fprintln(w, "was shared between the two processes. sh works the same way, and so do several directors")
	fmt.Fprintln(w, "behind ECMP.")
	r.checks.add("mh: every connection survives, on its server", mh.same == restartConns && mh.counters["adopted"] >= uint64(restartConns),
		"%d of %d answered by the same server; adopted %d", mh.same, restartConns, mh.counters["adopted"])
	r.page.add("A director restart under keep-alive connections: rr, then mh", r.restartDiagram(rr, mh).svg(),
		"Connection #1 of each run, from the captures: a request before the restart, and the next one on the same connection after it. "+
			"With rr the new director drops it (no connection entry, no way to place it); with mh it computes the same real server and adopts the connection.")
	r.finish()
	return nil
}

// restartResult is one run of the restart scenario, with one scheduler.
type restartResult struct {
	sched     string
	cs        *captures
	ports     []uint16
	servers   []string // before the restart
	after     []string // after it, "" when no answer
	afterErr  []error
	restarted time.Time
	took      time.Duration
	counters  map[string]uint64
	// before, survived and same count connections answered before,
	// answered after, and answered after by the same server.
	before, survived, same int
	distBefore             string
}

// restartPhase runs the director with sched, opens restartConns
// keep-alive connections with one request each, restarts the director
// and sends a second request on each.
func (r *runner) restartPhase(ctx context.Context, sched string, flags []string) (*restartResult, error) {
	w, l := r.w, r.l
	title := sched
	if len(flags) > 0 {
		title += " (" + strings.Join(flags, ", ") + ")"
	}
	r.section("A restart with " + title)
	svc := r.svc
	svc.scheduler, svc.flags = sched, flags
	if _, err := r.writeConfig("drlb-"+sched+".yaml", svc); err != nil {
		return nil, err
	}
	if err := r.stopDirector(); err != nil {
		return nil, err
	}
	if err := r.startDirector("director-"+sched+".log", false); err != nil {
		return nil, err
	}
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	res := &restartResult{sched: sched, cs: cs}
	vip := netip.AddrPortFrom(l.VIP, r.svc.port).String()
	var conns []*keepAlive
	defer func() {
		for _, c := range conns {
			c.conn.Close()
		}
	}()
	fmt.Fprintf(w, "\n%d keep-alive connections from the client, one request on each (like a browser or a\nconnection pool):\n\n", restartConns)
	got := map[string]int{}
	for i := 0; i < restartConns; i++ {
		c, err := l.Dial(ctx, l.Client, "tcp", vip)
		if err != nil {
			return nil, fmt.Errorf("connection %d to %s: %w", i+1, vip, err)
		}
		ka := &keepAlive{conn: c, br: bufio.NewReader(c)}
		conns = append(conns, ka)
		server, err := ka.get(l.VIP.String(), time.Now().Add(2*time.Second))
		res.ports = append(res.ports, uint16(c.LocalAddr().(*net.TCPAddr).Port))
		res.servers = append(res.servers, server)
		if err == nil {
			res.before++
			got[server]++
		}
	}
	res.distBefore = distString(l, got)
	r.checks.add(sched+": every connection answered before the restart", res.before == restartConns, "%d of %d; %s", res.before, restartConns, res.distBefore)
	for i, s := range res.servers {
		fmt.Fprintf(w, "  #%d :%-5d -> %s\n", i+1, res.ports[i], orNone(s))
	}
	fmt.Fprintf(w, "\nThe director restarts (SIGTERM, then drlb run again), the connections stay open:\n\n")
	res.restarted = time.Now()
	if err := r.stopDirector(); err != nil {
		return nil, err
	}
	if err := r.startDirector("director-"+sched+"-restarted.log", false); err != nil {
		return nil, err
	}
	res.took = time.Since(res.restarted)
	fmt.Fprintf(w, "  back up in %v (real servers resolved)\n\n", res.took.Round(time.Millisecond))
	// The second request on every connection at once, each bounded.
	res.after = make([]string, len(conns))
	res.afterErr = make([]error, len(conns))
	var wg sync.WaitGroup
	deadline := time.Now().Add(restartWait)
	for i, c := range conns {
		wg.Go(func() { res.after[i], res.afterErr[i] = c.get(l.VIP.String(), deadline) })
	}
	wg.Wait()
	if res.counters, err = r.counters(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "The next request on each connection, within %v:\n\n", restartWait)
	for i := range conns {
		switch {
		case res.afterErr[i] != nil:
			fmt.Fprintf(w, "  #%d :%-5d -> no answer (%s)\n", i+1, res.ports[i], shortErr(res.afterErr[i]))
		default:
			res.survived++
			same := "the same server"
			if res.after[i] == res.servers[i] {
				res.same++
			} else {
				same = "ANOTHER server"
			}
			fmt.Fprintf(w, "  #%d :%-5d -> %s (%s)\n", i+1, res.ports[i], res.after[i], same)
		}
	}
	fmt.Fprintf(w, "\n%d of %d connections survived. The new director's counters (drlb ctl list -o json):\n", res.survived, len(conns))
	fmt.Fprintf(w, "  new %d, existing %d, adopted %d, no-conn %d\n\n",
		res.counters["new"], res.counters["existing"], res.counters["adopted"], res.counters["no-conn"])
	for _, c := range conns {
		c.conn.Close()
	}
	conns = nil
	cs.settle()
	r.savePcaps(cs, sched+"-")
	return res, nil
}

// keepAlive is one HTTP/1.1 connection that stays open between requests.
type keepAlive struct {
	conn net.Conn
	br   *bufio.Reader
}

// get sends GET / on the connection and returns the real server that
// answered; deadline bounds the whole exchange.
func (k *keepAlive) get(host string, deadline time.Time) (string, error) {
	if err := k.conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintf(k.conn, "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: drlb-lab\r\n\r\n", host); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10)); err != nil {
		return "", err
	}
	return resp.Header.Get(testbed.ServerHeader), nil
}

// orNone is s, or "no answer".
func orNone(s string) string {
	if s == "" {
		return "no answer"
	}
	return s
}

// shortErr says a deadline passed in words, other errors as they are.
func shortErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "silence: the deadline passed"
	}
	return err.Error()
}

// restartDiagram draws connection #1 of both runs: a request before the
// restart and one after.
func (r *runner) restartDiagram(runs ...*restartResult) *seqDiagram {
	l := r.l
	hosts := []*testbed.Host{l.Router, l.Director}
	lane := map[string]int{"router": 0, "director": 1}
	for _, run := range runs {
		if len(run.servers) > 0 {
			if rs := r.realServerByName(run.servers[0]); rs != nil {
				if _, ok := lane[rs.Name]; !ok {
					lane[rs.Name] = len(hosts)
					hosts = append(hosts, rs)
				}
			}
		}
	}
	d := &seqDiagram{lanes: lanes(l, hosts...)}
	const router, director = 0, 1
	for _, run := range runs {
		if len(run.ports) == 0 {
			continue
		}
		port := run.ports[0]
		rs := r.realServerByName(run.servers[0])
		d.note(fmt.Sprintf("%s: connection #1, client port %d, scheduled to %s", run.sched, port, orNone(run.servers[0])))
		request := func(before bool) *frame {
			return first(run.cs.of(l.Director, l.Director.Iface), func(f *frame) bool {
				return f.sport == port && f.tcpPayloadSize > 0 && bytes.Equal(f.dst, l.Director.MAC) && f.at.Before(run.restarted) == before
			})
		}
		forwarded := func(before bool) *frame {
			if rs == nil {
				return nil
			}
			return first(run.cs.of(rs, rs.Iface), func(f *frame) bool {
				return f.sport == port && f.tcpPayloadSize > 0 && bytes.Equal(f.dst, rs.MAC) && f.at.Before(run.restarted) == before
			})
		}
		answer := func(before bool) *frame {
			if rs == nil {
				return nil
			}
			return first(run.cs.of(rs, rs.Iface), func(f *frame) bool {
				return f.dport == port && f.ipSrc == l.VIP && f.tcpPayloadSize > 0 && bytes.Equal(f.src, rs.MAC) && f.at.Before(run.restarted) == before
			})
		}
		exchange := func(before bool, what string) {
			in := request(before)
			if in == nil {
				d.note("the request was not captured at the director")
				return
			}
			d.msg(router, director, kindReq, fmt.Sprintf("GET / (%d bytes) on :%d, %s", in.tcpPayloadSize, port, what), ethLine(in))
			if out := forwarded(before); out != nil {
				how := "known connection"
				if !before {
					how = "no entry: " + run.sched + " places it on " + rs.Name + " again, adopted"
				}
				d.msg(director, lane[rs.Name], kindReq, "forwarded: "+how, ethLine(out))
			} else if !before {
				// rs is nil when connection #1 got no answer before the
				// restart: the stub starts at the director either way, so
				// draw it towards the director's own lane rather than
				// dereference a missing real server (that panicked just
				// before the check table was printed).
				to := director
				if rs != nil {
					to = lane[rs.Name]
				}
				d.msg(director, to, kindBad, "no entry, "+run.sched+" cannot place it: dropped (no-conn)", "").stub = true
				d.note(fmt.Sprintf("The client retransmits; after %v it gives up: the connection is broken.", restartWait))
				return
			}
			if a := answer(before); a != nil {
				d.msg(lane[rs.Name], router, kindReply, fmt.Sprintf("HTTP 200 from %s (%d bytes), not via the director", rs.Name, a.tcpPayloadSize), ethLine(a))
			}
		}
		exchange(true, "before the restart")
		d.note(fmt.Sprintf("The director restarts (back in %v): its connection table is empty.", run.took.Round(time.Millisecond)))
		exchange(false, "after it")
	}
	return d
}

package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

// traffic is what section 5 and 6 produced: the captures and the answers.
type traffic struct {
	*captures
	flushed time.Time
	// ports[i] is request i's client port, servers[i] who answered it.
	ports   []uint16
	servers []string
}

// traffic starts the captures and the director, then sends the requests.
func (r *runner) traffic(ctx context.Context) (*traffic, error) {
	w, l := r.w, r.l
	r.section("Start the director")
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	t := &traffic{captures: cs}
	defer cs.stop() // captures end before the lab does, on every path
	fmt.Fprintf(w, "Capturing every frame (like tcpdump -i IFACE) on:\n  %s.\n\n", cs.names())

	var extra []string
	if r.o.Trace {
		extra = append(extra, "-trace")
	}
	if err := r.startDirector("director.log", r.o.Keep, extra...); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "  drlb is up: it announced the VIP with gratuitous ARP and resolved the real servers' MACs.\n\n")

	// Make the router forget every neighbour, the VIP included, so that the
	// first request has to ask who has the VIP while we capture.
	if err := r.flushRouter(); err != nil {
		return nil, err
	}
	t.flushed = time.Now()

	r.section(fmt.Sprintf("%d requests through the VIP", r.o.Requests))
	if err := r.requests(ctx, t); err != nil {
		return nil, err
	}
	cs.settle()
	return t, nil
}

// startDirector runs `drlb run -c r.cfgPath extra...` in the director's
// namespace, logging to logName in the run's directory, shows the command
// and waits until it has resolved every real server. The director is
// r.dproc until stopDirector; teardown stops it too.
func (r *runner) startDirector(logName string, detach bool, extra ...string) error {
	w, l := r.w, r.l
	if r.dproc != nil {
		return fmt.Errorf("a director is already running (pid %d)", r.dproc.cmd.Process.Pid)
	}
	r.logPath = filepath.Join(r.dir, logName)
	r.logs = append(r.logs, r.logPath)
	// Always a control socket of the run's own: the default one
	// (/run/drlb/drlb.sock) belongs to a real director on this machine,
	// which a lab must neither take nor answer for.
	extra = append([]string{"-ctl", r.ctlPath()}, extra...)
	args := "run -c " + r.cfgPath
	for _, a := range extra {
		args += " " + a
	}
	cmdLine(w, fmt.Sprintf("ip netns exec %s drlb %s", l.Director.NSName, args), "")
	p, err := startDirector(l, l.Director, r.o.Executable, r.cfgPath, r.logPath, detach, extra...)
	if err != nil {
		return err
	}
	r.dproc = p
	fmt.Fprintf(w, "  log: %s\n", r.logPath)
	return p.waitLog("real server resolved", len(l.RealServers), 10*time.Second)
}

// startPeer runs another director, h, with its own config, control socket
// (returned) and log, shows the command and waits until it has resolved
// every real server. Teardown stops it (r.atEnd).
func (r *runner) startPeer(h *testbed.Host, cfgPath string) (*directorProc, string, error) {
	w, l := r.w, r.l
	sock := filepath.Join(r.dir, h.Name+".sock")
	log := filepath.Join(r.dir, h.Name+".log")
	r.logs = append(r.logs, log)
	cmdLine(w, fmt.Sprintf("ip netns exec %s drlb run -c %s -ctl %s", h.NSName, cfgPath, sock), "")
	p, err := startDirector(l, h, r.o.Executable, cfgPath, log, false, "-ctl", sock)
	if err != nil {
		return nil, "", err
	}
	r.atEnd = append(r.atEnd, p.stop)
	fmt.Fprintf(w, "  log: %s\n", log)
	return p, sock, p.waitLog("real server resolved", len(l.RealServers), 10*time.Second)
}

// stopDirector stops the running director, if any.
func (r *runner) stopDirector() error {
	if r.dproc == nil {
		return nil
	}
	err := r.dproc.stop()
	r.dproc = nil
	return err
}

// flushRouter empties the router's neighbour cache, so the next request
// must ask who has the VIP, and says so.
func (r *runner) flushRouter() error {
	if err := flushNeighbors(r.l, r.l.Router); err != nil {
		return err
	}
	cmdLine(r.w, fmt.Sprintf("ip -n %s neigh flush dev %s", r.l.Router.NSName, r.l.Router.Iface), "the router forgets who has the VIP")
	return nil
}

// lanLink opens a netlink handle in h's namespace (testbed.Lab.Netlink:
// never the host's, even once the lab is closed by a signal) and finds
// h's LAN interface with it; the caller closes the handle.
func lanLink(l *testbed.Lab, h *testbed.Host) (*netlink.Handle, netlink.Link, error) {
	nh, err := l.Netlink(h)
	if err != nil {
		return nil, nil, err
	}
	link, err := nh.LinkByName(h.Iface)
	if err != nil {
		nh.Close()
		return nil, nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	return nh, link, nil
}

// flushNeighbors empties h's neighbour table on its LAN interface.
func flushNeighbors(l *testbed.Lab, h *testbed.Host) error {
	nh, link, err := lanLink(l, h)
	if err != nil {
		return err
	}
	defer nh.Close()
	neighs, err := nh.NeighList(link.Attrs().Index, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for i := range neighs {
		_ = nh.NeighDel(&neighs[i]) // an entry may go away by itself meanwhile
	}
	return nil
}

// requests sends the requests, one new connection each, and prints who
// answered and the distribution.
func (r *runner) requests(ctx context.Context, t *traffic) error {
	w, l := r.w, r.l
	c := l.HTTPClient(l.Client)
	defer c.CloseIdleConnections()
	c.Timeout = 5 * time.Second
	url := fmt.Sprintf("http://%s/", l.VIP)
	fmt.Fprintf(w, "From the client %s, each request on a new TCP connection (like curl %s).\nBy the client's source port, the real server that answered:\n\n", l.Client.IPv4, url)
	failed := 0
	for i := 0; i < r.o.Requests; i++ {
		server, local, err := get(ctx, c, url)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Counted, and the run goes on: the checks at the end say
			// how many were answered. Three failures in a row stop
			// asking (a dead director would take 5 s a request).
			fmt.Fprintf(w, "  request %d failed: %v (director log: %s)\n", i+1, err, r.logPath)
			if failed++; failed == 3 {
				fmt.Fprintf(w, "  three requests in a row failed: no more asked\n")
				break
			}
			continue
		}
		failed = 0
		t.ports = append(t.ports, local.Port())
		t.servers = append(t.servers, server)
		if schedTraits(r.o.Scheduler).LoadBased {
			// The transport closes a Connection: close connection on
			// its own goroutine; let the client's FIN reach the
			// director (the connection goes inactive) before the
			// next SYN, so the expected distribution is exact.
			time.Sleep(20 * time.Millisecond)
		}
	}
	r.printAnswers(t)
	return r.distribution(t)
}

// get makes one GET request to url on a new connection (like curl) and
// returns the real server that answered and the client's address.
func get(ctx context.Context, c *http.Client, url string) (server string, local netip.AddrPort, err error) {
	server, body, local, err := roundTrip(ctx, c, http.MethodGet, url, nil)
	if err == nil && strings.TrimSpace(body) != server {
		err = fmt.Errorf("body %q does not name the server %q", body, server)
	}
	return server, local, err
}

// roundTrip makes one request on a new connection and returns the real
// server that answered (its header), the start of the answer's body and
// the client's address.
func roundTrip(ctx context.Context, c *http.Client, method, url string, body []byte) (server, answer string, local netip.AddrPort, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
			local = a.AddrPort()
		}
	}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, rd)
	if err != nil {
		return "", "", local, err
	}
	req.Close = true
	resp, err := c.Do(req)
	if err != nil {
		return "", "", local, err
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	resp.Body.Close()
	if err != nil {
		return "", "", local, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.Header.Get(testbed.ServerHeader), string(b), local, nil
}

// printAnswers lists who answered each request, several per line.
func (r *runner) printAnswers(t *traffic) {
	const perLine = 4
	const shown = 16 // a long run lists the first ones; the table counts all
	var line strings.Builder
	for i := range t.servers {
		if i == shown {
			fmt.Fprintf(r.w, "  ... and %d more\n", len(t.servers)-shown)
			break
		}
		fmt.Fprintf(&line, "  #%-3d :%-5d -> %-4s ", i+1, t.ports[i], t.servers[i])
		if (i+1)%perLine == 0 || i == len(t.servers)-1 || i == shown-1 {
			fmt.Fprintln(r.w, strings.TrimRight(line.String(), " "))
			line.Reset()
		}
	}
	fmt.Fprintln(r.w)
}

// distribution compares the answers with what the scheduler must give.
func (r *runner) distribution(t *traffic) error {
	w, l := r.w, r.l
	want, err := r.svc.expected(len(t.servers))
	if err != nil {
		return err
	}
	got := map[string]int{}
	for _, s := range t.servers {
		got[s]++
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  REAL SERVER\tADDRESS\tWEIGHT\tEXPECTED\tANSWERED\tSHARE\t")
	total := len(t.servers)
	ok := len(got) <= len(l.RealServers) && total > 0 // nothing answered follows nothing
	for i, rs := range l.RealServers {
		n := got[rs.Name]
		if n != want[i] {
			ok = false
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%.0f%%\t\n", rs.Name, rs.IPv4, r.svc.weights[i], want[i], n, 100*float64(n)/float64(max(total, 1)))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s with weights %s over %d new connections: the expected column is what the\n", r.o.Scheduler, weightList(r.svc.weights), total)
	fmt.Fprintln(w, "scheduler itself computes from a fresh start; the director must match it exactly.")
	switch t := schedTraits(r.o.Scheduler); {
	case t.Consistent:
		fmt.Fprintf(w, "%s hashes the client's address: one client always reaches the same real server,\n", r.o.Scheduler)
		fmt.Fprintln(w, "on every director and after a restart, with no state shared (session affinity).")
	case t.LoadBased:
		fmt.Fprintf(w, "%s counts connections: each request's connection is closed (FIN_WAIT, inactive)\n", r.o.Scheduler)
		fmt.Fprintln(w, "before the next one opens, so the least loaded server rotates.")
	}
	r.checks.add("distribution follows the scheduler", ok, "%s %s: %v", r.o.Scheduler, weightList(r.svc.weights), distString(l, got))
	answered := fmt.Sprintf("%d of %d", total, r.o.Requests)
	if total != r.o.Requests {
		answered += " (the failures are listed above)"
	}
	r.checks.add("every request answered", total == r.o.Requests, "%s", answered)
	return nil
}

// distString spells counts in lab order: "rs1=6 rs2=4 rs3=2".
func distString(l *testbed.Lab, got map[string]int) string {
	var s []string
	for _, rs := range l.RealServers {
		s = append(s, fmt.Sprintf("%s=%d", rs.Name, got[rs.Name]))
	}
	return strings.Join(s, " ")
}

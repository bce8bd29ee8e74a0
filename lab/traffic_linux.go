package lab

import (
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
	caps    []*capture
	frames  map[*capture][]frame
	flushed time.Time
	// ports[i] is request i's client port, servers[i] who answered it.
	ports   []uint16
	servers []string
}

// byHost returns the capture of h's iface.
func (t *traffic) byHost(h *testbed.Host, iface string) []frame {
	for _, c := range t.caps {
		if c.host == h && c.iface == iface {
			return t.frames[c]
		}
	}
	return nil
}

// traffic starts the captures and the director, then sends the requests.
func (r *runner) traffic(ctx context.Context) (*traffic, error) {
	w, l := r.w, r.l
	heading(w, 5, "Start the director")
	t := &traffic{frames: map[*capture][]frame{}}
	type port struct {
		h     *testbed.Host
		iface string
	}
	ports := []port{{l.Client, l.Client.Iface}, {l.Router, l.RouterUplink.Iface}, {l.Router, l.Router.Iface}, {l.Director, l.Director.Iface}}
	for _, rs := range l.RealServers {
		ports = append(ports, port{rs, rs.Iface})
	}
	defer func() {
		// Captures end before the lab does, on every path.
		for _, c := range t.caps {
			if _, done := t.frames[c]; !done {
				t.frames[c] = c.stop()
			}
		}
	}()
	var names []string
	for _, p := range ports {
		c, err := startCapture(l, p.h, p.iface)
		if err != nil {
			return nil, fmt.Errorf("capturing on %s %s: %w", p.h.Name, p.iface, err)
		}
		t.caps = append(t.caps, c)
		names = append(names, p.h.Name+" "+p.iface)
	}
	fmt.Fprintf(w, "Capturing every frame (like tcpdump -i IFACE) on:\n  %s.\n\n", strings.Join(names, ", "))

	r.logPath = filepath.Join(r.dir, "director.log")
	args := "run -c " + r.cfgPath
	if r.o.Trace {
		args += " -trace"
	}
	cmdLine(w, fmt.Sprintf("ip netns exec %s drlb %s", l.Director.NSName, args), "")
	p, err := startDirector(l, r.o.Executable, r.cfgPath, r.logPath, r.o.Trace, r.o.Keep)
	if err != nil {
		return nil, err
	}
	r.dproc = p
	fmt.Fprintf(w, "  log: %s\n", r.logPath)
	if err := p.waitLog("real server resolved", len(l.RealServers), 10*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "  drlb is up: it announced the VIP with gratuitous ARP and resolved the real servers' MACs.\n\n")

	// Make the router forget every neighbour, the VIP included, so that the
	// first request has to ask who has the VIP while we capture.
	if err := flushNeighbors(l.Router); err != nil {
		return nil, err
	}
	t.flushed = time.Now()
	cmdLine(w, fmt.Sprintf("ip -n %s neigh flush dev %s", l.Router.NSName, l.Router.Iface), "the router forgets who has the VIP")

	heading(w, 6, fmt.Sprintf("%d requests through the VIP", r.o.Requests))
	if err := r.requests(ctx, t); err != nil {
		return nil, err
	}
	time.Sleep(200 * time.Millisecond) // frames in flight reach the captures
	for _, c := range t.caps {
		t.frames[c] = c.stop()
	}
	return t, nil
}

// flushNeighbors empties h's neighbour table on its LAN interface.
func flushNeighbors(h *testbed.Host) error {
	nh, err := netlink.NewHandleAt(h.NS)
	if err != nil {
		return err
	}
	defer nh.Close()
	link, err := nh.LinkByName(h.Iface)
	if err != nil {
		return err
	}
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
	for i := 0; i < r.o.Requests; i++ {
		var local netip.AddrPort
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
				local = a.AddrPort()
			}
		}}
		req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Close = true
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("request %d to %s: %w (director log: %s)", i+1, url, err, r.logPath)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("request %d: %w", i+1, err)
		}
		server := resp.Header.Get(testbed.ServerHeader)
		if strings.TrimSpace(string(body)) != server {
			return fmt.Errorf("request %d: body %q does not name the server %q", i+1, body, server)
		}
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
	ok := len(got) <= len(l.RealServers)
	total := len(t.servers)
	for i, rs := range l.RealServers {
		n := got[rs.Name]
		if n != want[i] {
			ok = false
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%.0f%%\t\n", rs.Name, rs.IPv4, r.svc.weights[i], want[i], n, 100*float64(n)/float64(total))
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
	r.checks.add("every request answered", total == r.o.Requests, "%d of %d", total, r.o.Requests)
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

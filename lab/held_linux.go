package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/drlb/drlb/testbed"
)

// heldConn is one keep-alive connection a scenario holds open across an
// event (a withdraw, a failover): the director its first request crossed,
// from the captures, and the real server that answered it.
type heldConn struct {
	ka     *keepAlive
	port   uint16
	via    string
	server string
}

// holdConns opens keep-alive connections from the client through the VIP,
// one request on each (bounded by wait), while more(how many so far, how
// many crossed each director) says so, at most limit, and prints each. On
// error it returns the connections opened so far with it: the caller
// closes them.
func (r *runner) holdConns(ctx context.Context, cs *captures, limit int, wait time.Duration, more func(n int, via map[string]int) bool) ([]*heldConn, error) {
	w, l := r.w, r.l
	vip := netip.AddrPortFrom(l.VIP, r.svc.port).String()
	var conns []*heldConn
	count := map[string]int{}
	for len(conns) < limit && more(len(conns), count) {
		c, err := l.Dial(ctx, l.Client, "tcp", vip)
		if err != nil {
			return conns, fmt.Errorf("connection %d to %s: %w", len(conns)+1, vip, err)
		}
		hc := &heldConn{ka: &keepAlive{conn: c, br: bufio.NewReader(c)}, port: uint16(c.LocalAddr().(*net.TCPAddr).Port)}
		conns = append(conns, hc)
		if hc.server, err = hc.ka.get(l.VIP.String(), time.Now().Add(wait)); err != nil {
			return conns, fmt.Errorf("keep-alive connection %d (:%d): %w", len(conns), hc.port, err)
		}
		hc.via = r.waitVia(cs, hc.port, time.Time{})
		count[hc.via]++
		fmt.Fprintf(w, "  #%-2d :%-5d via %-9s -> %s\n", len(conns), hc.port, orNone(hc.via), hc.server)
	}
	return conns, nil
}

// drawRequest draws one request of held connection c from the captures,
// the first whose frames in accepts (a time window): the router hands it
// to director dir (what), dir forwards it to real server rs (how), rs
// answers the router. lane maps host names to d's lanes.
func (r *runner) drawRequest(d *seqDiagram, cs *captures, lane map[string]int, c *heldConn, dir, rs *testbed.Host, in func(*frame) bool, what, how string) {
	l := r.l
	router := lane[l.Router.Name]
	match := func(f *frame) bool { return f.sport == c.port && f.tcpPayloadSize > 0 && in(f) }
	req := first(cs.of(dir, dir.Iface), func(f *frame) bool { return match(f) && bytes.Equal(f.dst, dir.MAC) })
	if req == nil {
		d.note("the request was not captured at " + dir.Name)
		return
	}
	d.msg(router, lane[dir.Name], kindReq, fmt.Sprintf("GET / (%d bytes) on :%d, %s", req.tcpPayloadSize, c.port, what), ethLine(req))
	out := first(cs.of(rs, rs.Iface), func(f *frame) bool {
		return match(f) && bytes.Equal(f.dst, rs.MAC) && bytes.Equal(f.src, dir.MAC)
	})
	if out == nil {
		d.msg(lane[dir.Name], lane[rs.Name], kindBad, "not forwarded", "").stub = true
		return
	}
	d.msg(lane[dir.Name], lane[rs.Name], kindReq, "forwarded: "+how, ethLine(out))
	reply := first(cs.of(rs, rs.Iface), func(f *frame) bool {
		return f.dport == c.port && f.ipSrc == l.VIP && f.tcpPayloadSize > 0 && bytes.Equal(f.src, rs.MAC) && f.at.After(out.at)
	})
	if reply != nil {
		d.msg(lane[rs.Name], router, kindReply, fmt.Sprintf("HTTP 200 from %s, not via a director", rs.Name), ethLine(reply))
	}
}

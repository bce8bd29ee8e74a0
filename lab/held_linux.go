package lab

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
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

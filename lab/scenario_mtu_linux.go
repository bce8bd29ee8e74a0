package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/drlb/drlb/testbed"
)

// Shape of the mtu scenario.
const (
	mtuSmall     = 1400 // rs1's MTU, on a LAN of testbed.DefaultMTU
	mtuUpload    = 256 << 10
	mtuDatagrams = 4 // UDP uploads per round, a multiple of the real servers
	// mtuSmallPayload and mtuFullPayload are UDP payloads: 1228-byte IP
	// packets fit everyone; 1494-byte ones (with the echo's 1499-byte
	// answer) fit the LAN but not rs1.
	mtuSmallPayload = 1200
	mtuFullPayload  = 1466
	mtuWait         = 500 * time.Millisecond
)

// mtu is `drlb lab --scenario mtu`: rs1's interface has a smaller MTU
// than the LAN. TCP is saved by the MSS rs1 announces; full-size UDP
// datagrams forwarded to rs1 vanish at its NIC, and nobody sends an ICMP
// error. drlb doctor names rs1; one MTU on the segment fixes it.
func (r *runner) mtu(ctx context.Context) error {
	w, l := r.w, r.l
	rs1 := l.RealServers[0]
	r.topology(map[string]string{rs1.Name: fmt.Sprintf("MTU %d on a %d LAN", mtuSmall, l.MTU)})

	r.section("The trap: a real server with a smaller MTU")
	fmt.Fprintf(w, "Every link of the LAN (router, switch, director, the other real servers) has MTU %d;\n", l.MTU)
	fmt.Fprintf(w, "%s's interface was given %d (copied from a tunnel's settings, say):\n\n", rs1.Name, mtuSmall)
	if err := r.setMTU(rs1, mtuSmall, "smaller than the LAN"); err != nil {
		return err
	}

	r.section("The director")
	svc := r.svc
	svc.udpPort = testbed.EchoPort
	if _, err := r.writeConfig("drlb.yaml", svc); err != nil {
		return err
	}
	fmt.Fprintf(w, "Two services over both real servers: TCP %s:%d (HTTP) and UDP %s:%d (echo).\n\n", l.VIP, svc.port, l.VIP, svc.udpPort)
	if err := r.startDirector("director.log", false); err != nil {
		return err
	}

	r.section("TCP uploads work: the MSS")
	tcp, err := r.mtuTCP(ctx)
	if err != nil {
		return err
	}

	r.section("UDP uploads vanish: a black hole")
	broken, err := r.mtuUDP(ctx, "broken-", true)
	if err != nil {
		return err
	}
	lostAt1, answered2 := 0, 0
	for _, d := range broken.full {
		switch {
		case d.to == rs1.Name && d.err != nil:
			lostAt1++
		case d.to != rs1.Name && d.err == nil:
			answered2++
		}
	}
	fmt.Fprintf(w, "\nNobody says why. The director forwarded frames that fit its own MTU (%d): drlb answers\n", l.MTU)
	fmt.Fprintln(w, "ICMP fragmentation-needed only for a frame larger than its interface's MTU, as IPVS does.")
	fmt.Fprintf(w, "%s is a host, not a router: its NIC drops a frame larger than its MTU and tells no one\n", rs1.Name)
	fmt.Fprintf(w, "(%s's receive drops went up by %d). No ICMP, so no path MTU discovery: what the MSS\n", rs1.Name, broken.rxDropped)
	fmt.Fprintln(w, "does not protect is lost without a word: big UDP datagrams (DNS with EDNS, syslog, VPN")
	fmt.Fprintf(w, "tunnels), big pings to %s's own address.\n", rs1.Name)
	r.checks.add("small datagrams all answered", broken.smallAnswered == len(broken.small), "%d of %d", broken.smallAnswered, len(broken.small))
	r.checks.add("full-size datagrams to "+rs1.Name+" vanish, the others' answered", lostAt1 > 0 && lostAt1+answered2 == len(broken.full),
		"%d lost at %s, %d answered by the others, of %d", lostAt1, rs1.Name, answered2, len(broken.full))
	r.checks.add("no ICMP error anywhere: a black hole", broken.icmp == 0 && broken.counters["too-big"] == 0,
		"%d ICMP frames captured, drlb too-big %d, %s receive drops +%d", broken.icmp, broken.counters["too-big"], rs1.Name, broken.rxDropped)

	r.section("drlb doctor names the real server")
	rep, err := r.doctorDirector()
	if err != nil {
		return err
	}
	r.printDoctor("the director", "drlb doctor -c "+r.cfgPath, rep)
	failed := failedChecks(rep)
	r.checks.add("doctor names "+rs1.Name, len(failed) == 1 && strings.Contains(failed[0], rs1.IPv4.String()+" MTU"),
		"failed: %s", strings.Join(failed, "; "))

	r.section("The fix: one MTU on the segment")
	if err := r.setMTU(rs1, l.MTU, "as the rest of the LAN"); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fixed, err := r.mtuUDP(ctx, "fixed-", false)
	if err != nil {
		return err
	}
	answered := 0
	for _, d := range fixed.full {
		if d.err == nil {
			answered++
		}
	}
	r.checks.add("fix: every full-size datagram answered", answered == len(fixed.full), "%d of %d", answered, len(fixed.full))
	rep, err = r.doctorDirector()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nOn the director: drlb doctor -c %s: %s\n", r.cfgPath, reportSummary(rep))
	r.checks.add("fix: doctor passes", !rep.Failed(), "%s", reportSummary(rep))
	r.page.add("Full-size datagrams to a real server with a smaller MTU, then the fix", r.mtuDiagram(tcp, broken, fixed).svg(),
		fmt.Sprintf("TCP is saved by the MSS %s announces in its SYN-ACK. A full-size UDP datagram fits the LAN and the director, "+
			"which forwards it; %s's NIC drops it and nobody sends an ICMP error. With one MTU on the segment it arrives.", rs1.Name, rs1.Name))
	r.finish()
	return nil
}

// mtuTCPResult is the TCP part of the mtu scenario.
type mtuTCPResult struct {
	cs *captures
	// mss[rs] is the MSS rs announced in its SYN-ACK; synack its frame.
	mss    map[string]uint16
	synack map[string]*frame
}

// mtuTCP uploads mtuUpload bytes to each real server through the VIP and
// shows the MSS each announced.
func (r *runner) mtuTCP(ctx context.Context) (*mtuTCPResult, error) {
	w, l := r.w, r.l
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	res := &mtuTCPResult{cs: cs, mss: map[string]uint16{}, synack: map[string]*frame{}}
	body := bytes.Repeat([]byte("drlb lab upload "), mtuUpload/16)
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	c := l.HTTPClient(l.Client)
	defer c.CloseIdleConnections()
	c.Timeout = 5 * time.Second
	url := fmt.Sprintf("http://%s/", l.VIP)
	fmt.Fprintf(w, "%d uploads of %d KiB (HTTP POST through the VIP; the server answers the SHA-256 of what it got):\n\n", len(l.RealServers), mtuUpload>>10)
	ok := 0
	ports := map[uint16]string{}
	for range l.RealServers {
		server, answer, local, err := roundTrip(ctx, c, http.MethodPost, url, body)
		switch {
		case err != nil:
			fmt.Fprintf(w, "  :%-5d NO ANSWER (%v)\n", local.Port(), err)
		case strings.TrimSpace(answer) != want:
			fmt.Fprintf(w, "  :%-5d %s got something else: %s\n", local.Port(), server, strings.TrimSpace(answer))
		default:
			ok++
			ports[local.Port()] = server
			fmt.Fprintf(w, "  :%-5d %s received all %d bytes (SHA-256 matches)\n", local.Port(), server, len(body))
		}
	}
	cs.settle()
	r.savePcaps(cs, "tcp-")
	for _, rs := range l.RealServers {
		f := first(cs.of(rs, rs.Iface), func(f *frame) bool {
			return f.isSYNACK() && f.ipSrc == l.VIP && ports[f.dport] == rs.Name
		})
		if f != nil {
			res.mss[rs.Name], res.synack[rs.Name] = f.mss, f
		}
	}
	fmt.Fprintln(w, "\nWhy TCP works: each real server announces the largest segment it takes (MSS) in its SYN-ACK,")
	fmt.Fprintln(w, "from its own MTU, and the client never sends a bigger one:")
	for _, rs := range l.RealServers {
		fmt.Fprintf(w, "  %-4s MTU %4d  SYN-ACK MSS %d\n", rs.Name, linkMTU(l, rs), res.mss[rs.Name])
	}
	rs1 := l.RealServers[0].Name
	r.checks.add("TCP uploads complete", ok == len(l.RealServers), "%d of %d, SHA-256 checked", ok, len(l.RealServers))
	r.checks.add("TCP: "+rs1+" announces the MSS of its MTU", res.mss[rs1] == mtuSmall-40, "MSS %d (MTU %d - 40)", res.mss[rs1], mtuSmall)
	return res, nil
}

// datagram is one UDP upload of the mtu scenario.
type datagram struct {
	size   int    // IP packet size
	to     string // where the director forwarded it
	server string // who answered, "" if nobody
	err    error
	port   uint16
}

// mtuUDPResult is one round of UDP uploads.
type mtuUDPResult struct {
	cs            *captures
	small, full   []datagram
	smallAnswered int
	icmp          int
	rxDropped     uint64
	counters      map[string]uint64
}

// mtuUDP sends mtuDatagrams small datagrams (with small) and
// mtuDatagrams full-size ones to the VIP's echo, each from a new socket,
// and reports where each went and whether it was answered.
func (r *runner) mtuUDP(ctx context.Context, prefix string, small bool) (*mtuUDPResult, error) {
	w, l := r.w, r.l
	rs1 := l.RealServers[0]
	cs, err := startCaptures(l)
	if err != nil {
		return nil, err
	}
	defer cs.stop()
	res := &mtuUDPResult{cs: cs}
	dropped0 := rxDropped(l, rs1)
	send := func(payload int) []datagram {
		var ds []datagram
		for i := 0; i < mtuDatagrams; i++ {
			ds = append(ds, r.echo(ctx, payload))
		}
		return ds
	}
	if small {
		res.small = send(mtuSmallPayload)
	}
	res.full = send(mtuFullPayload)
	res.rxDropped = rxDropped(l, rs1) - dropped0
	if res.counters, err = r.counters(ctx); err != nil {
		return nil, err
	}
	cs.settle()
	r.savePcaps(cs, prefix)
	// Where the director sent each datagram, from its capture.
	for _, ds := range [][]datagram{res.small, res.full} {
		for i := range ds {
			if f := first(cs.of(l.Director, l.Director.Iface), func(f *frame) bool {
				return f.proto == protoUDP && f.sport == ds[i].port && f.ipDst == l.VIP && bytes.Equal(f.src, l.Director.MAC)
			}); f != nil {
				ds[i].to = r.macName(f.dst)
			}
		}
	}
	for _, c := range cs.caps {
		for _, f := range cs.frames[c] {
			if f.proto == protoICMP {
				res.icmp++
			}
		}
	}
	print := func(title string, ds []datagram) int {
		fmt.Fprintf(w, "%s, each from a new socket (so %s spreads them):\n", title, r.svc.scheduler)
		answered := 0
		for i, d := range ds {
			got := "answered by " + d.server
			if d.err != nil {
				got = "NO ANSWER within " + mtuWait.String()
			} else {
				answered++
			}
			fmt.Fprintf(w, "  #%d  %d-byte IP packet, DF  -> director -> %-4s  %s\n", i+1, d.size, orNone(d.to), got)
		}
		fmt.Fprintln(w)
		return answered
	}
	if small {
		res.smallAnswered = print(fmt.Sprintf("%d small UDP datagrams to %s:%d", len(res.small), l.VIP, testbed.EchoPort), res.small)
	}
	print(fmt.Sprintf("%d full-size UDP datagrams (they fit the %d-byte LAN)", len(res.full), l.MTU), res.full)
	fmt.Fprintf(w, "Captured: %d ICMP frames on any interface; drlb's too-big answers: %d; %s's receive drops: +%d.\n",
		res.icmp, res.counters["too-big"], rs1.Name, res.rxDropped)
	return res, nil
}

// echo sends one UDP datagram of payload bytes to the VIP's echo from a
// new socket and waits mtuWait for the answer.
func (r *runner) echo(ctx context.Context, payload int) datagram {
	l := r.l
	d := datagram{size: 20 + 8 + payload}
	c, err := l.DialUDP(l.Client, netip.AddrPortFrom(l.VIP, testbed.EchoPort))
	if err != nil {
		d.err = err
		return d
	}
	defer c.Close()
	d.port = uint16(c.LocalAddr().(*net.UDPAddr).Port)
	msg := bytes.Repeat([]byte{'u'}, payload)
	if _, err := c.Write(msg); err != nil {
		d.err = err
		return d
	}
	if err := c.SetReadDeadline(time.Now().Add(mtuWait)); err != nil {
		d.err = err
		return d
	}
	buf := make([]byte, 2*payload+64)
	n, err := c.Read(buf)
	if err != nil {
		d.err = err
		return d
	}
	name, rest, ok := strings.Cut(string(buf[:n]), ": ")
	if !ok || rest != string(msg) {
		d.err = errors.New("a garbled answer")
		return d
	}
	d.server = name
	return d
}

// rxDropped is h's LAN interface's receive-drop counter.
func rxDropped(l *testbed.Lab, h *testbed.Host) uint64 {
	nh, link, err := lanLink(l, h)
	if err != nil {
		return 0
	}
	nh.Close()
	if link.Attrs().Statistics == nil {
		return 0
	}
	return link.Attrs().Statistics.RxDropped
}

// linkMTU is h's LAN interface's MTU, 0 if unreadable.
func linkMTU(l *testbed.Lab, h *testbed.Host) int {
	nh, link, err := lanLink(l, h)
	if err != nil {
		return 0
	}
	nh.Close()
	return link.Attrs().MTU
}

// mtuDiagram draws the MSS, a lost full-size datagram and, after the
// fix, the same datagram answered.
func (r *runner) mtuDiagram(tcp *mtuTCPResult, broken, fixed *mtuUDPResult) *seqDiagram {
	l := r.l
	rs1 := l.RealServers[0]
	d := &seqDiagram{lanes: lanes(l, l.Client, l.Router, l.Director, rs1)}
	const client, router, director, rs = 0, 1, 2, 3
	if f := tcp.synack[rs1.Name]; f != nil {
		d.msg(rs, router, kindReply, fmt.Sprintf("SYN-ACK, MSS %d: \"send me at most %d-byte segments\"", f.mss, f.mss), ethLine(f))
		d.note(fmt.Sprintf("TCP uploads to %s work: the client sends it segments of at most %d bytes.", rs1.Name, f.mss))
	}
	datagramRows := func(res *mtuUDPResult, lost bool) {
		var dg *datagram
		for i := range res.full {
			if res.full[i].to == rs1.Name {
				dg = &res.full[i]
				break
			}
		}
		if dg == nil {
			return
		}
		// The datagram's frames, and the answer's, as captured.
		udp := func(h *testbed.Host, ok func(*frame) bool) string {
			f := first(res.cs.of(h, h.Iface), func(f *frame) bool { return f.proto == protoUDP && ok(f) })
			if f == nil {
				return "(not captured)"
			}
			return ethLine(f)
		}
		toVIP := func(f *frame) bool { return f.sport == dg.port && f.ipDst == l.VIP }
		label := fmt.Sprintf("UDP %s:%d → %s:%d, %d bytes, DF", l.Client.IPv4, dg.port, l.VIP, testbed.EchoPort, dg.size)
		d.msg(client, router, kindReq, label, udp(l.Client, toVIP))
		d.msg(router, director, kindReq, label+fmt.Sprintf(": fits the director's MTU %d", l.MTU),
			udp(l.Director, func(f *frame) bool { return toVIP(f) && bytes.Equal(f.dst, l.Director.MAC) }))
		out := udp(l.Director, func(f *frame) bool { return toVIP(f) && bytes.Equal(f.src, l.Director.MAC) })
		if lost {
			d.msg(director, rs, kindBad, fmt.Sprintf("forwarded to %s, whose MTU is %d: its NIC drops it", rs1.Name, mtuSmall), out).lost = true
			d.note(fmt.Sprintf("No ICMP from anyone: the client waits (%v here) and gets nothing.", mtuWait))
			return
		}
		d.msg(director, rs, kindReq, "forwarded to "+rs1.Name+": it arrives", out)
		d.msg(rs, router, kindReply, fmt.Sprintf("UDP echo from %s, straight to the router", dg.server),
			udp(rs1, func(f *frame) bool { return f.dport == dg.port && bytes.Equal(f.src, rs1.MAC) }))
	}
	datagramRows(broken, true)
	d.note(fmt.Sprintf("The fix: ip link set dev %s mtu %d on %s, one MTU on the segment.", rs1.Iface, l.MTU, rs1.Name))
	datagramRows(fixed, false)
	return d
}

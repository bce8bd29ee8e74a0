package lab

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"
)

// walkInput is what the hop-by-hop walk of one request reads: the frames
// captured on each interface and who is who.
type walkInput struct {
	vip    netip.AddrPort // VIP:80
	client netip.AddrPort // the walked request's client address and port
	// names labels MACs for people: "router eth0", "rs2", ...
	names map[string]string

	clientMAC, routerLANMAC, directorMAC, rsMAC net.HardwareAddr
	rsName                                      string
	// flushed is when the router's neighbour cache was emptied: ARP after
	// it belongs to the walked request.
	flushed time.Time

	clientCap, routerLAN, director, rs []frame
	// reals holds every real server's capture, for ARP silence.
	reals map[string][]frame
	// order lists reals' keys in lab order.
	order []string

	// What the walk found, for the drawing: the router's question, the
	// director's answer, answers by anyone else, and the hops.
	arpAsk, arpAnswer *frame
	arpForeign        []*frame
	// rsSilent: every real server's capture holds the question and no
	// answer from it.
	rsSilent bool
	hops     []hop
}

// label names a MAC: "02:00:c6:12:00:02 (director)".
func (in *walkInput) label(mac net.HardwareAddr) string {
	if n, ok := in.names[mac.String()]; ok {
		return fmt.Sprintf("%s (%s)", mac, n)
	}
	return mac.String()
}

// first returns the first frame matching ok, or nil.
func first(frames []frame, ok func(*frame) bool) *frame {
	for i := range frames {
		if ok(&frames[i]) {
			return &frames[i]
		}
	}
	return nil
}

// walk prints the walked request hop by hop and returns its verdicts.
func walk(w io.Writer, in *walkInput) checks {
	var cs checks
	in.walkARP(w, &cs)
	in.walkHops(w, &cs)
	in.walkBypass(w, &cs)
	return cs
}

// walkARP shows who asked for the VIP's MAC and who answered.
func (in *walkInput) walkARP(w io.Writer, cs *checks) {
	vip := in.vip.Addr()
	fmt.Fprintf(w, "ARP: before the router can send the client's packet onto the LAN it needs\n")
	fmt.Fprintf(w, "the MAC address that owns %s. Its cache was flushed, so it asks (broadcast):\n\n", vip)
	req := first(in.routerLAN, func(f *frame) bool {
		return f.arpOp == arpRequest && f.arpTargetIP == vip && bytes.Equal(f.src, in.routerLANMAC) && !f.at.Before(in.flushed)
	})
	in.arpAsk = req
	if req == nil {
		fmt.Fprintf(w, "  (no ARP request for %s seen on the router's LAN interface)\n", vip)
	} else {
		fmt.Fprintf(w, "  router    asks     who-has %s tell %s   (%s -> broadcast)\n", vip, req.arpSenderIP, req.src)
	}
	var director, foreign int
	var foreignBy string
	for i := range in.routerLAN {
		f := &in.routerLAN[i]
		if f.arpOp != arpReply || f.arpSenderIP != vip || f.at.Before(in.flushed) {
			continue
		}
		if bytes.Equal(f.arpSenderMAC, in.directorMAC) {
			if director == 0 {
				fmt.Fprintf(w, "  director  answers  %s is-at %s   (drlb, not a kernel)\n", vip, f.arpSenderMAC)
				in.arpAnswer = f
			}
			director++
		} else {
			in.arpForeign = append(in.arpForeign, f)
			foreign++
			foreignBy = in.label(f.arpSenderMAC)
			fmt.Fprintf(w, "  !! %s ALSO answered: %s is-at %s\n", foreignBy, vip, f.arpSenderMAC)
		}
	}
	// The broadcast reached every real server too: they must stay silent.
	// The question is the router's (drlb's gratuitous ARP is a request for
	// the VIP too, broadcast again a second after start); an answer is
	// one this server sent (src), not one it saw. A server's answer is not
	// added to foreign: the router's capture already counted it once.
	silent := 0
	for _, name := range in.order {
		heard, said := 0, 0
		for i := range in.reals[name] {
			f := &in.reals[name][i]
			switch {
			case f.arpOp == arpRequest && f.arpTargetIP == vip && bytes.Equal(f.src, in.routerLANMAC) && !f.at.Before(in.flushed):
				heard++
			case f.arpOp == arpReply && f.arpSenderIP == vip && in.names[f.src.String()] == name:
				said++
			}
		}
		// Silent means it heard the question and did not answer: a
		// capture that holds no question shows nothing either way (it
		// counted as silent, so "3/3 silent" could pass on 0 of 0).
		if heard > 0 && said == 0 {
			silent++
		}
		fmt.Fprintf(w, "  %-9s heard the question %d time(s), answered %d\n", name, heard, said)
	}
	in.rsSilent = silent == len(in.order)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The real servers hold the VIP on lo; arp_ignore=1 keeps them from answering for it on eth0.")
	fmt.Fprintln(w, "Why it matters: if a real server answered too (\"ARP flux\"), the router would send")
	fmt.Fprintln(w, "clients straight to that server, bypassing the balancer, and flip between answers.")
	fmt.Fprintln(w)
	cs.add("ARP for the VIP answered by the director only", director > 0 && foreign == 0 && silent == len(in.order),
		"director %d, others %d; %d/%d real servers silent", director, foreign, silent, len(in.order))
}

// hop is one step of the walked request's first exchange (SYN, SYN-ACK).
type hop struct {
	title, where string
	f            *frame
}

// walkHops follows the SYN to the real server and the SYN-ACK back.
func (in *walkInput) walkHops(w io.Writer, cs *checks) {
	toVIP := func(src net.HardwareAddr, dst net.HardwareAddr) func(*frame) bool {
		return func(f *frame) bool {
			return f.isTCP(in.client, in.vip) && f.isSYN() &&
				(src == nil || bytes.Equal(f.src, src)) && (dst == nil || bytes.Equal(f.dst, dst))
		}
	}
	back := func(src net.HardwareAddr) func(*frame) bool {
		return func(f *frame) bool {
			return f.isTCP(in.vip, in.client) && f.isSYNACK() && (src == nil || bytes.Equal(f.src, src))
		}
	}
	hops := []hop{
		{"client -> router", "captured on client eth0", first(in.clientCap, toVIP(in.clientMAC, nil))},
		{"router -> director", "captured on director eth0, received", first(in.director, toVIP(nil, in.directorMAC))},
		{"director -> " + in.rsName, "captured on director eth0, sent by drlb", first(in.director, toVIP(in.directorMAC, nil))},
		{"arrives at " + in.rsName, "captured on " + in.rsName + " eth0", first(in.rs, toVIP(nil, in.rsMAC))},
		{in.rsName + " -> router (the reply)", "captured on " + in.rsName + " eth0, sent", first(in.rs, back(in.rsMAC))},
		{"arrives at the router", "captured on router eth0", first(in.routerLAN, back(in.rsMAC))},
		{"router -> client", "captured on client eth0", first(in.clientCap, back(nil))},
	}
	in.hops = hops
	fmt.Fprintf(w, "The connection's first packet (SYN) and its answer (SYN-ACK), hop by hop:\n\n")
	all := true
	for i, h := range hops {
		fmt.Fprintf(w, "  %d. %-28s %s\n", i+1, h.title, h.where)
		if h.f == nil {
			fmt.Fprintf(w, "     (not captured)\n")
			all = false
			continue
		}
		fmt.Fprintf(w, "     eth %s -> %s\n", in.label(h.f.src), in.label(h.f.dst))
		fmt.Fprintf(w, "     ip  %s -> %s  tcp %s  ttl %d\n",
			netip.AddrPortFrom(h.f.ipSrc, h.f.sport), netip.AddrPortFrom(h.f.ipDst, h.f.dport), flagNames(h.f.tcpFlags), h.f.ttl)
	}
	fmt.Fprintln(w)
	cs.add("every hop of the walked request captured", all, "%d hops", len(hops))
	if !all {
		return
	}
	got := hops[2].f
	cs.add("walked request went to the server that answered", bytes.Equal(got.dst, in.rsMAC),
		"frame to %s, answer from %s", in.names[got.dst.String()], in.rsName)

	in2, out3, at4 := hops[1].f, hops[2].f, hops[3].f
	same := bytes.Equal(in2.ip, out3.ip) && bytes.Equal(out3.ip, at4.ip)
	fmt.Fprintf(w, "Hop 2 -> hop 3 is all drlb does. Ethernet header:\n")
	fmt.Fprintf(w, "  received  dst %s  src %s\n", in2.dst, in2.src)
	fmt.Fprintf(w, "  sent      dst %s  src %s\n", out3.dst, out3.src)
	verdict := "byte-identical"
	if !same {
		verdict = "DIFFERENT"
	}
	fmt.Fprintf(w, "  IP packet: %d bytes received, %d sent, %d arrived at %s: %s.\n", len(in2.ip), len(out3.ip), len(at4.ip), in.rsName, verdict)
	fmt.Fprintf(w, "  (Hops 1 -> 2 changed only the TTL, %d -> %d, and its checksum: the router routes.)\n",
		hops[0].f.ttl, in2.ttl)
	fmt.Fprintf(w, "The real server accepts a packet addressed to %s because the VIP is on its lo,\n", in.vip.Addr())
	fmt.Fprintf(w, "and answers FROM the VIP straight to its gateway, the router (hop 5): not to the director.\n\n")
	// Every client packet of this connection, not just the SYN.
	var ins, outs [][]byte
	for i := range in.director {
		f := &in.director[i]
		if !f.isTCP(in.client, in.vip) {
			continue
		}
		switch {
		case bytes.Equal(f.dst, in.directorMAC):
			ins = append(ins, f.ip)
		case bytes.Equal(f.src, in.directorMAC):
			outs = append(outs, f.ip)
		}
	}
	identical := len(ins) > 0 && len(ins) == len(outs)
	for i := 0; identical && i < len(ins); i++ {
		identical = bytes.Equal(ins[i], outs[i])
	}
	detail := fmt.Sprintf("the SYN and all %d packets of the connection byte-identical", len(ins))
	if !same || !identical {
		detail = fmt.Sprintf("SYN %s; connection: %d in, %d out, all identical: %v", verdict, len(ins), len(outs), identical)
	}
	cs.add("IP packet unchanged by the director", same && identical, "%s", detail)
}

// walkBypass proves the replies never crossed the director.
func (in *walkInput) walkBypass(w io.Writer, cs *checks) {
	vip := in.vip.Addr()
	var replies, seen, vipIn, vipOut, fromVIP int
	for i := range in.rs {
		if f := &in.rs[i]; f.isTCP(in.vip, in.client) && bytes.Equal(f.src, in.rsMAC) {
			replies++
		}
	}
	for i := range in.director {
		f := &in.director[i]
		switch {
		case f.ipSrc == vip:
			fromVIP++
			if f.isTCP(in.vip, in.client) {
				seen++
			}
		case f.ipDst == vip && bytes.Equal(f.dst, in.directorMAC):
			vipIn++
		case f.ipDst == vip && bytes.Equal(f.src, in.directorMAC):
			vipOut++
		}
	}
	fmt.Fprintf(w, "Proof that replies bypass the director (from the captures):\n")
	fmt.Fprintf(w, "  This request: %s sent %d frames from %s to %s;\n", in.rsName, replies, in.vip, in.client)
	fmt.Fprintf(w, "                the director saw %d of them.\n", seen)
	fmt.Fprintf(w, "  Over the whole run, frames with source %s on the director's eth0: %d.\n", vip, fromVIP)
	fmt.Fprintf(w, "  Frames to %s the director received: %d; forwarded: %d.\n", vip, vipIn, vipOut)
	fmt.Fprintln(w, "Why it matters: replies are usually far bigger than requests; the director only ever")
	fmt.Fprintln(w, "handles the small inbound half, which is how one DR director fronts many servers.")
	cs.add("replies never crossed the director", replies > 0 && fromVIP == 0,
		"%d frames from the VIP on the director", fromVIP)
	cs.add("director forwarded every VIP frame once", vipIn > 0 && vipIn == vipOut, "%d in, %d out", vipIn, vipOut)
}

// diagram draws the walked request as a sequence diagram over four lanes:
// client, router, director and the real server that answered.
func (in *walkInput) diagram(lanes []seqLane) *seqDiagram {
	const client, router, director, rs = 0, 1, 2, 3
	d := &seqDiagram{lanes: lanes}
	hop := func(i, from, to int, kind, what string) {
		if i >= len(in.hops) {
			return
		}
		if in.hops[i].f == nil {
			d.note(fmt.Sprintf("hop %d (%s) was not captured", i+1, in.hops[i].title))
			return
		}
		f := in.hops[i].f
		d.msg(from, to, kind, synLabel(f, what), ethLine(f))
	}
	hop(0, client, router, kindReq, "")
	if q := in.arpAsk; q != nil {
		d.msg(router, rs, kindARP, fmt.Sprintf("ARP who-has %s? tell %s (broadcast)", q.arpTargetIP, q.arpSenderIP), ethLine(q)).broadcast = true
	}
	if a := in.arpAnswer; a != nil {
		d.msg(director, router, kindARP, fmt.Sprintf("ARP %s is-at %s: drlb answers", a.arpSenderIP, a.arpSenderMAC), ethLine(a))
	}
	for _, a := range in.arpForeign {
		d.msg(rs, router, kindBad, fmt.Sprintf("ARP %s is-at %s: %s answers too", a.arpSenderIP, a.arpSenderMAC, in.names[a.arpSenderMAC.String()]), ethLine(a))
	}
	// Only what the captures show: without drlb's answer captured, the
	// note claimed "only drlb answered" above an exchange that had none.
	if in.arpAsk != nil && in.arpAnswer != nil && len(in.arpForeign) == 0 && in.rsSilent {
		d.note("The real servers heard the broadcast and stayed silent (arp_ignore=1): only drlb answered.")
	}
	hop(1, router, director, kindReq, "")
	// The labels of hops 3 and 5 claim what a correct exchange shows; they
	// stand only where the captures show it. Drawn unconditionally, the
	// page said "only the MACs changed" over a SYN the director altered and
	// "not via the director" over a reply sent to the director's MAC, while
	// its own check table below said FAIL.
	fwdKind, fwdWhat := kindReq, ": only the MACs changed"
	if len(in.hops) > 2 && in.hops[1].f != nil && in.hops[2].f != nil && !bytes.Equal(in.hops[1].f.ip, in.hops[2].f.ip) {
		fwdKind, fwdWhat = kindBad, ": the IP packet CHANGED"
	}
	hop(2, director, rs, fwdKind, fwdWhat)
	replyTo, replyKind, replyWhat := router, kindReply, ": not via the director"
	if len(in.hops) > 4 && in.hops[4].f != nil && !bytes.Equal(in.hops[4].f.dst, in.routerLANMAC) {
		replyKind, replyWhat = kindBad, ": to "+in.label(in.hops[4].f.dst)+", not the router"
		if bytes.Equal(in.hops[4].f.dst, in.directorMAC) {
			replyTo = director
		}
	}
	hop(4, rs, replyTo, replyKind, replyWhat)
	hop(6, router, client, kindReply, "")
	return d
}

// walkCaption is the page's text over the walk's drawing. It tells DR as
// it should be only when every check of the walk passed; otherwise it
// names the failed ones: the fixed prose ("rewrites only the MAC
// addresses", "straight through the router") stood over a drawing and a
// check table that showed the opposite.
func walkCaption(cs checks, client, vip netip.AddrPort, rsName string) string {
	head := fmt.Sprintf("Request #1, %s → %s, from the packets captured on every interface: ", client, vip)
	var failed []string
	for _, c := range cs {
		if !c.ok {
			failed = append(failed, c.name)
		}
	}
	if len(failed) > 0 {
		return head + "NOT what DR should do. Failed: " + strings.Join(failed, "; ") + " (see the checks below)."
	}
	return head + "the router asks who has the VIP, drlb answers, rewrites only the MAC addresses and hands the frame to " +
		rsName + ", which answers the client straight through the router."
}

// synLabel names a TCP segment for drawings: "SYN 198.18.1.10:40000 →
// 198.18.0.100:80  ttl 63" and what.
func synLabel(f *frame, what string) string {
	return fmt.Sprintf("%s %s → %s  ttl %d%s", flagWord(f.tcpFlags),
		netip.AddrPortFrom(f.ipSrc, f.sport), netip.AddrPortFrom(f.ipDst, f.dport), f.ttl, what)
}

// ordinal spells 1 as "first", 2 as "second", ...
func ordinal(n int) string {
	if n >= 1 && n <= 3 {
		return [...]string{"first", "second", "third"}[n-1]
	}
	return fmt.Sprintf("#%d", n)
}

// ethLine is a frame's Ethernet addresses, for drawings.
func ethLine(f *frame) string { return fmt.Sprintf("eth %s → %s", f.src, f.dst) }

// flagWord names a TCP segment by its flags: SYN, SYN-ACK, ACK, ...
func flagWord(fl uint8) string {
	switch {
	case fl&(tcpSYN|tcpACK) == tcpSYN:
		return "SYN"
	case fl&(tcpSYN|tcpACK) == tcpSYN|tcpACK:
		return "SYN-ACK"
	case fl&tcpRST != 0:
		return "RST"
	case fl&tcpFIN != 0:
		return "FIN"
	case fl&0x08 != 0:
		return "PSH-ACK"
	}
	return "ACK"
}

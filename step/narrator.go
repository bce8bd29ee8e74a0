package step

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/wire"
)

// NarratorOptions shape a Narrator's lines.
type NarratorOptions struct {
	// PerSecond caps the lines a second, the rest counted and reported
	// once a second; 0 shows every frame (a replay).
	PerSecond int
	// Prefix starts every line ("trace: " for the live director).
	Prefix string
	// Numbered starts every line with the frame's number, counted from 1
	// (a replay listing). Only meaningful with PerSecond 0.
	Numbered bool
}

// Narrator is the Observer that tells people what the director did with
// each frame, one line per frame: what it did and why, the frame as it
// arrived, the service and real server, and what was sent. The same lines
// serve `drlb run -trace` (rate-limited, "trace: " prefix) and
// `drlb replay -v` (every frame, numbered):
//
//	3 forward new tcp 198.18.1.10:40000 -> 198.18.0.100:80 [S] | service tcp 198.18.0.100:80 (rr) | real server 198.18.0.11 | sent dst 02:00:00:00:00:11 src 02:00:00:00:00:02, IP packet unchanged
//	1 answer arp-reply arp who-has 198.18.0.100 tell 198.18.0.1 | sent 198.18.0.100 is-at 02:00:00:00:00:02
type Narrator struct {
	w io.Writer
	// cfg names services and real servers by the indexes of a result: the
	// running configuration, swapped by SetConfig when it changes.
	cfg  atomic.Pointer[config.Config]
	opts NarratorOptions

	mu      sync.Mutex // a trace may be shared by several loops
	n       int
	window  int64
	printed int
	skipped int
	err     error
}

// NewNarrator narrates to w; cfg names services and real servers.
func NewNarrator(w io.Writer, cfg *config.Config, opts NarratorOptions) *Narrator {
	n := &Narrator{w: w, opts: opts}
	n.cfg.Store(cfg)
	return n
}

// SetConfig names services and real servers after cfg from now on: the
// director calls it where it swaps in a new configuration, so that the
// indexes of every result narrated are read in the configuration that
// produced them.
func (n *Narrator) SetConfig(cfg *config.Config) { n.cfg.Store(cfg) }

// Err is the first error writing to w, if any.
func (n *Narrator) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Wants implements Observer: every frame without a rate limit, otherwise
// at most PerSecond frames a second of frame time.
func (n *Narrator) Wants(now int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.n++
	if n.opts.PerSecond <= 0 {
		return true
	}
	// A clock set back (the live trace runs on the wall clock) opens a
	// new window too: else the trace stayed silent until the clock caught
	// up with the old one. Loops sharing the narrator stamp their batches
	// a little out of order, so less than a second back is the same window.
	if d := now - n.window; d >= int64(time.Second) || d <= -int64(time.Second) {
		if n.skipped > 0 {
			n.write(fmt.Sprintf("%d frames not shown (rate limit %d/s)", n.skipped, n.opts.PerSecond))
		}
		n.window, n.printed, n.skipped = now, 0, 0
	}
	if n.printed >= n.opts.PerSecond {
		n.skipped++
		return false
	}
	n.printed++
	return true
}

// Observe implements Observer.
func (n *Narrator) Observe(e *Event) {
	line := n.Line(e)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.opts.Numbered {
		line = fmt.Sprintf("%d %s", n.n, line)
	}
	n.write(line)
}

func (n *Narrator) write(line string) {
	if n.err != nil {
		return
	}
	_, n.err = fmt.Fprintln(n.w, n.opts.Prefix+line)
}

// Line renders one event, without prefix or number.
func (n *Narrator) Line(e *Event) string {
	var b strings.Builder
	reason := e.Result.Reason.String()
	if e.Action == Answer {
		reason = e.Kind.String()
	}
	fmt.Fprintf(&b, "%s %s %s", e.Action, reason, e.Desc)
	svc, rs := n.names(e.Result)
	switch e.Action {
	case Forward:
		fmt.Fprintf(&b, " | service %s | real server %s | sent dst %s src %s, IP packet unchanged",
			svc, rs, net.HardwareAddr(e.Sent[0:6]), net.HardwareAddr(e.Sent[6:12]))
		if e.CsumCompleted {
			b.WriteString(" (checksum completed)")
		}
	case Answer:
		if svc != "" {
			fmt.Fprintf(&b, " | service %s", svc)
		}
		b.WriteString(" | sent " + answerText(e.Kind, e.Sent))
	case Drop:
		if svc != "" {
			fmt.Fprintf(&b, " | service %s", svc)
		}
		if rs != "" {
			fmt.Fprintf(&b, " | real server %s", rs)
		}
	case Pass:
		b.WriteString(" | left to the kernel")
	}
	return b.String()
}

// names renders a result's service and real server.
func (n *Narrator) names(res forwarder.Result) (svc, rs string) {
	cfg := n.cfg.Load()
	if cfg == nil || res.Service < 0 || res.Service >= len(cfg.Services) {
		return "", ""
	}
	s := cfg.Services[res.Service]
	svc = fmt.Sprintf("%s (%s)", s.String(), s.Scheduler)
	if res.Real >= 0 && res.Real < len(s.RealServers) {
		rs = s.RealServers[res.Real].Address.String()
	} else if res.Real == len(s.RealServers) && s.SorryServer != nil {
		rs = s.SorryServer.Address.String() + " (sorry server)"
	}
	return svc, rs
}

// answerText says what an answer frame tells its receiver.
func answerText(k Kind, b []byte) string {
	et, off, ok := wire.EtherType(b)
	switch {
	case !ok:
	case k == ARPReply && et == wire.EtherTypeARP && len(b) >= off+28:
		ip, _ := netip.AddrFromSlice(b[off+14 : off+18])
		return fmt.Sprintf("%s is-at %s", ip, net.HardwareAddr(b[off+8:off+14]))
	case k == NeighborAdvert && et == wire.EtherTypeIPv6 && len(b) >= off+40+24:
		ip, _ := netip.AddrFromSlice(b[off+48 : off+64])
		return fmt.Sprintf("%s is-at %s (neighbor advertisement)", ip, net.HardwareAddr(b[6:12]))
	case k == TooBig && et == wire.EtherTypeIPv4 && len(b) >= off+28:
		src, _ := netip.AddrFromSlice(b[off+12 : off+16])
		dst, _ := netip.AddrFromSlice(b[off+16 : off+20])
		return fmt.Sprintf("icmp fragmentation-needed mtu %d %s -> %s", int(b[off+26])<<8|int(b[off+27]), src, dst)
	case k == TooBig && et == wire.EtherTypeIPv6 && len(b) >= off+48:
		src, _ := netip.AddrFromSlice(b[off+8 : off+24])
		dst, _ := netip.AddrFromSlice(b[off+24 : off+40])
		mtu := int(b[off+44])<<24 | int(b[off+45])<<16 | int(b[off+46])<<8 | int(b[off+47])
		return fmt.Sprintf("icmp6 packet-too-big mtu %d %s -> %s", mtu, src, dst)
	case k == Reset:
		if f, ok := tcpEnds(b, et, off); ok {
			return "tcp reset " + f + " (its real server is gone)"
		}
	}
	return k.String()
}

// tcpEnds renders a TCP segment's "src:port -> dst:port".
func tcpEnds(b []byte, et uint16, off int) (string, bool) {
	var src, dst netip.Addr
	l4 := 0
	switch {
	case et == wire.EtherTypeIPv4 && len(b) >= off+20:
		src, _ = netip.AddrFromSlice(b[off+12 : off+16])
		dst, _ = netip.AddrFromSlice(b[off+16 : off+20])
		l4 = off + int(b[off]&0x0f)*4
	case et == wire.EtherTypeIPv6 && len(b) >= off+40:
		src, _ = netip.AddrFromSlice(b[off+8 : off+24])
		dst, _ = netip.AddrFromSlice(b[off+24 : off+40])
		l4 = off + 40
	default:
		return "", false
	}
	if len(b) < l4+4 {
		return "", false
	}
	sp, dp := uint16(b[l4])<<8|uint16(b[l4+1]), uint16(b[l4+2])<<8|uint16(b[l4+3])
	return netip.AddrPortFrom(src, sp).String() + " -> " + netip.AddrPortFrom(dst, dp).String(), true
}

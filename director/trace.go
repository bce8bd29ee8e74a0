package director

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/drlb/drlb/forwarder"
	"github.com/drlb/drlb/internal/pktfmt"
)

// Tracer narrates frames through the director for people learning how DR
// works: what was decoded, which service matched, which real server was
// chosen and why, what was rewritten. It prints at most PerSecond frames a
// second so it can never flood a terminal, and says how many it skipped.
type Tracer struct {
	w         io.Writer
	perSecond int

	mu      sync.Mutex
	window  time.Time
	printed int
	skipped int
}

// NewTracer traces to w, at most perSecond frames a second (default 20).
func NewTracer(w io.Writer, perSecond int) *Tracer {
	if perSecond <= 0 {
		perSecond = 20
	}
	return &Tracer{w: w, perSecond: perSecond}
}

// allow reports whether a frame may be traced now.
func (t *Tracer) allow(now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now.Sub(t.window) >= time.Second {
		if t.skipped > 0 {
			fmt.Fprintf(t.w, "trace: %d frames not shown (rate limit %d/s)\n", t.skipped, t.perSecond)
		}
		t.window, t.printed, t.skipped = now, 0, 0
	}
	if t.printed >= t.perSecond {
		t.skipped++
		return false
	}
	t.printed++
	return true
}

// step describes one frame before Process rewrites it; done prints the
// outcome. The pair keeps description off the path of frames not traced.
func (t *Tracer) step(frame []byte) string {
	if t == nil || !t.allow(time.Now()) {
		return ""
	}
	return pktfmt.Describe(frame)
}

func (t *Tracer) done(desc string, after []byte, res forwarder.Result, svc, real string) {
	if desc == "" {
		return
	}
	var line string
	switch res.Verdict {
	case forwarder.Forward:
		line = fmt.Sprintf("decoded %s | matched %s | %s -> real server %s | rewritten dst %s src %s, IP packet unchanged | sent",
			desc, svc, res.Reason, real, net.HardwareAddr(after[0:6]), net.HardwareAddr(after[6:12]))
	case forwarder.Drop:
		line = fmt.Sprintf("decoded %s | dropped: %s", desc, res.Reason)
		if svc != "" {
			line += " (service " + svc + ")"
		}
	default:
		line = fmt.Sprintf("decoded %s | not for a virtual service (%s): left to the kernel", desc, res.Reason)
	}
	t.mu.Lock()
	fmt.Fprintln(t.w, "trace: "+line)
	t.mu.Unlock()
}

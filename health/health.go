package health

import (
	"cmp"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/drlb/drlb/config"
)

// Target is one real server of one service to check. It names the
// server by what stays true across configuration changes (protocol, VIP,
// service port, address), never by index, so a check keeps marking the
// right server however a reload moves the others.
type Target struct {
	Protocol config.Protocol
	VIP      netip.Addr
	Port     uint16         // the service port (0: every port)
	Real     netip.Addr     // the real server
	Name     string         // for logs: "tcp 198.18.0.100:80 -> 198.18.0.11"
	Addr     netip.AddrPort // where the probe goes: the real server's own address
	Check    config.Check
}

// Marker applies a verdict to the real server t names: up, or down, which
// is removed, or with t.Check.Inhibit quiesced (weight 0) without
// forgetting its configured weight. The director's marker updates the
// forwarder, and ignores a verdict from a check the running configuration
// no longer has.
type Marker interface {
	Mark(t Target, up bool) error
}

// Targets lists the checks of cfg. A check without a port probes the
// service port; a port-0 (every port) service needs check.port.
func Targets(cfg *config.Config) ([]Target, error) {
	var out []Target
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			if r.Check == nil {
				continue
			}
			port := r.Check.Port
			if port == 0 {
				port = s.Port
			}
			if port == 0 {
				return nil, fmt.Errorf("health: %s real server %s: a service on every port needs check.port", s.String(), r.Address)
			}
			out = append(out, Target{
				Protocol: s.Protocol, VIP: s.VIP, Port: s.Port, Real: r.Address, Check: *r.Check,
				Name: fmt.Sprintf("%s -> %s", s.String(), r.Address),
				Addr: netip.AddrPortFrom(r.Address, port),
			})
		}
	}
	return out, nil
}

// Probe runs one check against t and returns nil if it passed. Each
// connection (each URL of an http check) has the check's timeout.
func Probe(ctx context.Context, t Target) error {
	switch t.Check.Type {
	case "tcp":
		ctx, cancel := context.WithTimeout(ctx, t.Check.Timeout)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", t.Addr.String())
		if err != nil {
			return err
		}
		return c.Close()
	case "http", "https":
		return probeWeb(ctx, t)
	case "udp":
		return probeUDP(ctx, t)
	case "dns":
		return probeDNS(ctx, t)
	}
	return fmt.Errorf("health: unknown check type %q", t.Check.Type)
}

// probeWeb gets each URL in turn, as keepalived's HTTP_GET and SSL_GET
// do: the status must be one the URL accepts and, with a digest, the MD5
// of the body must match. Redirects are not followed (a 301 is a 301).
func probeWeb(ctx context.Context, t Target) error {
	tr := &http.Transport{
		// Like keepalived's SSL_GET: the real server's certificate
		// is for the VIP's name, not its own address.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true, CipherSuites: checkCipherSuites},
		DisableKeepAlives: true,
		// keepalived asks for no encoding, so its digest is of the
		// plain body.
		DisableCompression: true,
		Proxy:              nil,
		// Go's default (10 MB, read whole before the status) let one
		// broken or hostile real server cost about 40 MB per probe;
		// a health page's headers are a few hundred bytes.
		MaxResponseHeaderBytes: maxCheckHeaderBytes,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	for i := range t.Check.URLs {
		if err := getURL(ctx, client, t, &t.Check.URLs[i]); err != nil {
			return err
		}
	}
	return nil
}

// maxCheckHeaderBytes bounds a checked page's response headers: more fails
// the probe.
const maxCheckHeaderBytes = 64 << 10

// checkCipherSuites are the TLS 1.2 suites an https check offers: Go's
// secure ones, and those with RSA key exchange or CBC-SHA256 that Go
// leaves out by default (since Go 1.22) and OpenSSL's defaults, which
// keepalived's SSL_GET uses, still offer. A real server that speaks only
// those, as older appliances do, failed every handshake and was taken for
// dead. The check verifies no certificate and sends nothing secret, so
// forward secrecy protects nothing here. RC4 and 3DES stay out, as in
// OpenSSL.
var checkCipherSuites = func() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	return append(ids,
		tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256)
}()

func getURL(ctx context.Context, client *http.Client, t Target, u *config.URL) error {
	ctx, cancel := context.WithTimeout(ctx, t.Check.Timeout)
	defer cancel()
	where := fmt.Sprintf("%s://%s%s", t.Check.Type, t.Addr, u.Path) // for messages
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.Check.Type+"://"+t.Addr.String()+"/", nil)
	if err != nil {
		return err
	}
	if req.URL, err = requestURL(t.Check.Type, t.Addr.String(), u.Path); err != nil {
		return fmt.Errorf("GET %s: %w", where, err)
	}
	// A URL's own Host comes first, as keepalived's url virtualhost.
	if host := cmp.Or(u.Host, t.Check.Host); host != "" {
		req.Host = host
	}
	req.Header.Set("User-Agent", "drlb-health")
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			ue.URL = where // an opaque URL prints without its host
		}
		return err
	}
	defer resp.Body.Close()
	if !u.Accepts(resp.StatusCode) {
		return fmt.Errorf("GET %s: status %d, want %s", where, resp.StatusCode, config.FormatStatus(u.Status))
	}
	// The body is read to its end, digest or not, as keepalived's
	// http_read_thread reads until the server closes: a server that sends
	// its headers and then stalls, or resets the connection, fails the
	// check within the timeout instead of passing on its status line.
	// A body cut short by the server's close (io.ErrUnexpectedEOF: fewer
	// bytes than its Content-Length) is judged on what came, as keepalived
	// judges at EOF and only logs the length mismatch.
	h := md5.New()
	if _, err := io.Copy(h, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("GET %s: reading the body: %w", where, err)
	}
	if u.Digest == "" {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != u.Digest {
		return fmt.Errorf("GET %s: body digest %s, want %s", where, got, u.Digest)
	}
	return nil
}

// requestURL is the URL that puts path in the request line as written,
// as keepalived sends it: not parsed as a URL, so "%" not followed by two
// hex digits, "#" and bytes a URL would escape go out as they are (the
// path, in url.URL's Opaque, is what RequestURI gives). Opaque cannot
// start with "//" (it would read as a host), so such a path is parsed as
// a URL, as before; config validation refuses those of them parsing would
// change ("#", a bad escape).
func requestURL(scheme, host, path string) (*url.URL, error) {
	if strings.HasPrefix(path, "//") {
		return url.Parse(scheme + "://" + host + path)
	}
	return &url.URL{Scheme: scheme, Host: host, Opaque: path}, nil
}

// dialUDP connects a UDP socket to t for one probe: its reads end at the
// check's timeout, or when parent is cancelled, or with any ICMP error for
// it (recvICMPErrors: host unreachable too). done releases it all.
func dialUDP(parent context.Context, t Target) (c net.Conn, done func(), err error) {
	ctx, cancel := context.WithTimeout(parent, t.Check.Timeout)
	d := net.Dialer{Control: recvICMPErrors}
	c, err = d.DialContext(ctx, "udp", t.Addr.String())
	if err != nil {
		cancel()
		return nil, nil, err
	}
	// The deadline ends the wait; cancelling parent ends it too.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	return c, func() { stop(); c.Close(); cancel() }, nil
}

// udpRandomPayload is how much a udp check without a payload sends, as
// keepalived does: arbitrary bytes, only the answer or its absence matters.
const udpRandomPayload = 32

// probeUDP sends the payload from a connected UDP socket and waits up to
// the timeout, as keepalived's UDP_CHECK: an ICMP error (port, host or
// network unreachable: IP_RECVERR, see recvICMPErrors) fails the check;
// an answer passes it, if it matches the expected reply; silence passes
// it unless a reply is required.
func probeUDP(parent context.Context, t Target) error {
	c, done, err := dialUDP(parent, t)
	if err != nil {
		return err
	}
	defer done()
	payload := t.Check.Payload
	if payload == nil {
		payload = make([]byte, udpRandomPayload)
		rand.Read(payload)
	}
	if _, err := c.Write(payload); err != nil {
		return err
	}
	buf := make([]byte, 65536)
	n, err := c.Read(buf)
	var ne net.Error
	switch {
	case err != nil && parent.Err() != nil:
		return parent.Err() // the caller gave up, not the server
	case err != nil && errors.As(err, &ne) && ne.Timeout():
		if t.Check.RequireReply {
			return fmt.Errorf("udp %s: no answer within %s", t.Addr, t.Check.Timeout)
		}
		return nil // silence, and no ICMP error: up, as keepalived sees it
	case err != nil:
		return err // ECONNREFUSED: port unreachable; EHOSTUNREACH...
	}
	return matchReply(t.Check, buf[:n])
}

// matchReply checks an answer against the expected reply, as keepalived:
// only when one is configured, length first, then the bytes both have.
func matchReply(c config.Check, got []byte) error {
	if c.Reply == nil {
		return nil
	}
	if len(got) < c.ReplyMin || len(got) > c.ReplyMax {
		return fmt.Errorf("udp: answer of %d bytes, want %d..%d", len(got), c.ReplyMin, c.ReplyMax)
	}
	for i := 0; i < len(got) && i < len(c.Reply); i++ {
		var ignore byte
		if i < len(c.ReplyMask) {
			ignore = c.ReplyMask[i]
		}
		if (got[i]^c.Reply[i])&^ignore != 0 {
			return fmt.Errorf("udp: answer %s does not match %s", hex.EncodeToString(got), config.FormatHex(c.Reply, c.ReplyMask))
		}
	}
	return nil
}

// Monitor runs a set of checks and follows changes to it: Update starts
// the checks that are new, stops those that are gone and leaves the others
// running, with their state (up or down, consecutive failures), as
// keepalived does on reload. A check that changed only its timers or
// inhibit (the same config.Check.Identity, for the same server) is the same
// checker: it goes on from its state under its new settings.
type Monitor struct {
	m     Marker
	log   *slog.Logger
	probe func(context.Context, Target) error // Probe; tests script it

	mu      sync.Mutex
	ctx     context.Context   // set by Run; nil before, Done after
	running map[string]*check // by Target.key
	wg      sync.WaitGroup
}

// check is a running (or, before Run, recorded) target.
type check struct {
	t      Target
	cancel context.CancelFunc
	// mu guards st, which its loop updates after each probe until its
	// context ends: once cancelled, st is final (Update hands it on).
	mu sync.Mutex
	st state
}

// state is where a check stands.
type state struct {
	up       bool
	failures int // consecutive, while up
}

// initial is where a check that has not run yet stands: up, but one
// failure from down until its first pass (keepalived sets retry_it to
// retry for every checker that has not run, unless alpha).
func initial(t Target) state {
	return state{up: true, failures: max(t.Check.Retries-1, 0)}
}

// key identifies a target by every field, the check's slices included
// (a Target holds slices, so it cannot be a map key itself).
func (t Target) key() string { return fmt.Sprintf("%+v", t) }

// probeKey identifies a target by its server and what its check probes
// (config.Check.Identity), not by how often, how many failures take the
// server down, or what a failure does to it.
func (t Target) probeKey() string {
	t.Check = t.Check.Identity()
	return t.key()
}

// server identifies the real server of the service a target checks.
func (t Target) server() string {
	return fmt.Sprintf("%v %v %d %v", t.Protocol, t.VIP, t.Port, t.Real)
}

// NewMonitor returns a Monitor that marks servers through m and logs
// changes of state to log (slog.Default() when nil).
func NewMonitor(m Marker, log *slog.Logger) *Monitor {
	if log == nil {
		log = slog.Default()
	}
	return &Monitor{m: m, log: log, probe: Probe, running: map[string]*check{}}
}

// Update makes targets the checks to run, as keepalived's reload does
// (ipwrapper.c migrate_checkers). A target that is the same in every field
// keeps running. One whose check changed only its timers (interval,
// retries, retry delay) or inhibit goes on from the state of the one it
// replaces: a server that is down stays down until a probe passes, and
// failures counted go on counting; the forwarder keeps the verdict too.
// Any other check (a new server's, the first ones at start, or one that
// probes differently: another config.Check.Identity) starts with the
// server up but one failure from down until its first pass, as
// keepalived's checkers that have not run yet do (check_data.c: "For non
// alpha mode, one failure is enough initially"): a server that is dead
// when drlb starts leaves at its first failed probe, not after retries of
// them. A replaced check counts as one stopped and one started. It
// returns how many checks it started and stopped; before Run it only
// records them.
func (mo *Monitor) Update(targets []Target) (started, stopped int) {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		want[t.key()] = t
	}
	gone := map[string]*check{} // by Target.server
	for k, c := range mo.running {
		if _, ok := want[k]; !ok {
			if c.cancel != nil {
				c.cancel()
			}
			delete(mo.running, k)
			gone[c.t.server()] = c
			stopped++
		}
	}
	for k, t := range want {
		if _, ok := mo.running[k]; ok {
			continue
		}
		c := &check{t: t, st: initial(t)}
		if prev := gone[t.server()]; prev != nil && prev.t.probeKey() == t.probeKey() {
			// Cancelled above: its loop stores no more.
			prev.mu.Lock()
			c.st = prev.st
			prev.mu.Unlock()
		}
		c.cancel = mo.start(c)
		mo.running[k] = c
		started++
	}
	return started, stopped
}

// start starts c's loop if Run is running (mo.mu held).
func (mo *Monitor) start(c *check) context.CancelFunc {
	if mo.ctx == nil || mo.ctx.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(mo.ctx)
	mo.wg.Add(1)
	go func() {
		defer mo.wg.Done()
		c.watch(ctx, mo.m, mo.log, mo.probe)
	}()
	return cancel
}

// Run runs the checks, and those Update adds, until ctx ends.
func (mo *Monitor) Run(ctx context.Context) {
	mo.mu.Lock()
	mo.ctx = ctx
	for _, c := range mo.running {
		c.cancel = mo.start(c)
	}
	mo.mu.Unlock()
	<-ctx.Done()
	mo.wg.Wait()
}

// Run checks every target until ctx ends, marking servers through m and
// logging every change of state.
func Run(ctx context.Context, targets []Target, m Marker, log *slog.Logger) {
	mo := NewMonitor(m, log)
	mo.Update(targets)
	mo.Run(ctx)
}

// watch runs t's loop as a new check (initial); probe is injectable for
// tests.
func watch(ctx context.Context, t Target, m Marker, log *slog.Logger, probe func(context.Context, Target) error) {
	c := &check{t: t, st: initial(t)}
	c.watch(ctx, m, log, probe)
}

// watch is c's loop, from c.st: initial (a new check: servers start up,
// as keepalived's do, one failure from down until the first pass) or the
// state of the check it replaces.
func (c *check) watch(ctx context.Context, m Marker, log *slog.Logger, probe func(context.Context, Target) error) {
	t := c.t
	c.mu.Lock()
	up, failures := c.st.up, c.st.failures
	c.mu.Unlock()
	// The first verdict is marked even when it changes nothing: a first
	// pass (up again) tells the director that the check answered; a first
	// failure of a server already down (a replaced check's state) marks it
	// down again, in case the check it replaces was marking it as the
	// reload swapped them (the forwarder ignores the old check's verdicts).
	first := true
	timer := time.NewTimer(t.Check.Interval)
	defer timer.Stop()
	for {
		err := probe(ctx, t)
		if ctx.Err() != nil {
			return
		}
		wasUp := up
		switch {
		case err == nil:
			up, failures = true, 0
		case up:
			failures++
			up = failures < t.Check.Retries
		}
		c.mu.Lock()
		if ctx.Err() != nil {
			c.mu.Unlock() // replaced: the state it hands on stays as it was
			return
		}
		c.st = state{up: up, failures: failures}
		c.mu.Unlock()
		switch {
		case err == nil && (!wasUp || first):
			if e := m.Mark(t, true); e != nil {
				log.Error("health: marking up", "server", t.Name, "err", e)
			}
			if !wasUp {
				log.Info("real server up again: check passed", "server", t.Name, "check", t.Check.Type, "addr", t.Addr)
			}
		case !up && (wasUp || first):
			if e := m.Mark(t, false); e != nil {
				log.Error("health: marking down", "server", t.Name, "err", e)
			}
			if wasUp {
				how := "removed: its connections end on their next packet"
				if t.Check.Inhibit {
					how = "weight 0: no new connections, open ones continue"
				}
				log.Warn("real server down: "+how, "server", t.Name, "check", t.Check.Type, "addr", t.Addr,
					"failures", failures, "err", err)
			}
		}
		if err == nil || !up {
			first = false // a verdict: passed, or down
		}
		// Like keepalived: while a failing server is still up, the next
		// try comes after the retry delay; otherwise after the interval.
		wait := t.Check.Interval
		if up && failures > 0 && t.Check.RetryDelay > 0 {
			wait = t.Check.RetryDelay
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

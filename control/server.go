package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultSocket is where `drlb run` listens and `drlb ctl` asks.
const DefaultSocket = "/run/drlb/drlb.sock"

// ErrInUse is returned by Listen when another live director answers on
// the socket.
var ErrInUse = errors.New("control: socket in use by another drlb")

// Handler serves the control socket:
//
//	GET  /v1/list      a JSON Snapshot (?conns=1 adds the connection table)
//	GET  /metrics      Prometheus
//	POST /v1/ipvsadm   {"args": [...]}: an ipvsadm command line, run against ed -> Result
//	POST /v1/reload    re-read the config file and apply it (reload), as SIGHUP -> Result
//
// With ed nil the ipvsadm commands can only list; with reload nil --reload
// is refused. Serve it on the root-only socket only: for a TCP port, use
// MetricsHandler.
func Handler(take func(conns bool) Snapshot, ed Editor, reload func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/list", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(take(r.URL.Query().Get("conns") == "1"))
	})
	mux.Handle("GET /metrics", metrics(take))
	x := &ipvsadmRunner{take: take, ed: ed, rateInterval: rateInterval}
	mux.HandleFunc("POST /v1/ipvsadm", func(w http.ResponseWriter, r *http.Request) {
		var req ipvsadmRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req); err != nil || len(req.Args) > maxArgs {
			http.Error(w, "want {\"args\": [...]} with at most 1000 arguments", http.StatusBadRequest)
			return
		}
		writeResult(w, x.run(r.Context(), req.Args))
	})
	var reloadMu sync.Mutex
	mux.HandleFunc("POST /v1/reload", func(w http.ResponseWriter, r *http.Request) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		writeResult(w, reloadResult(reload))
	})
	return mux
}

// MetricsHandler serves /metrics alone: what a TCP port may show (drlb run
// -metrics). The table, the connections and every change stay on the
// root-only socket.
func MetricsHandler(take func(conns bool) Snapshot) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics(take))
	return mux
}

// metrics serves the Prometheus page of take's snapshots. Each page is
// built whole before a client reads it, and Serve sets no WriteTimeout
// (a reload on the socket may take minutes), so clients that ask for
// /metrics and never read the answer each held a goroutine and a page
// for as long as the director ran: at most maxScrapes scrapes are served
// at once (more are answered 503), and each has requestTimeout to be
// written, after which its connection is cut and its place freed.
func metrics(take func(conns bool) Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{take: func() Snapshot { return take(false) }})
	// Not HandlerOpts.Timeout: it wraps the handler in http.TimeoutHandler,
	// which buffers the whole page and writes it out after the in-flight
	// place is given back, unbounded, and hides the connection from
	// SetWriteDeadline. ErrorHandling's default, HTTPErrorOnError, stops
	// encoding at the first failed write, so a scrape cut by its deadline
	// ends at once; ErrorLog stays nil: a scraper gone or too slow is its
	// own problem, not the director's to log.
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: maxScrapes,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Where the writer cannot take a deadline (ErrNotSupported: a
		// test's recorder, say) there is no connection to hold either.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(requestTimeout))
		h.ServeHTTP(w, r)
	})
}

// maxScrapes bounds the /metrics requests a handler serves at once: a
// scraper or two, with room for a person's curl.
const maxScrapes = 8

// rateInterval is the time between the two samples of -L --rate.
var rateInterval = time.Second

// Bounds on a request to /v1/ipvsadm.
const (
	maxRequest = 64 << 10
	maxArgs    = 1000
)

type ipvsadmRequest struct {
	Args []string `json:"args"`
}

func writeResult(w http.ResponseWriter, res Result) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// Listen opens the Unix socket at path, readable and writable by its
// owner only (root: the counters and, later, control are not for
// everyone). A stale socket left by a killed drlb is replaced; one that
// a live drlb answers on is not (ErrInUse).
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%w: %s (give this one another path with -ctl)", ErrInUse, path)
	}
	// Only a socket is replaced: -ctl naming a file by mistake (the
	// config, say) must not delete it.
	if st, err := os.Lstat(path); err == nil {
		if st.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("control: %s exists and is not a socket: give the control socket another path with -ctl", path)
		}
		_ = os.Remove(path)
	}
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	// The umask made it 0600 from the start; say so explicitly too, for
	// systems whose bind ignores the umask.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

// Serve answers h on ln until ctx ends, lets the requests in flight end
// (at most shutdownGrace), then removes the socket and returns. On a
// Unix socket it answers only root and its own user, asking the kernel who
// connected (SO_PEERCRED), so a socket whose mode was loosened still shows
// and changes nothing to anyone else.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	// ReadHeaderTimeout alone bounds only the headers: a client that
	// stalled in a request's body (or kept a connection idle after an
	// answer) was held for as long as the director ran, a goroutine and
	// a descriptor each, and the data path and the health checks share
	// the descriptor limit. ReadTimeout bounds the whole request (as long
	// as drlb ctl's Client waits for an answer), IdleTimeout an idle
	// kept-alive connection. No WriteTimeout: a reload may take minutes
	// to answer; /metrics sets a deadline of its own (metrics), which
	// net/http clears once that answer is written.
	srv := &http.Server{Handler: onlyRoot(h), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: requestTimeout,
		IdleTimeout: requestTimeout, ConnContext: withPeer}
	failed, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-failed:
			return
		}
		// Requests in flight end first (a ctl change being applied),
		// so that what the caller tears down after Serve returns is
		// not changed under it; bounded, then closed.
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
	}()
	err := srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		close(failed)
		_ = srv.Close()
		<-stopped
		return err
	}
	<-stopped
	return nil
}

// requestTimeout bounds how long a client may take to send a whole
// request, and how long an idle kept-alive connection stays open: the
// Client's own timeout, after which drlb ctl gave up anyway. It also
// bounds how long a /metrics answer may take to be written (metrics).
var requestTimeout = 10 * time.Second

// shutdownGrace bounds how long Serve waits, once its context ends, for
// requests in flight.
const shutdownGrace = 5 * time.Second

// Client returns an HTTP client whose connections go to the Unix socket.
func Client(path string) *http.Client { return client(path, clientTimeout) }

// clientTimeout bounds a request of Client's: a listing or a change.
var clientTimeout = 10 * time.Second

// reloadTimeout bounds drlb ctl --reload's wait for the verdict. Not
// clientTimeout: the unit's ExecReload is drlb ctl --reload, and a reload
// that took longer (a large file, maglev tables of 1M slots rebuilt, or
// one queued behind a SIGHUP's under the Apply lock) failed `systemctl
// reload` with "did not answer" while the director went on and applied
// it, then told systemd READY=1 "configuration reloaded". Longer than
// systemd's default TimeoutStartSec (90 s), which bounds ExecReload
// itself; the server's ReadTimeout does not cut it (the reload does not
// follow the request's context, and no WriteTimeout is set).
var reloadTimeout = 5 * time.Minute

func client(path string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		// A Transport per Client, so no keep-alive: a connection kept
		// idle for a next request that never uses it stayed open on both
		// sides (a caller polling piled them up in the director).
		Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
}

// peerKey holds the connecting user's uid in a request's context, where
// the kernel told it.
type peerKey struct{}

func withPeer(ctx context.Context, c net.Conn) context.Context {
	if uid, ok := peerUID(c); ok {
		return context.WithValue(ctx, peerKey{}, uid)
	}
	return ctx
}

// onlyRoot refuses a request from a user who is neither root nor the one
// drlb runs as.
func onlyRoot(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if uid, ok := r.Context().Value(peerKey{}).(int); ok && uid != 0 && uid != os.Geteuid() {
			http.Error(w, fmt.Sprintf("permission denied: the control socket is root's only (uid %d may not use it)", uid), http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// dialError explains why no director answered on path.
func dialError(path string, err error, change bool) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("control: permission denied on %s: the control socket is root's only (mode 0600): run drlb ctl as root", path)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("control: no director answers on %s (is drlb run running? as root?): %w", path, err)
	}
	// Connected, then no answer (a timeout, the director stopping): a
	// change sent may have been applied all the same.
	if change {
		return fmt.Errorf("control: the director on %s did not answer: %w (a change may have been applied anyway: look with drlb ctl -L -n)", path, err)
	}
	return fmt.Errorf("control: the director on %s did not answer: %w", path, err)
}

// statusError is the error for an answer other than 200 OK.
func statusError(path string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("control: %s: %s", path, msg)
	}
	if msg != "" {
		return fmt.Errorf("control: %s: %s: %s", path, resp.Status, msg)
	}
	return fmt.Errorf("control: %s: %s", path, resp.Status)
}

// Ipvsadm runs one ipvsadm command line on the director listening on
// path, as `drlb ctl -L -n` does, and returns its Result.
func Ipvsadm(ctx context.Context, path string, args []string) (Result, error) {
	return post(ctx, Client(path), path, "/v1/ipvsadm", ipvsadmRequest{Args: args}, !readOnly(args))
}

// readOnly says whether an ipvsadm command line only reads (a listing,
// the rules saved, help, the version): if the director does not answer
// it, no change can have been applied.
func readOnly(args []string) bool {
	for _, a := range args {
		switch {
		case a == "--list" || a == "--save" || a == "--help" || a == "--version":
			return true
		case len(a) >= 2 && a[0] == '-' && a[1] != '-' && strings.ContainsRune("LlShv", rune(a[1])): // -L, -Ln, -lnc
			return true
		}
	}
	return false
}

// Reload makes the director listening on path re-read its config file and
// apply it, as SIGHUP does (drlb ctl --reload).
func Reload(ctx context.Context, path string) (Result, error) {
	return post(ctx, client(path, reloadTimeout), path, "/v1/reload", struct{}{}, true)
}

// post sends body to endpoint; change says whether it may change the
// director (its error then says a change may have been applied).
func post(ctx context.Context, c *http.Client, path, endpoint string, body any, change bool) (Result, error) {
	var res Result
	data, err := json.Marshal(body)
	if err != nil {
		return res, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://drlb"+endpoint, bytes.NewReader(data))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return res, dialError(path, err, change)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return res, statusError(path, resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return res, fmt.Errorf("control: %s: %w", path, err)
	}
	return res, nil
}

// Get fetches a Snapshot from the director listening on path; conns asks
// for the connection table too.
func Get(ctx context.Context, path string, conns bool) (Snapshot, error) {
	var s Snapshot
	url := "http://drlb/v1/list"
	if conns {
		url += "?conns=1"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := Client(path).Do(req)
	if err != nil {
		return s, dialError(path, err, false)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, statusError(path, resp)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

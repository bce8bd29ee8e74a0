package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultSocket is where `drlb run` listens and `drlb ctl` asks.
const DefaultSocket = "/run/drlb/drlb.sock"

// ErrInUse is returned by Listen when another live director answers on
// the socket.
var ErrInUse = errors.New("control: socket in use by another drlb")

// Handler serves /v1/list (a JSON Snapshot; ?conns=1 adds the
// connection table) and /metrics (Prometheus).
func Handler(take func(conns bool) Snapshot) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{take: func() Snapshot { return take(false) }})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/list", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(take(r.URL.Query().Get("conns") == "1"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
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
	_ = os.Remove(path)
	old := umask(0o177)
	ln, err := net.Listen("unix", path)
	umask(old)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	return ln, nil
}

// Serve answers h on ln until ctx ends, then removes the socket.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Client returns an HTTP client whose connections go to the Unix socket.
func Client(path string) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}
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
		return s, fmt.Errorf("control: no director answers on %s (is drlb run running? as root?): %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("control: %s: %s", path, resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

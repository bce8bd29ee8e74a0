package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Service ports on every real server.
const (
	// HTTPPort is where NewHandler is served, on the VIPs and the real server's own addresses.
	HTTPPort = 80
	// EchoPort is the UDP echo (the classic echo port).
	EchoPort = 7
	// MaxDownload caps GET /bytes?n=N.
	MaxDownload = 1 << 30
	// maxDatagram is the largest UDP payload.
	maxDatagram = 65535
)

// ServerHeader names the real server in every HTTP response, so a client can
// tell who answered a download or an upload.
const ServerHeader = "X-Real-Server"

// NewHandler returns the real server's HTTP handler:
//
//	GET  /          "<name>\n"
//	GET  /healthz   "ok\n" (for health checks)
//	GET  /bytes?n=N N bytes (zeros), with Content-Length; N in 0..MaxDownload
//	POST or PUT, any path: the hex SHA-256 of the request body and "\n"
//
// Every response carries the header X-Real-Server: <name>.
func NewHandler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(ServerHeader, name)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case r.Method == http.MethodPost || r.Method == http.MethodPut:
			serveUpload(w, r)
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			http.Error(w, fmt.Sprintf("method %s not allowed: use GET, POST or PUT", r.Method), http.StatusMethodNotAllowed)
		case r.URL.Path == "/":
			io.WriteString(w, name+"\n")
		case r.URL.Path == "/healthz":
			io.WriteString(w, "ok\n")
		case r.URL.Path == "/bytes":
			serveBytes(w, r)
		default:
			http.Error(w, fmt.Sprintf("no such path %q: try /, /healthz or /bytes?n=N", r.URL.Path), http.StatusNotFound)
		}
	})
}

func serveUpload(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, fmt.Sprintf("reading body after %d bytes: %v", n, err), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Bytes-Received", strconv.FormatInt(n, 10))
	io.WriteString(w, hex.EncodeToString(h.Sum(nil))+"\n")
}

func serveBytes(w http.ResponseWriter, r *http.Request) {
	n, err := ParseByteCount(r.URL.Query().Get("n"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		return
	}
	var zeros [32 << 10]byte
	for n > 0 {
		chunk := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:chunk]); err != nil {
			return // client went away
		}
		n -= chunk
	}
}

// ErrByteCount: the n of /bytes?n=N is not a number in 0..MaxDownload.
var ErrByteCount = errors.New("bad byte count")

// ParseByteCount parses the n of /bytes?n=N: a decimal in 0..MaxDownload.
func ParseByteCount(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: missing n (want /bytes?n=N, N in 0..%d)", ErrByteCount, MaxDownload)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > MaxDownload {
		return 0, fmt.Errorf("%w: n=%q, want a decimal in 0..%d", ErrByteCount, s, MaxDownload)
	}
	return n, nil
}

// ServeEcho answers every datagram on pc with "<name>: " followed by the
// datagram, sent from pc's own address (bind pc to the VIP so replies leave
// with source VIP). It returns nil when pc is closed.
func ServeEcho(pc net.PacketConn, name string) error {
	prefix := name + ": "
	buf := make([]byte, len(prefix)+maxDatagram)
	copy(buf, prefix)
	for {
		n, addr, err := pc.ReadFrom(buf[len(prefix):])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			// A transient error (e.g. ICMP-reported) must not stop the
			// service; pace the loop so a persistent one cannot spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if _, err := pc.WriteTo(buf[:len(prefix)+n], addr); err != nil && errors.Is(err, net.ErrClosed) {
			return nil
		}
	}
}

// EchoReply is what ServeEcho answers to payload on the server named name.
func EchoReply(name string, payload []byte) []byte {
	return append([]byte(name+": "), payload...)
}

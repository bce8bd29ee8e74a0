package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestMetricsBoundsSlowScrapers: /metrics builds each page whole, and
// Serve sets no WriteTimeout, so clients that ask for it and never read
// the answer each held a goroutine and a page for as long as the director
// ran. At most maxScrapes are served at once (the next is answered 503),
// and each is cut off once requestTimeout passed without its page
// written, after which a scrape is served again. Both handlers that
// serve /metrics are bounded: the TCP port's and the socket's.
func TestMetricsBoundsSlowScrapers(t *testing.T) {
	saved := requestTimeout
	requestTimeout = time.Second // long enough to see the 503, short enough for a test
	t.Cleanup(func() { requestTimeout = saved })

	for _, tc := range []struct {
		name    string
		handler func(take func(bool) Snapshot) http.Handler
	}{
		{"MetricsHandler", MetricsHandler},
		{"Handler", func(take func(bool) Snapshot) http.Handler { return Handler(take, nil, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page := bigSnapshot(800) // over half a MB: far more than the sockets hold
			var taken atomic.Int64
			took, gate := make(chan struct{}, 100), make(chan struct{})
			release := sync.OnceFunc(func() { close(gate) })
			take := func(bool) Snapshot {
				taken.Add(1)
				took <- struct{}{}
				<-gate // held in flight until the 503 was seen, however slow the machine
				return page
			}
			addr := serveMetricsTCP(t, tc.handler(take))
			t.Cleanup(release) // before the server waits for its requests

			// maxScrapes clients ask and never read.
			var stuck []net.Conn
			// Their receive buffers are small and fixed (no autotuning),
			// so that what the sockets hold stays far below the page
			// whatever the host's tcp_rmem: a helper once saw a stuck
			// scrape receive the whole page on a loaded machine.
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10) }); err != nil {
					return err
				}
				return serr
			}}
			for range maxScrapes {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				stuck = append(stuck, c)
			}
			for range maxScrapes {
				select {
				case <-took:
				case <-time.After(3 * time.Second):
					t.Fatalf("only %d of %d scrapes began", taken.Load(), maxScrapes)
				}
			}
			// Each set its write deadline before it took its snapshot.
			deadlinesPassed := time.Now().Add(requestTimeout)

			// One more is refused, and no page is built for it.
			if status, _, err := scrape(addr); err != nil || status != http.StatusServiceUnavailable {
				t.Errorf("scrape beyond %d in flight: %d %v, want 503 at once", maxScrapes, status, err)
			}
			if n := taken.Load(); n != maxScrapes {
				t.Errorf("%d snapshots taken, want %d", n, maxScrapes)
			}

			// The stuck ones write their pages into sockets nobody
			// reads; once their deadline passed they are cut off, having
			// sent only what the sockets held. (Reading one before its
			// deadline would let the server write on.)
			release()
			time.Sleep(time.Until(deadlinesPassed))
			got := make([]int64, len(stuck))
			for i, c := range stuck {
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, err := io.Copy(io.Discard, c)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("stuck scrape %d: still held 3 s after its deadline (%d bytes read)", i, n)
				}
				got[i] = n
			}
			// Their places are free again: a scrape is served, whole.
			status, body, err := scrape(addr)
			if err != nil || status != http.StatusOK || !strings.Contains(body, `drlb_realserver_up{port="80",protocol="tcp",realserver="10.0.3.31",vip="198.18.0.100"} 1`) {
				t.Fatalf("scrape after the stuck ones were cut off: %d %v, %d bytes", status, err, len(body))
			}
			for i, n := range got {
				if n >= int64(len(body)) {
					t.Errorf("stuck scrape %d: got %d bytes, the whole page (%d): the server never blocked writing", i, n, len(body))
				}
			}
		})
	}
}

// TestMetricsDeadlineNotInherited: the write deadline of a /metrics answer
// does not outlive it (net/http clears it once the answer is written): a
// next request on the same kept-alive connection, a reload that answers
// after longer than requestTimeout, is still answered.
func TestMetricsDeadlineNotInherited(t *testing.T) {
	saved := requestTimeout
	requestTimeout = 100 * time.Millisecond
	t.Cleanup(func() { requestTimeout = saved })
	reload := func() error {
		time.Sleep(3 * requestTimeout) // beyond the /metrics answer's deadline
		return nil
	}
	addr := serveMetricsTCP(t, Handler(func(bool) Snapshot { return fixtureSnapshot() }, nil, reload))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	for _, req := range []string{
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /v1/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	} {
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%q: %d %v %q", req, resp.StatusCode, err, body)
		}
	}
}

// serveMetricsTCP serves h on a loopback TCP port, as drlb run -metrics
// does, and returns its address. The server's send buffers are kept
// small, so that a page a client does not read blocks the server's
// writes soon.
func serveMetricsTCP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, smallSendBuffers{ln}, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// scrape fetches /metrics from addr on a connection of its own.
func scrape(addr string) (int, string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// bigSnapshot has one service with n real servers, all up.
func bigSnapshot(n int) Snapshot {
	svc := Service{Protocol: "tcp", VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Scheduler: "wrr"}
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)})
		svc.RealServers = append(svc.RealServers, Real{Address: a, MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256),
			Weight: 1, State: "up", Active: i, Inactive: i, Connections: uint64(i), InPackets: uint64(i), InBytes: uint64(i)})
	}
	return Snapshot{Frames: map[string]uint64{}, Services: []Service{svc}}
}

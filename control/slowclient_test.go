package control

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeBoundsSlowClients: a client that sends a request's headers and
// then stalls in its body, or keeps a connection open and idle after an
// answer, is cut off (requestTimeout), not held for as long as the
// director runs: each would pin a goroutine and a descriptor of the
// director, which shares its descriptor limit with the data path and the
// health checks. Another client is answered meanwhile.
func TestServeBoundsSlowClients(t *testing.T) {
	saved := requestTimeout
	requestTimeout = 200 * time.Millisecond
	defer func() { requestTimeout = saved }()
	path := serveFake(t, &fakeEditor{cfg: fixtureConfig(t)}, nil)

	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedSoon reads c to its end: the server must close it well
	// before the client's own deadline.
	closedSoon := func(what string, c net.Conn, r io.Reader) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.Copy(io.Discard, r)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%s: the director still holds the connection after 3 s", what)
		}
	}

	stalled := dial()
	io.WriteString(stalled, "POST /v1/ipvsadm HTTP/1.1\r\nHost: drlb\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"args\": [")

	idle := dial()
	io.WriteString(idle, "GET /v1/list HTTP/1.1\r\nHost: drlb\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	// Meanwhile another client is answered.
	res, err := Ipvsadm(context.Background(), path, []string{"-L", "-n"})
	if err != nil || !strings.HasPrefix(res.Output, "IP Virtual Server version") {
		t.Fatalf("another client beside the stalled ones: %v %+v", err, res)
	}

	closedSoon("a request body that never comes", stalled, stalled)
	closedSoon("an idle kept-alive connection", idle, br)
}

// TestClientLeavesNoConnections: each Get, Ipvsadm or Reload is done with
// its connection when it returns. Client made a Transport per call, whose
// kept-alive connection was never used again nor closed: a caller polling
// the director (the lab's waitHA asks every 5 ms) piled up descriptors on
// both sides, the director's held until it stopped.
func TestClientLeavesNoConnections(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	path := serveFake(t, &fakeEditor{cfg: fixtureConfig(t)}, nil)
	if _, err := Get(context.Background(), path, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	start := fds()
	for range 50 {
		if _, err := Get(context.Background(), path, false); err != nil {
			t.Fatal(err)
		}
		if _, err := Ipvsadm(context.Background(), path, []string{"-L", "-n"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the server sees the closes
	if n := fds() - start; n > 10 {
		t.Errorf("100 requests left %d more descriptors open (both ends of kept-alive connections)", n)
	}
}

// TestNoAnswerSaysChangeOnlyForChanges: a director that does not answer
// a listing cannot have applied anything, and the error no longer says a
// change may have been; for a change it still does.
func TestNoAnswerSaysChangeOnlyForChanges(t *testing.T) {
	old := clientTimeout
	clientTimeout = 100 * time.Millisecond
	t.Cleanup(func() { clientTimeout = old })
	sock := filepath.Join(t.TempDir(), "drlb.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accepts, reads, never answers
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	for _, tc := range []struct {
		args   []string
		change bool
	}{
		{[]string{"-L", "-n"}, false},
		{[]string{"-Ln"}, false},
		{[]string{"-n", "--list"}, false},
		{[]string{"-S"}, false},
		{[]string{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-w", "-1"}, true},
		{[]string{"-D", "-t", "198.18.0.100:80"}, true},
	} {
		_, err := Ipvsadm(context.Background(), sock, tc.args)
		if err == nil {
			t.Fatalf("%v: no error from a director that does not answer", tc.args)
		}
		if got := strings.Contains(err.Error(), "a change may have been applied"); got != tc.change {
			t.Errorf("%v: %v; says a change may have been applied: %t, want %t", tc.args, err, got, tc.change)
		}
	}
}

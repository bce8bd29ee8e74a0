package testbed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/internal/testutil"
)

func TestHandler(t *testing.T) {
	body := strings.Repeat("x", 100000)
	sum := sha256.Sum256([]byte(body))
	tests := []struct {
		method, target, body string
		wantCode             int
		wantBody             string // prefix
		wantLen              int    // -1: not checked
	}{
		{"GET", "/", "", 200, "rs7\n", -1},
		{"GET", "/healthz", "", 200, "ok\n", -1},
		{"GET", "/bytes?n=0", "", 200, "", 0},
		{"GET", "/bytes?n=70000", "", 200, "\x00\x00", 70000},
		{"HEAD", "/bytes?n=5", "", 200, "", 0},
		{"GET", "/bytes", "", 400, "bad byte count: missing n", -1},
		{"GET", "/bytes?n=-1", "", 400, `bad byte count: n="-1"`, -1},
		{"GET", "/bytes?n=1e3", "", 400, `bad byte count: n="1e3"`, -1},
		{"POST", "/upload", body, 200, hex.EncodeToString(sum[:]) + "\n", -1},
		{"PUT", "/anything", "", 200, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n", -1},
		{"DELETE", "/", "", 405, "method DELETE not allowed", -1},
		{"GET", "/nope", "", 404, `no such path "/nope"`, -1},
	}
	h := NewHandler("rs7")
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body)))
			got := rec.Body.String()
			if rec.Code != tt.wantCode || !strings.HasPrefix(got, tt.wantBody) {
				t.Errorf("got %d %.80q, want %d %q...", rec.Code, got, tt.wantCode, tt.wantBody)
			}
			if tt.wantLen >= 0 && len(got) != tt.wantLen {
				t.Errorf("body is %d bytes, want %d", len(got), tt.wantLen)
			}
			if rec.Header().Get(ServerHeader) != "rs7" {
				t.Errorf("%s = %q, want rs7", ServerHeader, rec.Header().Get(ServerHeader))
			}
		})
	}
}

func TestParseByteCount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"1073741824", MaxDownload, true},
		{"", 0, false}, {"-1", 0, false}, {"1073741825", 0, false}, {"abc", 0, false},
		{"99999999999999999999", 0, false}, {" 1", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteCount(tt.in)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseByteCount(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrByteCount) {
			t.Errorf("ParseByteCount(%q) error %v does not wrap ErrByteCount", tt.in, err)
		}
	}
}

func FuzzParseByteCount(f *testing.F) {
	for _, s := range []string{"0", "100", "-5", "", "1073741824", "1e9", "0x10", "+3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteCount(s)
		if err == nil && (n < 0 || n > MaxDownload) {
			t.Fatalf("ParseByteCount(%q) = %d outside 0..%d", s, n, MaxDownload)
		}
	})
}

func TestServeEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	done := make(chan error, 1)
	go func() { done <- ServeEcho(pc, "rs3") }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"hello", "", strings.Repeat("z", 60000)} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 70000)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := string(EchoReply("rs3", []byte(msg))); string(buf[:n]) != want {
			t.Errorf("echo of %d bytes = %.40q (%d bytes), want %.40q", len(msg), buf[:n], n, want)
		}
	}
	pc.Close()
	if err := <-done; err != nil {
		t.Errorf("ServeEcho after Close = %v, want nil", err)
	}
}

var _ http.Handler = NewHandler("x")

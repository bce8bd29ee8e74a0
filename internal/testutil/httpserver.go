package testutil

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// HTTPServer is httptest.NewServer on LoopbackAddr (httptest's own listens
// on 127.0.0.1), closed when t ends, for a package whose tests run in a
// network namespace of their own (MainInOwnNetNS). It calls NeedOwnNetNS.
// With tls it is httptest.NewTLSServer's.
func HTTPServer(t testing.TB, h http.Handler, tls bool) *httptest.Server {
	t.Helper()
	NeedOwnNetNS(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(LoopbackAddr.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// LoopbackAny is LoopbackAddr with port 0, to listen on (net.Listen,
// net.ListenPacket) in a package whose tests run in a network namespace of
// their own. It calls NeedOwnNetNS.
func LoopbackAny(t testing.TB) string {
	t.Helper()
	NeedOwnNetNS(t)
	return net.JoinHostPort(LoopbackAddr.String(), "0")
}

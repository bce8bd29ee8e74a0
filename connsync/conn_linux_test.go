package connsync

import (
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
)

// TestReadBufferReported: the receive buffer a sync socket got is read
// back as asked (Linux reports it doubled), so that a director can say
// when net.core.rmem_max capped it, which makes a bulk copy's bursts
// likelier to overflow it.
func TestReadBufferReported(t *testing.T) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(testutil.LoopbackAny(t))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const small = 64 << 10 // under any rmem_max
	got, err := setReadBuffer(c, small)
	if err != nil || got != small {
		t.Fatalf("asked for %d: got %d, %v", small, got, err)
	}
	got, err = setReadBuffer(c, 1<<30) // over any rmem_max: capped
	if err != nil || got <= 0 || got >= 1<<30 {
		t.Fatalf("asked for 1 GiB: got %d, %v; want the cap", got, err)
	}
}

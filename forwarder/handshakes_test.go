package forwarder

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestTakeHandshakes: a client is reported once it completes a handshake
// (SYN, then a packet of the ESTABLISHED state), once however many
// connections it makes; a SYN alone, an ACK with no SYN before it (mid-flow
// after a restart) and a spoofed SYN flood report nobody; under pressure
// a stateless SYN's adopted ACK and the next packet do.
func TestTakeHandshakes(t *testing.T) {
	cfg := testConfig("rr", 2)
	cfg.MaxConns = 64
	f := newForwarder(t, cfg, Options{})
	buf := make([]netip.Addr, 0, HandshakeBatch)
	take := func() []netip.Addr { return slices.Clone(f.TakeHandshakes(buf[:0])) }

	process(t, f, syn(client(1, 1000)), t0)
	if got := take(); len(got) != 0 {
		t.Fatalf("after a SYN alone: %v", got)
	}
	process(t, f, ack(client(1, 1000)), t0)
	if got := take(); !slices.Equal(got, []netip.Addr{client(1, 0).Addr()}) {
		t.Fatalf("after the handshake: %v, want client 1", got)
	}
	for p := range uint16(5) {
		process(t, f, syn(client(1, 2000+p)), t0)
		process(t, f, ack(client(1, 2000+p)), t0)
	}
	process(t, f, ack(client(2, 1000)), t0) // mid-flow: no SYN seen
	if got := take(); len(got) != 0 {
		t.Fatalf("more connections of client 1 and a mid-flow ACK: %v", got)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		process(t, f, syn(spoofed(rng)), t0)
	}
	if got := take(); len(got) != 0 {
		t.Fatalf("a spoofed SYN flood: %v", got)
	}
	if !f.pressure.Load() {
		t.Fatal("the flood did not put the table under pressure")
	}
	// Under pressure: stateless SYN, adopted ACK (SYN_RECV), then data.
	c := client(3, 1000)
	expectReason(t, f, syn(c), ReasonSynStateless)
	expectReason(t, f, ack(c), ReasonPressureAdopted)
	if got := take(); len(got) != 0 {
		t.Fatalf("after the adopted ACK alone: %v", got)
	}
	process(t, f, ack(c), t0)
	if got := take(); !slices.Equal(got, []netip.Addr{c.Addr()}) {
		t.Fatalf("after the adopted handshake: %v, want client 3", got)
	}
	if o := f.Overload(); o.Handshakes != 2 {
		t.Errorf("Overload.Handshakes %d, want 2", o.Handshakes)
	}
	// A client the caller could not trust is reported again.
	f.ForgetHandshakes([]netip.Addr{c.Addr()})
	if o := f.Overload(); o.Handshakes != 1 {
		t.Errorf("after ForgetHandshakes, Overload.Handshakes %d, want 1", o.Handshakes)
	}
	process(t, f, syn(client(3, 1001)), t0)
	process(t, f, ack(client(3, 1001)), t0)
	process(t, f, ack(client(3, 1001)), t0)
	if got := take(); !slices.Equal(got, []netip.Addr{c.Addr()}) {
		t.Fatalf("after ForgetHandshakes and a new handshake: %v, want client 3 again", got)
	}
	if n := testing.AllocsPerRun(100, func() { f.TakeHandshakes(buf[:0]) }); n != 0 {
		t.Errorf("TakeHandshakes allocates %.1f times", n)
	}
}

// TestHandshakesBounded: more clients than a batch between two takes are
// left for their next handshake, never more than HandshakeBatch at once.
func TestHandshakesBounded(t *testing.T) {
	var h handshakes
	for i := range 3 * HandshakeBatch {
		h.note(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	if h.n != HandshakeBatch {
		t.Fatalf("%d pending, want %d", h.n, HandshakeBatch)
	}
}

func expectReason(t *testing.T, f *Forwarder, frame []byte, want Reason) {
	t.Helper()
	res, _ := process(t, f, frame, t0)
	if res.Reason != want {
		t.Fatalf("reason %v, want %v", res.Reason, want)
	}
}

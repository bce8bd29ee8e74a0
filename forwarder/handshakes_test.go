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
	// Overload counts the clients the caller trusted, not those reported.
	if o := f.Overload(); o.Handshakes != 0 {
		t.Errorf("Overload.Handshakes %d before any was trusted, want 0", o.Handshakes)
	}
	f.HandshakesTrusted(1)
	// A client the caller could not trust is reported again, and the
	// count stays.
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

// TestHandshakesCollide: clients whose seen slots collide, completing
// handshakes in turn between two takes, are each reported once: they
// take the slot from each other (a, b, a), and a was reported twice, so
// a trusted lane's count (and drlb_trusted_clients_total) grew by 3 for
// 2 clients. A client whose slot was taken after it was reported is
// reported again at its next handshake, as before.
func TestHandshakesCollide(t *testing.T) {
	a := netip.AddrFrom4([4]byte{10, 0, 0, 1})
	b, c := collide(a, 1), collide(a, 2)
	d := netip.AddrFrom4([4]byte{10, 0, 0, 2}) // another slot
	for _, tc := range []struct {
		name  string
		notes []netip.Addr
		want  []netip.Addr
	}{
		{"a b a", []netip.Addr{a, b, a}, []netip.Addr{a, b}},
		{"a b a b", []netip.Addr{a, b, a, b}, []netip.Addr{a, b}},
		{"a b c a b c", []netip.Addr{a, b, c, a, b, c}, []netip.Addr{a, b, c}},
		{"a d b a d", []netip.Addr{a, d, b, a, d}, []netip.Addr{a, d, b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, testConfig("rr", 2), Options{})
			for _, x := range tc.notes {
				f.hs.note(x)
			}
			if got := f.TakeHandshakes(nil); !slices.Equal(got, tc.want) {
				t.Fatalf("reported %v, want %v", got, tc.want)
			}
			// The slot is b's or c's now: a is reported again, once.
			f.hs.note(a)
			f.hs.note(a)
			if got := f.TakeHandshakes(nil); !slices.Equal(got, []netip.Addr{a}) {
				t.Fatalf("after the take, a's handshakes reported %v, want a once", got)
			}
		})
	}
}

// collide returns the nth address after a (10.0.0.0/16) whose handshake
// seen slot is a's.
func collide(a netip.Addr, n int) netip.Addr {
	for i := 2; ; i++ {
		x := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if addrHash(x)%handshakeSeen == addrHash(a)%handshakeSeen {
			if n--; n == 0 {
				return x
			}
		}
	}
}

func expectReason(t *testing.T, f *Forwarder, frame []byte, want Reason) {
	t.Helper()
	res, _ := process(t, f, frame, t0)
	if res.Reason != want {
		t.Fatalf("reason %v, want %v", res.Reason, want)
	}
}

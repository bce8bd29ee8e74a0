package forwarder

import (
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
)

// TestTCPNextFollowsIPVS holds tcpNext to the input-only table IPVS uses
// for DR connections (ip_vs_proto_tcp.c tcp_states, TCP_DIR_INPUT_ONLY),
// where drlb has the state: its TIME_WAIT is drlb's FIN_WAIT (same
// transitions and default timeout; tcp_fin sets both here). A SYN on a closing entry is port reuse, which connection()
// handles before tcpNext; tcpNext itself gives SYN_RECV there, as IPVS.
func TestTCPNextFollowsIPVS(t *testing.T) {
	const (
		s = tcpSYN
		f = tcpFIN | tcpACK
		a = tcpACK
		r = tcpRST
	)
	tests := []struct {
		state, flags, want uint8
	}{
		{stateSynRecv, s, stateSynRecv},
		{stateSynRecv, a, stateEstablished},
		{stateSynRecv, f, stateFinWait}, // IPVS: TIME_WAIT
		// A reset in SYN_RECV leaves it there (IPVS: sSR): a stale or
		// blind reset must not turn the handshake into a CLOSE entry
		// that the connection's ACKs never leave.
		{stateSynRecv, r, stateSynRecv},
		{stateSynRecv, r | tcpACK, stateSynRecv},
		{stateEstablished, s, stateEstablished},
		{stateEstablished, a, stateEstablished},
		{stateEstablished, f, stateFinWait},
		{stateEstablished, r, stateClose},
		{stateFinWait, s, stateSynRecv},
		{stateFinWait, a, stateFinWait},
		{stateFinWait, f, stateFinWait},
		{stateFinWait, r, stateClose},
		{stateClose, s, stateSynRecv},
		{stateClose, a, stateClose},
		{stateClose, f, stateClose}, // IPVS: sCL, not back to FIN_WAIT's 120 s
		{stateClose, r, stateClose},
		// SYN+FIN goes by its SYN (tcp_state_idx: rst, syn, fin, ack).
		{stateEstablished, s | tcpFIN, stateEstablished},
		{stateFinWait, s | tcpFIN, stateSynRecv},
		// Mid-flow packets without entry (adoption) keep drlb's own rules.
		{stateNone, s, stateSynRecv},
		{stateNone, a, stateEstablished},
		{stateNone, r, stateClose},
	}
	for _, tt := range tests {
		if got := tcpNext(tt.state, tt.flags); got != tt.want {
			t.Errorf("tcpNext(%s, %#02x) = %s, want %s", StateName(tt.state), tt.flags, StateName(got), StateName(tt.want))
		}
	}
}

// TestResetInHandshakeKeepsConnection: a reset during the handshake (a
// stale segment of an earlier connection on the same ports, or a blind
// one) followed by the handshake's ACK leaves an ESTABLISHED connection,
// as IPVS does, not a CLOSE entry that dies after 10 s of silence and
// drops the live connection's next packet (no-conn).
func TestResetInHandshakeKeepsConnection(t *testing.T) {
	f := newForwarder(t, testConfig("rr", 3), Options{})
	c := client(0, 40000)
	first, _ := process(t, f, syn(c), t0)
	expect(t, first, Forward, ReasonNew)
	rst := framegen.TCP(toDir, c, netip.AddrPortFrom(vip, 80), "R", 2, 0, nil)
	res, _ := process(t, f, rst, t0)
	expect(t, res, Forward, ReasonExisting)
	res, _ = process(t, f, ack(c), t0+second)
	expect(t, res, Forward, ReasonExisting)
	f.RangeConnEntries(t0+second, func(e ConnEntry) bool {
		if e.State != "ESTABLISHED" {
			t.Errorf("entry %s after the handshake's ACK, want ESTABLISHED", e.State)
		}
		return true
	})
	// Idle for longer than tcp_close (10 s), well within tcp (900 s).
	res, _ = process(t, f, ack(c), t0+31*second)
	expect(t, res, Forward, ReasonExisting)
	if res.Real != first.Real {
		t.Fatalf("connection moved from %d to %d", first.Real, res.Real)
	}
}

// TestTCPNextMatchesIPVSTable checks tcpNext against every cell of IPVS's
// input-only table (ip_vs_proto_tcp.c tcp_states, INPUT-ONLY rows, as in
// Linux since sloppy_tcp's NONE+ACK = ESTABLISHED) for the states a DR
// connection can reach from NONE (SYN_SENT, CLOSE_WAIT, LAST_ACK,
// LISTEN and SYNACK never are), with flags picked as tcp_state_idx does
// (RST, then SYN, then FIN, then ACK). IPVS's TIME_WAIT is drlb's
// FIN_WAIT. The cells where drlb differs on purpose are listed, with why
// (tcpNext's comment).
func TestTCPNextMatchesIPVSTable(t *testing.T) {
	const tw = 100 // IPVS's TIME_WAIT, drlb's FIN_WAIT
	states := []uint8{stateNone, stateEstablished, stateSynRecv, stateFinWait, tw, stateClose}
	// Columns in the order of states: sNO, sES, sSR, sFW, sTW, sCL.
	table := []struct {
		flags uint8
		next  []uint8
	}{
		{tcpSYN, []uint8{stateSynRecv, stateEstablished, stateSynRecv, stateSynRecv, stateSynRecv, stateSynRecv}},
		{tcpFIN, []uint8{stateClose, stateFinWait, tw, stateFinWait, tw, stateClose}},
		{tcpACK, []uint8{stateEstablished, stateEstablished, stateEstablished, stateFinWait, tw, stateClose}},
		{tcpRST, []uint8{stateClose, stateClose, stateSynRecv, stateClose, stateClose, stateClose}},
		// No SYN, FIN, ACK or RST: set_tcp_state keeps its CLOSE default.
		{0, []uint8{stateClose, stateClose, stateClose, stateClose, stateClose, stateClose}},
	}
	drlb := func(s uint8) uint8 {
		if s == tw {
			return stateFinWait
		}
		return s
	}
	deliberate := func(state, flags uint8) bool {
		return state == stateNone && flags == tcpFIN || flags == 0 && state != stateClose
	}
	// Flags as sent, each reduced by tcp_state_idx to one row.
	sent := map[uint8][]uint8{
		tcpSYN: {tcpSYN, tcpSYN | tcpACK, tcpSYN | tcpFIN, tcpSYN | tcpFIN | tcpACK},
		tcpFIN: {tcpFIN, tcpFIN | tcpACK},
		tcpACK: {tcpACK},
		tcpRST: {tcpRST, tcpRST | tcpACK, tcpRST | tcpSYN, tcpRST | tcpFIN},
		0:      {0},
	}
	for _, row := range table {
		for i, from := range states {
			for _, flags := range sent[row.flags] {
				got, want := tcpNext(drlb(from), flags), drlb(row.next[i])
				if deliberate(from, row.flags) {
					if got == want {
						t.Errorf("tcpNext(%s, %#02x) = %s as IPVS: update the deliberate differences", StateName(drlb(from)), flags, StateName(got))
					}
					continue
				}
				if got != want {
					t.Errorf("tcpNext(%s, %#02x) = %s, IPVS %s", StateName(drlb(from)), flags, StateName(got), StateName(want))
				}
			}
		}
	}
}

package forwarder

import (
	"time"

	"github.com/drlb/drlb/config"
)

// Connection states. A DR director sees only the client's half of a TCP
// conversation, so states follow client packets only, as IPVS's input-only
// table does.
const (
	stateNone uint8 = iota
	stateSynRecv
	stateEstablished
	stateFinWait
	stateClose
	stateUDP
	stateTemplate
)

var stateNames = [...]string{"NONE", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE", "UDP", "TEMPLATE"}

// StateName names a connection state as ipvsadm -Lnc prints it.
func StateName(s uint8) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "?"
}

// tcpNext returns the state after a client packet with flags. Where drlb
// has the state, it follows IPVS's input-only table (ip_vs_proto_tcp.c,
// TCP_DIR_INPUT_ONLY); TestTCPNextMatchesIPVSTable holds it to every cell of
// that table. It differs on purpose in three places:
//   - drlb has no TIME_WAIT: IPVS's (a FIN in SYN_RECV) is FIN_WAIT here,
//     with the same transitions and, by default, the same 120 s; but
//     tcp_fin (ipvsadm --set's tcpfin, keepalived's lvs_timeouts tcpfin)
//     sets IPVS's FIN_WAIT timeout only, TIME_WAIT keeping 120 s, where
//     here it applies to both.
//   - a FIN without entry (adopted, stateNone) makes FIN_WAIT, not IPVS's
//     CLOSE (sloppy_tcp): the server may still be sending
//     (TestMidFlowResetWithoutEntry).
//   - a packet with none of SYN, FIN, ACK and RST leaves the state as it
//     is; IPVS moves the entry to CLOSE (set_tcp_state's default), where one
//     such segment, spoofed or not, cuts an established entry to 10 s.
func tcpNext(state, flags uint8) uint8 {
	switch {
	case flags&tcpRST != 0:
		if state == stateSynRecv {
			// IPVS keeps SYN_RECV on a reset: a stale or blind reset
			// in the handshake made a CLOSE entry that the
			// connection's ACKs never left (CLOSE + ACK = CLOSE), so
			// the live connection ended after tcp_close (10 s) idle.
			return stateSynRecv
		}
		return stateClose
	case flags&tcpSYN != 0:
		// Before FIN, as IPVS's tcp_state_idx takes a SYN+FIN (a scan's
		// packet, which real servers drop) by its SYN.
		if state == stateEstablished {
			return stateEstablished
		}
		return stateSynRecv
	case flags&tcpFIN != 0:
		if state == stateClose {
			// IPVS: sCL. A FIN after a reset does not reopen the
			// entry for FIN_WAIT's 120 s.
			return stateClose
		}
		return stateFinWait
	case flags&tcpACK != 0:
		if state == stateSynRecv || state == stateNone {
			return stateEstablished
		}
	}
	return state
}

// closing reports whether a SYN in this state starts a new connection on
// the same ports (port reuse), to be scheduled afresh.
func closing(state uint8) bool { return state == stateFinWait || state == stateClose }

// bareSYN reports whether TCP flags are a connection's opening SYN: SYN
// without ACK, RST or FIN.
func bareSYN(flags uint8) bool { return flags&(tcpSYN|tcpACK|tcpRST|tcpFIN) == tcpSYN }

// timeouts in the order of the state constants.
type timeouts [stateTemplate + 1]time.Duration

func newTimeouts(t config.Timeouts) timeouts {
	var out timeouts
	out[stateNone] = t.TCPClose
	out[stateSynRecv] = t.TCPSynRecv
	out[stateEstablished] = t.TCPEstablished
	out[stateFinWait] = t.TCPFinWait
	out[stateClose] = t.TCPClose
	out[stateUDP] = t.UDP
	return out
}

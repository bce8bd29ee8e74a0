package forwarder

// Verdict says what the caller does with a frame after Process.
type Verdict uint8

const (
	// Pass: the frame is not for a virtual service. The director leaves
	// it alone (with AF_PACKET the kernel has its own copy of it).
	Pass Verdict = iota
	// Forward: the frame was rewritten in place; write it out.
	Forward
	// Drop: the frame was for a virtual service but is refused; Reason says why.
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Forward:
		return "forward"
	case Drop:
		return "drop"
	}
	return "verdict?"
}

// Reason explains a verdict. Every reason has its own counter.
type Reason uint8

const (
	// Pass reasons.
	ReasonNotIP   Reason = iota // not IPv4/IPv6 (ARP is handled elsewhere)
	ReasonNotVIP                // IP, but not addressed to a VIP
	ReasonNotOurs               // addressed to another MAC than the director's
	// Forward reasons.
	ReasonNew        // a new connection was scheduled
	ReasonExisting   // an existing connection
	ReasonPersistent // a new connection pinned by a persistence template
	ReasonReused     // a SYN reusing the ports of a connection closing or on a quiesced server, scheduled afresh
	ReasonAdopted    // a mid-flow packet without entry, placed by a consistent hash (a reset makes no entry)
	ReasonFragment   // a non-first fragment following its first fragment
	ReasonICMP       // an ICMP error sent to the owner of the quoted connection
	// Drop reasons.
	ReasonMalformed   // could not be decoded
	ReasonOwnFrame    // sent by the director itself
	ReasonNoService   // VIP, but no service for this protocol and port
	ReasonNoConn      // mid-flow TCP packet without entry, scheduler not consistent
	ReasonNoServer    // no real server available
	ReasonTableFull   // connection table full
	ReasonFragNoFirst // non-first fragment whose first fragment was not seen
	ReasonICMPNoConn  // ICMP error quoting no known connection
	ReasonNoMAC       // chosen real server's MAC unknown
	ReasonServerGone  // connection's real server removed or failed (expire_nodest_conn)
	ReasonUnsupported // protocol not balanced (e.g. ping to a VIP)
	ReasonTooBig      // larger than the MTU with don't-fragment: answer with TooBig
	ReasonTooBigNoDF  // larger than the MTU, fragmentation allowed: dropped, counted
	// Forward reason, numbered after the others so theirs stay put.
	ReasonSorry // a new connection sent to the sorry server: no real server can take it
	// Table pressure (stateless.go), numbered after the others too.
	ReasonSynStateless    // forward: a SYN under table pressure, placed by a flow hash, no entry inserted
	ReasonPressureAdopted // forward: a non-SYN without entry after stateless SYNs, placed by the same hash, entry inserted (none for a reset)
	ReasonStatelessFull   // forward: as pressure-adopted, but the table was full: forwarded by the hash without entry
	numReasons            // keep last
)

var reasonNames = [numReasons]string{
	ReasonNotIP:       "not-ip",
	ReasonNotVIP:      "not-vip",
	ReasonNotOurs:     "not-ours",
	ReasonNew:         "new",
	ReasonExisting:    "existing",
	ReasonPersistent:  "persistent",
	ReasonReused:      "reused",
	ReasonAdopted:     "adopted",
	ReasonFragment:    "fragment",
	ReasonICMP:        "icmp",
	ReasonMalformed:   "malformed",
	ReasonOwnFrame:    "own-frame",
	ReasonNoService:   "no-service",
	ReasonNoConn:      "no-conn",
	ReasonNoServer:    "no-server",
	ReasonTableFull:   "table-full",
	ReasonFragNoFirst: "frag-no-first",
	ReasonICMPNoConn:  "icmp-no-conn",
	ReasonNoMAC:       "no-mac",
	ReasonSorry:       "sorry",
	ReasonServerGone:  "server-gone",
	ReasonUnsupported: "unsupported",
	ReasonTooBig:      "too-big",
	ReasonTooBigNoDF:  "too-big-no-df",

	ReasonSynStateless:    "syn-stateless",
	ReasonPressureAdopted: "pressure-adopted",
	ReasonStatelessFull:   "stateless-full",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "reason?"
}

// Reasons lists every reason, for counters and metrics.
func Reasons() []Reason {
	rs := make([]Reason, numReasons)
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// Result is the outcome of Process for one frame.
type Result struct {
	Verdict Verdict
	Reason  Reason
	// Service and Real index the running configuration's Services and
	// that service's RealServers (Apply may move them for the next frame);
	// -1 when none applies, or for a real server no longer configured.
	// Real == len(RealServers) is the service's sorry server.
	Service, Real int
}

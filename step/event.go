package step

import "github.com/drlb/drlb/forwarder"

// Action is what the director did with one received frame.
type Action uint8

const (
	// Pass: not for the director (not a VIP, not its MAC, ARP for another
	// address); the host's kernel has its own copy.
	Pass Action = iota
	// Forward: rewritten and sent to a real server.
	Forward
	// Answer: the director answered it with a frame of its own (Kind).
	Answer
	// Drop: for a virtual service, but refused; Result.Reason says why.
	Drop
)

var actionNames = [...]string{Pass: "pass", Forward: "forward", Answer: "answer", Drop: "drop"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "action?"
}

// Kind says what a frame the director sends is.
type Kind uint8

const (
	// Forwarded is a client's frame on its way to a real server.
	Forwarded Kind = iota
	// ARPReply answers an ARP request (or probe) for a VIP.
	ARPReply
	// NeighborAdvert answers a neighbor solicitation for an IPv6 VIP.
	NeighborAdvert
	// TooBig is ICMP fragmentation-needed (IPv4) or packet-too-big
	// (IPv6) for a packet larger than the MTU that may not be fragmented.
	TooBig
	// Reset is a TCP reset from the VIP for a packet of a connection
	// whose real server is gone (removed, failed, drained past its
	// timeout), so that the client fails fast.
	Reset
	numKinds
)

var kindNames = [numKinds]string{Forwarded: "forwarded", ARPReply: "arp-reply", NeighborAdvert: "neighbor-advert", TooBig: "too-big", Reset: "reset"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "kind?"
}

// Event is what happened to one received frame, for an Observer.
type Event struct {
	// Time is the frame's time (unix nanoseconds), as given to Handle.
	Time int64
	// Desc describes the frame as it arrived (before any rewrite); it is
	// set only when the Observer's Wants returned true.
	Desc string
	// Action is what the director did; Kind, for Forward and Answer, what
	// it sent, and Sent the bytes it sent (valid during Observe only).
	Action Action
	Kind   Kind
	Sent   []byte
	// CsumCompleted says the step completed a partial checksum in the
	// forwarded frame (CompleteChecksums).
	CsumCompleted bool
	// Result is the forwarder's verdict for IP frames. ARP frames, which
	// never reach the forwarder, carry {Pass, not-ip, -1, -1}.
	Result forwarder.Result
}

// An Observer watches every frame Handle processes. Wants is asked before
// the frame is touched, so that describing it (which allocates) happens
// only for frames that will be shown; Observe then gets the outcome. Both
// run on the data path, on Handle's goroutine: they must be quick.
type Observer interface {
	Wants(now int64) bool
	Observe(e *Event)
}

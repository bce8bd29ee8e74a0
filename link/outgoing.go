package link

import "golang.org/x/net/bpf"

// outgoingPrefix drops frames this host sends (pkttype PACKET_OUTGOING)
// before the socket's own filter runs. A fanout group skips outgoing
// frames only with PACKET_FANOUT_FLAG_IGNORE_OUTGOING, which kernels
// before 6.2 accept but ignore; frames leave through the send-only socket,
// outside the group, so on those kernels they would come back through the
// group as if received. Three instructions per frame the socket sees.
// The caller's filter then starts as it would alone, A = 0.
var outgoingPrefix = []bpf.Instruction{
	bpf.LoadExtension{Num: bpf.ExtType},
	bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: packetOutgoing, SkipTrue: 1},
	bpf.RetConstant{Val: 0},
	bpf.LoadConstant{Dst: bpf.RegA, Val: 0},
}

// packetOutgoing is PACKET_OUTGOING, skb->pkt_type of a frame this host
// transmits.
const packetOutgoing = 4

// withoutOutgoing returns filter (nil: accept all) behind outgoingPrefix.
// Relative jumps inside filter keep their targets.
func withoutOutgoing(filter []bpf.RawInstruction) []bpf.RawInstruction {
	pre, err := bpf.Assemble(outgoingPrefix)
	if err != nil {
		panic(err) // constant instructions
	}
	if len(filter) == 0 {
		accept, _ := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: FilterAccept}})
		filter = accept
	}
	return append(pre, filter...)
}

package scheduler

import "math/bits"

// conns reads server i's counts; a nil Load counts as an idle server
// rather than a panic.
func conns(load Load, i int32) (active, inactive uint32) {
	if load == nil {
		return 0, 0
	}
	return load.Conns(int(i))
}

// lcOverhead is IPVS ip_vs_dest_conn_overhead: an active connection weighs
// as much as 256 inactive ones.
func lcOverhead(active, inactive uint32) uint64 {
	return uint64(active)<<8 + uint64(inactive)
}

// ratioLess reports a/wa < b/wb by cross-multiplying in 128 bits, as IPVS
// compares loh*w_d > doh*w_l without dividing.
func ratioLess(a, wa, b, wb uint64) bool {
	lh, ll := bits.Mul64(a, wb)
	rh, rl := bits.Mul64(b, wa)
	return lh < rh || (lh == rh && ll < rl)
}

// weighted is the state shared by wlc, sed and nq: the usable servers in
// snapshot order and their weights.
type weighted struct {
	idx    []int32
	weight []uint64
}

func newWeighted(servers []Server) weighted {
	w := weighted{idx: usableIndices(servers)}
	for _, i := range w.idx {
		w.weight = append(w.weight, uint64(weightOf(servers[i])))
	}
	return w
}

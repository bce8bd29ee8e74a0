package scheduler

import (
	"math"
	"net/netip"
	"slices"
)

// maxWeight is the largest weight the schedulers honour (IPVS keeps weights
// in an int). Clamping keeps every product and sum below in int64/uint64.
const maxWeight = math.MaxInt32

// weightOf returns s's weight clamped to [0, maxWeight].
func weightOf(s Server) int64 {
	switch {
	case s.Weight <= 0:
		return 0
	case s.Weight > maxWeight:
		return maxWeight
	}
	return int64(s.Weight)
}

// usableIndices returns the snapshot indices of the servers that may take a
// new connection, in snapshot order. The snapshot is immutable, so Pick can
// walk this list instead of re-testing every server.
func usableIndices(servers []Server) []int32 {
	var idx []int32
	for i, s := range servers {
		if s.usable() {
			idx = append(idx, int32(i))
		}
	}
	return idx
}

// weightedByAddr returns the indices of servers with a positive weight,
// available or not, sorted by address (ties by snapshot index). The hashing
// schedulers build their tables in this order so that the table depends on
// the set of servers, not on the order they were listed in. Unavailable
// servers keep their place in the table so that a health-check flap moves
// only their own flows (through the fallback).
func weightedByAddr(servers []Server) []int32 {
	var idx []int32
	for i, s := range servers {
		if weightOf(s) > 0 {
			idx = append(idx, int32(i))
		}
	}
	slices.SortStableFunc(idx, func(a, b int32) int {
		return servers[a].Addr.Compare(servers[b].Addr)
	})
	return idx
}

// usableFlags returns, per snapshot index, whether the server is usable.
func usableFlags(servers []Server) []bool {
	u := make([]bool, len(servers))
	for i, s := range servers {
		u[i] = s.usable()
	}
	return u
}

// spareOf returns the usable servers of order (sorted by address): sh's and
// mh's Fallback when no bucket or slot holds a usable server. A weight far
// below the others' can round to no bucket (sh: weights 1000 and 1 in 256
// buckets) or slot (mh: a small table), and without this that server,
// usable, was never found: every new connection was refused.
func spareOf(servers []Server, order []int32) []int32 {
	var spare []int32
	for _, i := range order {
		if servers[i].usable() {
			spare = append(spare, i)
		}
	}
	return spare
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// matcher returns how a scheduler built from snapshot to finds the
// servers of snapshot from, the one it replaces: the index in to of from's
// server i, -1 when to has none. Servers are matched by address when the
// addresses within each snapshot are distinct, else by position when both
// have the same length; nil when neither.
func matcher(from, to []Server) func(i int) int {
	if at, ok := addrIndex(to); ok {
		if _, ok := addrIndex(from); ok {
			return func(i int) int {
				if j, ok := at[from[i].Addr]; ok {
					return j
				}
				return -1
			}
		}
	}
	if len(from) == len(to) {
		return func(i int) int { return i }
	}
	return nil
}

// addrIndex maps the addresses of servers to their indices; false when
// two servers have the same address.
func addrIndex(servers []Server) (map[netip.Addr]int, bool) {
	at := make(map[netip.Addr]int, len(servers))
	for i, s := range servers {
		if _, dup := at[s.Addr]; dup {
			return nil, false
		}
		at[s.Addr] = i
	}
	return at, true
}

package scheduler

import "slices"

func init() { register("sh", Traits{Weighted: true, Consistent: true}, newSH) }

// shMinBuckets is the IPVS bucket count. drlb grows the table with the
// number of servers (up to shMaxBuckets) so that every server's share stays
// close to its weight share; IPVS's 256 buckets give a server of 100 equal
// ones 2 or 3 buckets.
const (
	shMinBuckets       = 256
	shBucketsPerServer = 32
	shMaxBuckets       = 1 << 16
)

// sh is source hashing: the client address (and port with HashPort) hashes
// to a bucket of a table in which each server with a weight holds buckets in
// proportion to that weight. Unavailable servers keep their buckets, so a
// failed health check moves only that server's flows: with Fallback they go
// to the next usable server in the table (linear probing, as IPVS),
// without it Pick returns ErrNoServer for them.
//
// The table depends only on the servers' addresses and weights: servers are
// sorted by address, and the buckets of each are spread evenly over the
// table with ties between servers broken by a fixed hash, so the server
// after any given one varies and a failed server's flows spread out.
type sh struct {
	table    []int32 // bucket -> snapshot index; empty if no server has a weight
	next     []int32 // bucket -> first usable server at or after it, -1 if none
	usable   []bool  // by snapshot index
	spare    []int32 // usable servers holding no bucket, when no usable one holds any
	port     bool
	fallback bool
}

func newSH(servers []Server, opts Options) (Scheduler, error) {
	s := &sh{usable: usableFlags(servers), port: opts.HashPort, fallback: opts.Fallback}
	order := weightedByAddr(servers)
	if len(order) == 0 {
		return s, nil
	}
	size := shMinBuckets
	for size < shBucketsPerServer*len(order) && size < shMaxBuckets {
		size *= 2
	}
	s.table = fillBuckets(servers, order, size)
	s.next = nextUsable(s.table, s.usable)
	if s.next[0] < 0 {
		s.spare = spareOf(servers, order)
	}
	return s, nil
}

// fillBuckets gives each server of order (sorted by address) a bucket count
// proportional to its weight (largest remainder) and spreads each server's
// buckets evenly: the k-th of c buckets ideally sits at (k+1/2)/c of the
// table, and buckets are laid out in that order.
func fillBuckets(servers []Server, order []int32, size int) []int32 {
	var total int64
	for _, i := range order {
		total += weightOf(servers[i])
	}
	count := make([]int64, len(order))
	rem := make([]int64, len(order))
	left := int64(size)
	for j, i := range order {
		w := weightOf(servers[i]) * int64(size)
		count[j], rem[j] = w/total, w%total
		left -= count[j]
	}
	byRem := make([]int, len(order))
	for j := range byRem {
		byRem[j] = j
	}
	slices.SortStableFunc(byRem, func(a, b int) int { return int(sign(rem[b] - rem[a])) })
	for _, j := range byRem[:left] {
		count[j]++
	}

	type slot struct {
		num, den int64 // ideal position (num/den of the table)
		tie      uint64
		j        int
	}
	slots := make([]slot, 0, size)
	for j, i := range order {
		for k := range count[j] {
			tie := hashAddr(servers[i].Addr, seedFlow^uint64(k))
			slots = append(slots, slot{2*k + 1, 2 * count[j], tie, j})
		}
	}
	slices.SortFunc(slots, func(a, b slot) int {
		if c := sign(a.num*b.den - b.num*a.den); c != 0 {
			return int(c)
		}
		if a.tie != b.tie {
			if a.tie < b.tie {
				return -1
			}
			return 1
		}
		return a.j - b.j
	})
	table := make([]int32, size)
	for b, sl := range slots {
		table[b] = order[sl.j]
	}
	return table
}

// nextUsable returns, for every bucket, the first usable server found
// probing onward from it (wrapping), or -1 when the table holds none.
func nextUsable(table []int32, usable []bool) []int32 {
	next := make([]int32, len(table))
	last := int32(-1)
	// Two passes backwards: the second carries the wrap-around.
	for pass := 0; pass < 2; pass++ {
		for b := len(table) - 1; b >= 0; b-- {
			if usable[table[b]] {
				last = table[b]
			}
			next[b] = last
		}
	}
	return next
}

func sign(x int64) int64 {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func (*sh) Name() string { return "sh" }

func (s *sh) Pick(f *Flow, _ Load) (int, error) {
	if len(s.table) == 0 {
		return -1, ErrNoServer
	}
	h := hashFlow(f, s.port)
	b := reduce(h, len(s.table))
	if i := s.table[b]; s.usable[i] {
		return int(i), nil
	}
	switch {
	case !s.fallback:
		return -1, ErrNoServer
	case s.next[b] >= 0:
		return int(s.next[b]), nil
	case len(s.spare) > 0:
		// No bucket holds a usable server, but one without a bucket is
		// usable (see spareOf).
		return int(s.spare[reduce(rehash(h, 0), len(s.spare))]), nil
	}
	return -1, ErrNoServer
}

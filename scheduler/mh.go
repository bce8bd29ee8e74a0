package scheduler

import "fmt"

func init() { register("mh", Traits{Weighted: true, Consistent: true}, newMH) }

// mhMaxTableSize bounds Options.TableSize (4 MiB of table).
const mhMaxTableSize = 1 << 20

// mhRehash is how many fresh hashes the fallback tries before walking the
// table slot by slot.
const mhRehash = 32

// mh is Maglev hashing (Eisenbud et al., NSDI 2016): each server with a
// weight walks its own permutation of a prime-sized lookup table, derived
// from a hash of its address, and the servers take turns claiming their
// next free slot, a server of weight w taking w turns for every maxW a
// heaviest server takes. Adding or removing a server moves few slots
// besides its own, so few flows change server.
//
// As with sh, unavailable servers keep their slots. With Fallback a flow
// whose slot is unusable is rehashed with new seeds (as IPVS mh does) until
// it lands on a usable server, which spreads a failed server's flows over
// the others in proportion to weight; without it Pick returns ErrNoServer.
type mh struct {
	table     []int32 // slot -> snapshot index; empty if no server has a weight
	usable    []bool  // by snapshot index
	anyUsable bool    // some usable server holds a slot
	spare     []int32 // usable servers holding no slot, when no usable one holds any
	port      bool
	fallback  bool
}

func newMH(servers []Server, opts Options) (Scheduler, error) {
	m := opts.TableSize
	if m == 0 {
		m = DefaultTableSize
	}
	if m < 2 || m > mhMaxTableSize || !IsPrime(m) {
		return nil, fmt.Errorf("%w: mh table size %d must be a prime between 2 and %d", ErrBadOption, opts.TableSize, mhMaxTableSize)
	}
	order := weightedByAddr(servers)
	if len(order) > m {
		return nil, fmt.Errorf("%w: mh table size %d is smaller than the %d servers with a weight", ErrBadOption, m, len(order))
	}
	s := &mh{usable: usableFlags(servers), port: opts.HashPort, fallback: opts.Fallback}
	if len(order) == 0 {
		return s, nil
	}
	s.table = populate(servers, order, m)
	// Over the slots, not the servers: a server of small weight may hold
	// none, and counting it made every fallback walk the whole table
	// and still fail (see spareOf).
	for _, i := range s.table {
		if s.usable[i] {
			s.anyUsable = true
			break
		}
	}
	if !s.anyUsable {
		s.spare = spareOf(servers, order)
	}
	return s, nil
}

// populate fills a table of m slots (m prime, at least len(order)) from
// servers sorted by address: server j claims slots in the order
// offset_j, offset_j+skip_j, ... (mod m), skipping taken ones; skip_j is
// in [1, m-1], so with m prime every slot is visited.
func populate(servers []Server, order []int32, m int) []int32 {
	n := len(order)
	pos := make([]int, n)
	skip := make([]int, n)
	weight := make([]int64, n)
	credit := make([]int64, n)
	var maxW int64
	for j, i := range order {
		a := servers[i].Addr
		pos[j] = int(hashAddr(a, seedOffset) % uint64(m))
		skip[j] = int(hashAddr(a, seedSkip)%uint64(m-1)) + 1
		weight[j] = weightOf(servers[i])
		maxW = max(maxW, weight[j])
	}
	table := make([]int32, m)
	for k := range table {
		table[k] = -1
	}
	filled := 0
	for {
		for j := range order {
			// A heaviest server claims a slot every round, a server of
			// weight w in w rounds out of maxW.
			credit[j] += weight[j]
			if credit[j] < maxW {
				continue
			}
			credit[j] -= maxW
			p := pos[j]
			for table[p] >= 0 {
				if p += skip[j]; p >= m {
					p -= m
				}
			}
			table[p] = order[j]
			if p += skip[j]; p >= m {
				p -= m
			}
			pos[j] = p
			if filled++; filled == m {
				return table
			}
		}
	}
}

// IsPrime reports whether n is prime, as a maglev table size must be
// (trial division: table sizes are at most about a million).
func IsPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func (*mh) Name() string { return "mh" }

func (s *mh) Pick(f *Flow, _ Load) (int, error) {
	m := len(s.table)
	if m == 0 {
		return -1, ErrNoServer
	}
	h := hashFlow(f, s.port)
	slot := reduce(h, m)
	if i := s.table[slot]; s.usable[i] {
		return int(i), nil
	}
	if !s.fallback {
		return -1, ErrNoServer
	}
	if !s.anyUsable {
		if len(s.spare) > 0 {
			return int(s.spare[reduce(rehash(h, 0), len(s.spare))]), nil
		}
		return -1, ErrNoServer
	}
	for k := 1; k <= mhRehash; k++ {
		if i := s.table[reduce(rehash(h, k), m)]; s.usable[i] {
			return int(i), nil
		}
	}
	// Unlucky or nearly everything down: walk on from the first slot.
	// anyUsable guarantees this ends within m steps.
	for range m {
		if slot++; slot == m {
			slot = 0
		}
		if i := s.table[slot]; s.usable[i] {
			return int(i), nil
		}
	}
	return -1, ErrNoServer
}

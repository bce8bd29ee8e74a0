package scheduler

import (
	"net/netip"
	"testing"
)

// lab returns servers 198.18.0.11, .12, ... with the given weights, all
// available.
func lab(weights ...int) []Server {
	s := make([]Server, len(weights))
	for i, w := range weights {
		s[i] = Server{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: w, Available: true}
	}
	return s
}

// counts is a Load over fixed (active, inactive) pairs.
type counts [][2]uint32

func (c *counts) Conns(i int) (uint32, uint32) { return (*c)[i][0], (*c)[i][1] }

// open records one more active connection on server i.
func (c *counts) open(i int) { (*c)[i][0]++ }

// client returns the i-th of up to 2^17 distinct client addresses in
// 198.18.0.0/15.
func client(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

func mustNew(t testing.TB, name string, servers []Server, opts Options) Scheduler {
	t.Helper()
	s, err := New(name, servers, opts)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	return s
}

// letters turns picks into server letters, A for index 0.
func letters(picks []int) string {
	b := make([]byte, 0, len(picks))
	for _, p := range picks {
		if p < 0 {
			b = append(b, '-')
			continue
		}
		b = append(b, byte('A'+p))
	}
	return string(b)
}

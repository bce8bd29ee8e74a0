package scheduler_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/scheduler"
)

// refBucket is a flow's bucket by Placement.Seed's formula (BucketIPv4,
// BucketIPv6 for an address of 16 bytes), as a program outside Go
// computes it.
func refBucket(p scheduler.Placement, f *scheduler.Flow) int {
	if f.Src.Is4() {
		return scheduler.BucketIPv4(p.Seed(), p.Port, len(p.Buckets), f.Src.As4(), f.SrcPort)
	}
	return scheduler.BucketIPv6(p.Seed(), p.Port, len(p.Buckets), f.Src.As16(), f.SrcPort)
}

func placementServers(weights []int, down ...int) []scheduler.Server {
	s := make([]scheduler.Server, len(weights))
	for i, w := range weights {
		s[i] = scheduler.Server{Addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(11 + i)}), Weight: w, Available: true}
	}
	for _, i := range down {
		s[i].Available = false
	}
	return s
}

// TestPlacement: for sh and mh, with and without the port in the hash and
// fallback, with servers down or quiesced, a flow whose bucket holds a
// server is placed there by Pick; for IPv4 and IPv6 flows (IPv4-mapped
// ones too) the documented Seed formula gives the same bucket as Bucket.
func TestPlacement(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sched   string
		opts    scheduler.Options
		weights []int
		down    []int
	}{
		{"sh", "sh", scheduler.Options{}, []int{1, 1, 1}, nil},
		{"sh-port", "sh", scheduler.Options{HashPort: true}, []int{1, 2, 3}, nil},
		{"sh-down", "sh", scheduler.Options{}, []int{1, 1, 1, 1}, []int{1}},
		{"sh-down-fallback", "sh", scheduler.Options{Fallback: true}, []int{3, 1, 2, 1}, []int{0, 2}},
		{"sh-port-fallback-quiesced", "sh", scheduler.Options{HashPort: true, Fallback: true}, []int{5, 0, 1, 2}, []int{3}},
		{"sh-all-down-fallback", "sh", scheduler.Options{Fallback: true}, []int{1, 1}, []int{0, 1}},
		{"sh-many", "sh", scheduler.Options{HashPort: true, Fallback: true}, make40(), []int{3, 7, 8, 9, 30}},
		{"mh", "mh", scheduler.Options{}, []int{1, 1, 1}, nil},
		{"mh-port", "mh", scheduler.Options{HashPort: true}, []int{4, 1, 2}, nil},
		{"mh-down", "mh", scheduler.Options{TableSize: 1009}, []int{1, 2, 1}, []int{2}},
		{"mh-down-fallback", "mh", scheduler.Options{Fallback: true}, []int{1, 1, 3}, []int{1}},
		{"mh-port-fallback-quiesced", "mh", scheduler.Options{HashPort: true, Fallback: true, TableSize: 251}, []int{0, 2, 1, 1}, []int{2}},
		{"mh-all-down-fallback", "mh", scheduler.Options{Fallback: true, TableSize: 13}, []int{1, 1}, []int{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			servers := placementServers(tc.weights, tc.down...)
			sc, err := scheduler.New(tc.sched, servers, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			p, ok := scheduler.PlacementOf(sc)
			if !ok {
				t.Fatalf("PlacementOf(%s): not a placement", tc.sched)
			}
			if p.Port != tc.opts.HashPort || len(p.Buckets) == 0 {
				t.Fatalf("Port %v, %d buckets", p.Port, len(p.Buckets))
			}
			for b, i := range p.Buckets {
				if i >= 0 && (int(i) >= len(servers) || !servers[i].Available || servers[i].Weight == 0) {
					t.Fatalf("bucket %d: server %d, which is not usable", b, i)
				}
			}
			rng := rand.New(rand.NewPCG(7, uint64(len(tc.name))))
			placed, asked := 0, 0
			for n := range 22000 {
				f := scheduler.Flow{Proto: 6, SrcPort: uint16(rng.Uint32()), DstPort: 80,
					Dst: netip.MustParseAddr("198.18.0.100")}
				v4 := n < 20000
				if v4 {
					var a [4]byte
					binary.BigEndian.PutUint32(a[:], rng.Uint32())
					f.Src = netip.AddrFrom4(a)
				} else {
					var a [16]byte
					binary.BigEndian.PutUint64(a[:8], rng.Uint64())
					binary.BigEndian.PutUint64(a[8:], rng.Uint64())
					if n%4 == 0 { // IPv4-mapped: still 16 bytes to the hash
						copy(a[:12], []byte{10: 0xff, 11: 0xff})
					}
					f.Src = netip.AddrFrom16(a)
				}
				b := p.Bucket(&f)
				if b < 0 || b >= len(p.Buckets) {
					t.Fatalf("%v: bucket %d of %d", f.Src, b, len(p.Buckets))
				}
				if rb := refBucket(p, &f); rb != b {
					t.Fatalf("%v port %d: Seed formula gives bucket %d, Bucket %d", f.Src, f.SrcPort, rb, b)
				}
				got, err := sc.Pick(&f, nil)
				want := p.Buckets[b]
				if want < 0 {
					asked++
					// sh's -1 is always a refusal, as is mh's without
					// fallback: only mh's fallback rehashes.
					if (tc.sched == "sh" || !tc.opts.Fallback) && err == nil {
						t.Fatalf("%v: bucket %d says -1, Pick gives %d", f.Src, b, got)
					}
					continue
				}
				placed++
				if err != nil || got != int(want) {
					t.Fatalf("%v port %d: bucket %d holds %d, Pick gives %d, %v", f.Src, f.SrcPort, b, want, got, err)
				}
			}
			allDown := len(tc.down) == len(tc.weights)
			if allDown != (placed == 0) || (len(tc.down) == 0 && asked != 0) {
				t.Fatalf("%d placed by the table, %d left to Pick", placed, asked)
			}
		})
	}
}

func make40() []int {
	w := make([]int, 40)
	for i := range w {
		w[i] = 1 + i%4
	}
	return w
}

// TestPlacementOfOthers: only sh and mh have a placement; an sh or mh
// without servers of weight has an empty one.
func TestPlacementOfOthers(t *testing.T) {
	if _, ok := scheduler.PlacementOf(nil); ok {
		t.Fatal("PlacementOf(nil) is ok")
	}
	for _, name := range scheduler.Names() {
		sc, err := scheduler.New(name, placementServers([]int{1, 1}), scheduler.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, ok := scheduler.PlacementOf(sc)
		if want := name == "sh" || name == "mh"; ok != want {
			t.Errorf("PlacementOf(%s): %v", name, ok)
		}
	}
	for _, name := range []string{"sh", "mh"} {
		sc, err := scheduler.New(name, placementServers([]int{0, 0}), scheduler.Options{HashPort: true})
		if err != nil {
			t.Fatal(err)
		}
		p, ok := scheduler.PlacementOf(sc)
		if !ok || p.Buckets != nil || !p.Port {
			t.Errorf("%s without weights: %+v, %v", name, p, ok)
		}
		if b := p.Bucket(&scheduler.Flow{Src: netip.MustParseAddr("192.0.2.1")}); b != 0 {
			t.Errorf("%s without weights: bucket %d", name, b)
		}
	}
}

func ExamplePlacementOf() {
	servers := []scheduler.Server{
		{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 1, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.12"), Weight: 1, Available: false}, // failed health check
		{Addr: netip.MustParseAddr("198.18.0.13"), Weight: 2, Available: true},
	}
	sc, err := scheduler.New("sh", servers, scheduler.Options{HashPort: true, Fallback: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, _ := scheduler.PlacementOf(sc)
	fmt.Printf("%d buckets, port %v, seed %#x\n", len(p.Buckets), p.Port, p.Seed())

	f := scheduler.Flow{Proto: 6, Src: netip.MustParseAddr("192.0.2.7"), SrcPort: 40000}
	b := p.Bucket(&f)
	i, _ := sc.Pick(&f, nil)
	fmt.Printf("bucket %d holds %s, Pick gives %s\n", b, servers[p.Buckets[b]].Addr, servers[i].Addr)
	// Output:
	// 256 buckets, port true, seed 0x64726c625f736870
	// bucket 50 holds 198.18.0.11, Pick gives 198.18.0.11
}

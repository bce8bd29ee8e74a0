package scheduler_test

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/drlb/drlb/scheduler"
)

func ExampleNew() {
	servers := []scheduler.Server{
		{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 4, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.12"), Weight: 3, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.13"), Weight: 2, Available: true},
	}
	s, err := scheduler.New("wrr", servers, scheduler.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	var picks []string
	for range 9 {
		i, err := s.Pick(nil, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		picks = append(picks, servers[i].Addr.String())
	}
	fmt.Println(strings.Join(picks, "\n"))
	// Output:
	// 198.18.0.11
	// 198.18.0.11
	// 198.18.0.12
	// 198.18.0.11
	// 198.18.0.12
	// 198.18.0.13
	// 198.18.0.11
	// 198.18.0.12
	// 198.18.0.13
}

// Example_consistent shows that sh and mh answer from the flow alone: a
// second director building its own scheduler, with the servers listed in
// another order, sends the client to the same address.
func Example_consistent() {
	a := []scheduler.Server{
		{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 1, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.12"), Weight: 1, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.13"), Weight: 1, Available: true},
	}
	b := []scheduler.Server{a[2], a[0], a[1]}
	one, _ := scheduler.New("mh", a, scheduler.Options{})
	two, _ := scheduler.New("mh", b, scheduler.Options{})
	f := scheduler.Flow{Proto: 6, Src: netip.MustParseAddr("198.18.1.10"), SrcPort: 40000}
	i, _ := one.Pick(&f, nil)
	j, _ := two.Pick(&f, nil)
	t, _ := scheduler.TraitsOf("mh")
	fmt.Println(a[i].Addr == b[j].Addr, t.Consistent)
	// Output: true true
}

// ExampleTraitsOf asks what a scheduler's picks depend on instead of
// comparing its name.
func ExampleTraitsOf() {
	for _, name := range scheduler.Names() {
		t, _ := scheduler.TraitsOf(name)
		fmt.Printf("%-3s weighted=%-5t consistent=%-5t load-based=%t\n", name, t.Weighted, t.Consistent, t.LoadBased)
	}
	_, err := scheduler.TraitsOf("fifo")
	fmt.Println(errors.Is(err, scheduler.ErrUnknown))
	// Output:
	// lc  weighted=false consistent=false load-based=true
	// mh  weighted=true  consistent=true  load-based=false
	// nq  weighted=true  consistent=false load-based=true
	// rr  weighted=false consistent=false load-based=false
	// sed weighted=true  consistent=false load-based=true
	// sh  weighted=true  consistent=true  load-based=false
	// wlc weighted=true  consistent=false load-based=true
	// wrr weighted=true  consistent=false load-based=false
	// true
}

// ExampleHandle swaps in a rebuilt scheduler while pickers keep going.
func ExampleHandle() {
	servers := []scheduler.Server{
		{Addr: netip.MustParseAddr("198.18.0.11"), Weight: 1, Available: true},
		{Addr: netip.MustParseAddr("198.18.0.12"), Weight: 1, Available: true},
	}
	var h scheduler.Handle
	s, _ := scheduler.New("rr", servers, scheduler.Options{})
	h.Store(s)

	servers[0].Weight = 0 // quiesce .11: rebuild and swap
	s, _ = scheduler.New("rr", servers, scheduler.Options{})
	h.Store(s)

	i, _ := h.Load().Pick(nil, nil)
	fmt.Println(servers[i].Addr)
	// Output: 198.18.0.12
}

package vrrp_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/drlb/drlb/vrrp"
)

// A virtual router alone becomes master after the master-down interval;
// its link going down puts it in FAULT, silent; back up, it waits as at
// start before it takes the VIPs again.
func ExampleMachine_LinkDown() {
	m, err := vrrp.NewMachine(vrrp.Config{VRID: 51, Priority: 150, Interval: 100 * time.Millisecond, Preempt: true,
		Self: netip.MustParseAddr("198.18.0.2"), Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.100")}})
	if err != nil {
		panic(err)
	}
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	show := func(out vrrp.Output) { fmt.Printf("%v -> %v (send advert: %t)\n", out.From, out.To, out.Send) }
	show(m.Start(t0))
	show(m.Tick(t0.Add(m.MasterDownInterval())))
	show(m.LinkDown(t0.Add(time.Second), "eth0: no carrier"))
	fmt.Println("timer while FAULT:", m.Next().IsZero())
	show(m.LinkUp(t0.Add(2*time.Second), "eth0: link up"))
	show(m.Tick(t0.Add(2*time.Second + m.MasterDownInterval())))
	// Output:
	// INIT -> BACKUP (send advert: false)
	// BACKUP -> MASTER (send advert: true)
	// MASTER -> FAULT (send advert: false)
	// timer while FAULT: true
	// FAULT -> BACKUP (send advert: false)
	// BACKUP -> MASTER (send advert: true)
}

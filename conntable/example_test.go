package conntable_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/drlb/drlb/conntable"
)

// The forwarder's per-packet pattern: Lookup, and on a miss schedule,
// Insert and SetTimeout. OnExpire keeps per-server counters exact.
func Example() {
	active := map[uint16]int{} // per real server; the forwarder uses arrays
	tb, err := conntable.New(conntable.Options{
		Max:      1000,
		OnExpire: func(e *conntable.Entry) { active[e.Real]-- },
	})
	if err != nil {
		panic(err)
	}
	k := conntable.Key{
		CIP:   netip.MustParseAddr("198.18.1.10").As16(),
		VIP:   netip.MustParseAddr("198.18.0.100").As16(),
		CPort: 40000,
		VPort: 80,
		Proto: 6,
		Kind:  conntable.KindConn,
	}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

	if tb.Lookup(&k, now) == nil { // first packet: schedule a real server
		e, err := tb.Insert(&k, now)
		if err != nil { // conntable.ErrFull: drop and count
			panic(err)
		}
		tb.SetTimeout(e, now, 60*time.Second) // SYN_RECV
		e.Service, e.Real, e.State = 1, 2, 1
		active[e.Real]++
	}
	_, err = tb.Insert(&k, now)
	fmt.Println("second insert:", errors.Is(err, conntable.ErrExists))

	e := tb.Lookup(&k, now+int64(time.Second)) // next packet of the flow
	fmt.Println("real server:", e.Real, "expires in:", time.Duration(tb.Expires(e)-now))

	later := now + int64(61*time.Second)
	fmt.Println("after timeout:", tb.Lookup(&k, later) == nil, "len:", tb.Len(), "active:", active[2])
	// Output:
	// second insert: true
	// real server: 2 expires in: 1m0s
	// after timeout: true len: 0 active: 0
}

// A live director faults its table in before it serves, so that its
// first connections do not wait for the kernel to zero the table's
// pages; the table is the same afterwards.
func ExampleTable_Prefault() {
	tb, err := conntable.New(conntable.Options{Max: 1 << 20}) // 64 MiB of slots
	if err != nil {
		panic(err)
	}
	// An error says only that the kernel (before Linux 5.14) had the
	// pages touched one by one: the table is whole either way.
	_ = tb.Prefault()
	fmt.Println(tb.Len(), tb.Cap())
	// Output: 0 1048576
}

package arp

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// Run with -race: the hot paths read snapshots while the control paths
// replace them.
func TestConcurrentUse(t *testing.T) {
	r := newTestResponder(t, nil)
	res, err := NewResolver(ResolverConfig{MAC: dirMAC, IPv4: dirIP, Sender: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	res.Want(rs1IP)
	req := gpARP(t, nil, broadcast, OpRequest, routerMAC, routerIP, MAC{}, vip4)
	reply := arpAnswer(t, rs1MAC, rs1IP, dirIP, nil)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out [MaxFrameLen]byte
			for i := 0; i < 2000; i++ {
				r.Handle(req, out[:])
				res.Handle(reply)
				res.Lookup(rs1IP)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		now := t0
		for i := 0; i < 200; i++ {
			r.SetVIPs([]netip.Addr{vip4, netip.AddrFrom4([4]byte{198, 18, 0, byte(i)})})
			now = now.Add(time.Second)
			res.Tick(now)
			if i%50 == 0 {
				res.Forget(rs1IP)
				res.Want(rs1IP)
			}
		}
	}()
	wg.Wait()
}

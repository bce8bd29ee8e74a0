package director

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/drlb/drlb/link"
)

// heldFlow is the kernel flow of client 198.19.x.y:40000 to the VIP.
func heldFlow(i int) link.KernelFlow {
	c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 40000)
	return link.KernelFlow{Client: c, VIP: netip.AddrPortFrom(vip, 80), Proto: 6, Server: 1}
}

func heldKey(i int) link.KernelFlowKey {
	f := heldFlow(i)
	return link.KernelFlowKey{Client: f.Client, VIP: f.VIP, Proto: f.Proto}
}

// TestDropTakenBack: a flush other than the worker's drops the held
// flows it takes back, and only those, in their order.
func TestDropTakenBack(t *testing.T) {
	for _, tc := range []struct {
		held, del, want []int
	}{
		{held: []int{1, 2, 3}, del: nil, want: []int{1, 2, 3}},
		{held: nil, del: []int{1}, want: nil},
		{held: []int{1, 2, 3}, del: []int{2, 9}, want: []int{1, 3}},
		{held: []int{1, 2, 3}, del: []int{3, 1, 2}, want: nil},
		{held: []int{4, 5}, del: []int{6, 7}, want: []int{4, 5}},
	} {
		k := &kernelFlows{}
		for _, i := range tc.held {
			k.held = append(k.held, heldFlow(i))
		}
		for _, i := range tc.del {
			k.del = append(k.del, heldKey(i))
		}
		k.dropTakenBack()
		var want []link.KernelFlow
		for _, i := range tc.want {
			want = append(want, heldFlow(i))
		}
		if !slices.Equal(k.held, want) {
			t.Errorf("held %v, del %v: kept %d flows, want %v", tc.held, tc.del, len(k.held), tc.want)
		}
	}
}

// BenchmarkDropTakenBack: the idle sweep's flush (up to 8192 removals,
// kernelFlowRemovals) while a batch's 256 flows are held, under the
// worker's lock: a scan of the removals per held flow took milliseconds.
func BenchmarkDropTakenBack(b *testing.B) {
	for _, dels := range []int{64, 8192} {
		b.Run(fmt.Sprintf("held=256,del=%d", dels), func(b *testing.B) {
			k := &kernelFlows{}
			held := make([]link.KernelFlow, 256)
			for i := range held {
				held[i] = heldFlow(i)
			}
			for i := range dels {
				k.del = append(k.del, heldKey(1000+i))
			}
			b.ReportAllocs()
			for b.Loop() {
				k.held = append(k.held[:0], held...)
				k.dropTakenBack()
			}
		})
	}
}

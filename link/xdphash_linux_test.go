package link

import (
	"math/rand/v2"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/drlb/drlb/internal/testutil"
)

// TestClientHashXDPMatchesClassic runs clientHashXDP in the kernel
// (BPF_PROG_TEST_RUN of an XDP program returning the hash) on splitCases
// and thousands of truncated and corrupted copies of them, and checks each
// result against the classic fanout program in bpf.VM: an AF_XDP port on
// receive queue q takes the frames of clients whose hash modulo the queues
// is q and passes the others to the AF_PACKET fanout group, whose classic
// program must then pick the same member; a frame the two hash apart
// would reach no worker's table whole.
func TestClientHashXDPMatchesClassic(t *testing.T) {
	testutil.NeedRoot(t)
	_, frames := mutatedSplitCases(rand.New(rand.NewPCG(3, 4)), 60, func([]byte) int { return 14 })
	for _, h := range []ClientHash{{}, {Bits4: 24, Bits6: 64}, {Bits4: 1, Bits6: 100}} {
		hash, err := clientHashXDP(h, "done")
		if err != nil {
			t.Fatal(err)
		}
		insns := append(asm.Instructions{asm.Mov.Reg(regCtx, asm.R1)}, hash...)
		insns = append(insns, asm.Return().WithSymbol("done"))
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "MIT", Instructions: insns})
		if err != nil {
			t.Fatalf("%+v: %+v", h, err)
		}
		t.Cleanup(func() { prog.Close() })
		vm := vmProgram(t, h)
		for i, f := range frames {
			want, err := vm.Run(f)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := prog.Test(f)
			if err != nil {
				t.Fatalf("test run (%d bytes): %v", len(f), err)
			}
			if got != uint32(want) {
				t.Fatalf("%+v frame %d (%d bytes): XDP %#x, classic %#x", h, i, len(f), got, uint32(want))
			}
		}
	}
}

package link

import (
	"net"
	"runtime"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/sys/unix"
)

// tcxRedirect is TC_ACT_REDIRECT, what bpf_redirect returns.
const tcxRedirect = 7

// newSockKflowLab is the AF_PACKET kernel side over fresh maps: the
// worker's socket filter (around the VIP filter) and the tc program with
// the group's slots, not attached. A frame the filter refuses with this
// CPU's slot set goes on through the tc program, on the same CPU, as the
// kernel does.
func newSockKflowLab(t *testing.T, flows int) *kflowLab {
	t.Helper()
	testutil.NeedRoot(t)
	kf := &pktFlows{}
	t.Cleanup(kf.close)
	var err error
	if kf.slots, err = newKflowSlots(); err != nil {
		t.Fatal(err)
	}
	if err := kf.maps.make(flows); err != nil {
		t.Fatal(err)
	}
	classic, err := VIPFilter(splitVIPs)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := kf.filter(classic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { filter.Close() })
	ours := net.HardwareAddr{0x82, 0, 0, 0, 0, 0x02}
	tc, err := loadVIPDrop(ours, splitVIPs, &KernelFlowSlots{m: kf.slots}, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.close)
	ncpu := len(kf.maps.zero)
	return &kflowLab{t: t, flows: &kf.maps, ours: ours, notVIP: kfTX,
		runFn: func(t *testing.T, f []byte) (uint32, []byte) {
			t.Helper()
			cpu := pinCPU(t)
			if err := kf.slots.Put(uint32(0), make([]kflowSlot, ncpu)); err != nil {
				t.Fatal(err)
			}
			// The test run takes the first 14 bytes for the link
			// header and starts the skb after them, where a packet
			// socket's filter sees the frame's own.
			in := append([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0}, f...)
			ret, _, err := filter.Test(in)
			if err != nil {
				t.Fatalf("socket filter test run (%d bytes): %v", len(f), err)
			}
			slots := make([]kflowSlot, ncpu)
			if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
				t.Fatal(err)
			}
			switch {
			case ret == FilterAccept && slots[cpu].Valid == 0:
				return kfDrlb, f
			case ret == 0 && slots[cpu].Valid == 0:
				return kfPass, f
			case ret != 0:
				t.Fatalf("socket filter: %d, slot %+v", ret, slots[cpu])
			}
			tret, out, err := tc.prog.Test(f)
			if err != nil {
				t.Fatalf("tc test run (%d bytes): %v", len(f), err)
			}
			if tret != tcxRedirect {
				t.Fatalf("tc: %d for a frame the socket filter left to it, want %d (redirect)", tret, tcxRedirect)
			}
			if err := kf.slots.Lookup(uint32(0), &slots); err != nil {
				t.Fatal(err)
			}
			if slots[cpu].Valid != 0 {
				t.Fatalf("tc left the slot set: %+v", slots[cpu])
			}
			return kfTX, out
		}}
}

// pinCPU keeps the calling goroutine on one thread on one CPU until the
// test ends, and returns the CPU: per-CPU map values written by one test
// run are then read by the next.
func pinCPU(t *testing.T) int {
	t.Helper()
	runtime.LockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	cpu := 0
	for !old.IsSet(cpu) {
		cpu++
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	})
	return cpu
}

// TestSocketKernelFlows runs TestXDPKernelFlows' frames through the
// AF_PACKET side: the socket filter leaves a kernel flow's frame to the
// tc program, which sends it with the same MACs as XDP_TX would, and
// lets drlb read every frame the XDP program would give it.
func TestSocketKernelFlows(t *testing.T) {
	testKernelFlows(t, newSockKflowLab(t, maxKernelFlows))
}

package e2e

import (
	"slices"
	"testing"
)

// TestTrafgenLeavesHostAlone: every trafgen the benchmarks run is told to
// leave the host's settings alone. Without --notouch-irq trafgen finds
// the IRQ of "eth0" in the host's /proc/interrupts or /sys/class/net (not
// the lab's eth0, a veth with none) and pins it to CPU 0, restoring it
// only on a clean exit, which a run killed at its deadline never has.
// Needs no root.
func TestTrafgenLeavesHostAlone(t *testing.T) {
	args := trafgenArgs("eth0", "flood.trafgen", 10, "--rate", "1000pps")
	for _, want := range []string{"--no-sock-mem", "--notouch-irq"} {
		if !slices.Contains(args, want) {
			t.Errorf("trafgen %q lacks %s", args, want)
		}
	}
	if got := args[len(args)-2:]; !slices.Equal(got, []string{"--rate", "1000pps"}) {
		t.Errorf("trafgen %q: extra options not passed on", args)
	}
}

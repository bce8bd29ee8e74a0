package main

import (
	"os"
	"testing"
)

// TestStopOnEPIPE: a write whose reader is gone (drlb lab | head once
// head exits) stops the lab; a write that works does not.
func TestStopOnEPIPE(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	stopped := false
	out := stopOnEPIPE{w: w, stop: func() { stopped = true }}
	if _, err := out.Write([]byte("line\n")); err != nil || stopped {
		t.Fatalf("a write with a reader: %v, stopped %v", err, stopped)
	}
	r.Close()
	if _, err := out.Write([]byte("line\n")); err == nil || !stopped {
		t.Fatalf("a write without a reader: %v, stopped %v; want EPIPE and stopped", err, stopped)
	}
}

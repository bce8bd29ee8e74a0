package testutil

import (
	"net"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	ebpflink "github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
)

// tc verdicts for TCXAttach: TC_ACT_OK lets the frame through and ends
// tcx's run (the programs after it never see the frame), TCX_NEXT hands
// it to the next program.
const (
	TCXPass = 0
	TCXNext = -1
)

// TCXPassAll is TCXAttach with TCXPass: what most tc programs return.
func TCXPassAll(t testing.TB, ns netns.NsHandle, ifname string, head bool) (ebpf.ProgramID, func()) {
	t.Helper()
	return TCXAttach(t, ns, ifname, head, TCXPass)
}

// TCXAttach attaches, at the tcx ingress of ifname in ns, a program that
// returns verdict for every frame. head puts it before every program
// attached so far, else after them. It stands in for another tool's
// program (a CNI's, a monitor's). It returns the program's ID and a
// detach function, which t.Cleanup also runs (once).
func TCXAttach(t testing.TB, ns netns.NsHandle, ifname string, head bool, verdict int32) (ebpf.ProgramID, func()) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "test_tcx", Type: ebpf.SchedCLS, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, verdict), asm.Return()}})
	if err != nil {
		t.Fatalf("testutil: tc program: %v", err)
	}
	info, err := prog.Info()
	if err != nil {
		prog.Close()
		t.Fatalf("testutil: tc program: %v", err)
	}
	id, ok := info.ID()
	if !ok {
		prog.Close()
		t.Fatal("testutil: the kernel gives the tc program no ID")
	}
	var l ebpflink.Link
	err = Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		opts := ebpflink.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress}
		if head {
			opts.Anchor = ebpflink.Head()
		}
		l, err = ebpflink.AttachTCX(opts)
		return err
	})
	if err != nil {
		prog.Close()
		t.Fatalf("testutil: attaching a tc program to %s: %v", ifname, err)
	}
	var once sync.Once
	detach := func() {
		once.Do(func() {
			_ = l.Close()
			_ = prog.Close()
		})
	}
	t.Cleanup(detach)
	return id, detach
}

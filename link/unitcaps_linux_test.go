package link

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/sys/unix"
)

// unitFile is the systemd unit README's "Running as a service" installs.
const unitFile = "../dist/systemd/drlb.service"

// unitCapabilities reads the unit's CapabilityBoundingSet= lines: all the
// capabilities drlb run has under it (root confined to its bounding set).
func unitCapabilities(t *testing.T) (mask uint64, names []string) {
	t.Helper()
	bits := map[string]uint{
		"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_BPF": unix.CAP_BPF,
		"CAP_PERFMON": unix.CAP_PERFMON, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK,
		"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	}
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "CapabilityBoundingSet=")
		if !ok {
			continue
		}
		if strings.HasPrefix(v, "~") {
			t.Fatalf("%s: an inverted CapabilityBoundingSet= is not handled here: %s", unitFile, v)
		}
		for _, n := range strings.Fields(v) {
			b, ok := bits[n]
			if !ok {
				t.Fatalf("%s: capability %s: add it to this test's table", unitFile, n)
			}
			mask |= 1 << b
			names = append(names, n)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("%s: no CapabilityBoundingSet=", unitFile)
	}
	return mask, names
}

// TestUnitCapabilitiesLoadPrograms loads every BPF program drlb run loads
// (the trusted-SYN lane, the tc drop and kernel-flow programs, the
// kernel-flow socket filter, the AF_XDP program) with no more effective
// capabilities than the systemd unit grants. The verifier checks the
// loader's capabilities: without CAP_PERFMON it applies the rules for
// unprivileged programs (no pointer arithmetic with a variable offset,
// no reads of unwritten stack), which the XDP program and the socket
// filter break, so under a unit granting CAP_BPF alone -io afxdp did not
// start and -kernel-flows was dropped, while both worked from a root shell.
func TestUnitCapabilitiesLoadPrograms(t *testing.T) {
	testutil.NeedRoot(t)
	mask, names := unitCapabilities(t)
	t.Logf("%s grants %s", unitFile, strings.Join(names, " "))
	errs := make(chan []string, 1)
	go func() {
		// Only this thread drops its effective capabilities; it stays
		// locked, so the runtime ends it with the goroutine instead of
		// reusing it.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errs <- []string{"capget: " + err.Error()}
			return
		}
		data[0].Effective &= uint32(mask)
		data[1].Effective &= uint32(mask >> 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errs <- []string{"capset: " + err.Error()}
			return
		}
		var failed []string
		try := func(what string, load func() error) {
			if err := load(); err != nil {
				failed = append(failed, what+": "+err.Error())
			}
		}
		try("trusted-SYN lane (socket filter)", func() error {
			lane, err := loadTrustLane(ClientHash{Bits4: 24, Bits6: 64}, 2, 64)
			if err == nil {
				lane.refs.Store(1)
				lane.release()
			}
			return err
		})
		kf := &pktFlows{}
		defer kf.close()
		try("kernel-flow maps", func() (err error) {
			if kf.slots, err = newKflowSlots(); err != nil {
				return err
			}
			return kf.maps.make(64)
		})
		if kf.slots != nil {
			try("tc drop and kernel-flow programs (-kernel-flows)", func() error {
				d, err := loadVIPDrop(net.HardwareAddr{2, 0, 0, 0, 0, 2}, splitVIPs, &KernelFlowSlots{m: kf.slots}, 1)
				if err == nil {
					d.close()
				}
				return err
			})
			try("kernel-flow socket filter (-kernel-flows)", func() error {
				classic, err := VIPFilter(splitVIPs)
				if err != nil {
					return err
				}
				p, err := kf.filter(classic)
				if err == nil {
					p.Close()
				}
				return err
			})
		}
		try("XDP program (-io afxdp)", func() error {
			o, err := loadKernelFlows(1, 64, 0)
			if err == nil {
				o.close()
			}
			return err
		})
		try("XDP program (-io afxdp -kernel-flows, 4 queues)", func() error {
			h := ClientHash{Bits4: 24, Bits6: 64}
			o, err := loadQueues(4, 64, 64, &h, nil)
			if err == nil {
				o.close()
			}
			return err
		})
		errs <- failed
	}()
	for _, f := range <-errs {
		t.Errorf("with %s only: %s", strings.Join(names, " "), f)
	}
}

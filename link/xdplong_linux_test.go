package link

import (
	"net"
	"net/netip"
	"testing"

	"github.com/drlb/drlb/internal/framegen"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestXDPProgramPassesLongFrames: the XDP program passes a VIP frame
// longer than xskMaxFrame on every lane (main, SYN, trusted SYN; IPv4 and
// IPv6), in every variant of the program (with kernel flows or without,
// the multi-queue owner check), and a frame of exactly xskMaxFrame still
// goes to its lane's socket. BPF_PROG_TEST_RUN, as
// TestXDPProgramSplitsSYNs.
func TestXDPProgramPassesLongFrames(t *testing.T) {
	testutil.NeedRoot(t)
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	l2 := framegen.L2{Src: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Dst: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	c4, c6 := splitTestClients()
	trustedC := []netip.Addr{c4[1], c6[1]}
	owners := &ClientHash{}
	type variant struct {
		name string
		load func() (*xdpObjects, error)
	}
	for _, v := range []variant{
		{"kernel flows", func() (*xdpObjects, error) { return loadXDP(1, 64) }}, // maxKernelFlows
		{"no kernel flows", func() (*xdpObjects, error) { return loadKernelFlows(1, 64, 0) }},
		{"owners, 2 queues", func() (*xdpObjects, error) { return loadQueues(2, 64, 0, owners, nil) }},
	} {
		t.Run(v.name, func(t *testing.T) {
			o, err := v.load()
			if err != nil {
				t.Fatal(err)
			}
			defer o.close()
			if err := o.setVIPs(splitVIPs); err != nil {
				t.Fatal(err)
			}
			if err := o.trusted.trust(trustedC); err != nil {
				t.Fatal(err)
			}
			tested := 0
			defer func() {
				if tested == 0 {
					t.Error("no case ran")
				}
				t.Logf("%d cases", tested)
			}()
			for _, c := range []struct {
				name   string
				client netip.Addr
				vip    netip.Addr
				flags  string
				lane   string
			}{
				{"v4 data", c4[0], splitVIPs[0], "A", laneMain},
				{"v4 SYN", c4[0], splitVIPs[0], "S", laneSYN},
				{"v4 trusted SYN", c4[1], splitVIPs[0], "S", laneTrust},
				{"v6 data", c6[0], splitVIPs[1], "A", laneMain},
				{"v6 SYN", c6[0], splitVIPs[1], "S", laneSYN},
				{"v6 trusted SYN", c6[1], splitVIPs[1], "S", laneTrust},
			} {
				if v.name == "owners, 2 queues" && owners.Sum(c.client)%2 != 0 {
					continue // another queue's client: passed whatever its size
				}
				tested++
				hdr := len(framegen.TCP(l2, netip.AddrPortFrom(c.client, 40000), netip.AddrPortFrom(c.vip, 80), c.flags, 1, 0, make([]byte, 100))) - 100
				for _, size := range []int{xskMaxFrame, xskMaxFrame + 1, 4000} {
					f := framegen.TCP(l2, netip.AddrPortFrom(c.client, 40000), netip.AddrPortFrom(c.vip, 80), c.flags, 1, 0, make([]byte, size-hdr))
					if len(f) != size {
						t.Fatalf("frame of %d bytes, want %d", len(f), size)
					}
					want := c.lane
					if size > xskMaxFrame {
						want = lanePacket
					}
					if got := redirectLane(t, o, fd, f); got != want {
						t.Errorf("%s, %d bytes: lane %s, want %s", c.name, size, got, want)
					}
				}
			}
		})
	}
}

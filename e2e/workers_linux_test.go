package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/director"
	"github.com/drlb/drlb/internal/ethtool"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

// TestWorkersShareClients runs drlb with two workers and real curl
// clients from 16 addresses, with each backend: AF_PACKET (two socket
// sets in a fanout group sorted by client address) and AF_XDP on an
// interface with two receive queues (a worker per queue, each taking its
// own clients' frames from its queue through AF_XDP and the rest from
// the AF_PACKET fanout group). Every request is answered, persistence
// keeps each client on one real server (its template is in the same
// worker's table as its connections), and both workers carry clients,
// each as many as the hash gives it (drlb ctl list -o json); with AF_XDP
// both read frames through their queue's sockets.
func TestWorkersShareClients(t *testing.T) {
	testutil.NeedRoot(t)
	curl := testutil.NeedTool(t, "curl")
	for _, tc := range []struct {
		name   string
		queues int
		args   []string
		log    string
	}{
		{name: "afpacket", args: []string{"-io", "afpacket"}, log: "workers=2"},
		// Two workers' UMEM: 2 x 52 MiB.
		{name: "afxdp", queues: 2, args: []string{"-io", "afxdp"}, log: `"umem MiB"=104`},
	} {
		t.Run(tc.name, func(t *testing.T) { testWorkersShareClients(t, curl, tc.queues, tc.args, tc.log) })
	}
}

func testWorkersShareClients(t *testing.T, curl string, queues int, args []string, started string) {
	l := newLab(t, testbed.Options{RealServers: 3, DirectorQueues: queues})
	afxdp := queues > 0
	if afxdp {
		// XDP frames carry no partial checksums (TestAFXDP): the router
		// completes its own, as frames off a wire are.
		if err := l.Do(l.Router, func() error { return ethtool.Set(l.Router.Iface, ethtool.TxChecksum, false) }); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "drlb.yaml")
	if err := os.WriteFile(path, []byte(serviceConfig(l, "tcp", testbed.HTTPPort, "rr", "persistence: 300s, ")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "drlb.sock")
	p := startDirectorN(t, l, len(l.RealServers), append([]string{"run", "-c", path, "-ctl", sock, "-workers", "2"}, args...)...)
	p.waitLog(started, 1, time.Second)
	if afxdp {
		// The frames a queue passes to their client's worker reach the
		// kernel too, after drlb's sockets: it drops its copy.
		p.waitLog("kernel copy of VIP frames dropped at tc ingress", 1, time.Second)
	}

	// 16 more addresses on the client's link (198.18.1.0/24): the router
	// reaches them there, as it does the client's own.
	var clients []netip.Addr
	err := l.Do(l.Client, func() error {
		lk, err := netlink.LinkByName(l.Client.Iface)
		if err != nil {
			return err
		}
		for i := range 16 {
			a := netip.AddrFrom4([4]byte{198, 18, 1, byte(100 + i)})
			if err := netlink.AddrAdd(lk, &netlink.Addr{IPNet: netlink.NewIPNet(a.AsSlice())}); err != nil {
				return err
			}
			clients = append(clients, a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int, 2)
	for _, c := range clients {
		want[director.FanoutHash(cfg).Index(c, 2)]++
	}
	// Both workers must carry clients: with every client on one worker
	// (a hash that always says 0, say) the checks below would pass with
	// one worker idle.
	if want[0] == 0 || want[1] == 0 {
		t.Fatalf("the fanout hash puts the 16 clients %v on the two workers: want some on each", want)
	}
	for _, c := range clients {
		var first string
		for j := range 3 {
			var out []byte
			err := l.Do(l.Client, func() error {
				var err error
				out, err = exec.Command(curl, "-sS", "--noproxy", "*", "--max-time", "5", "--interface", c.String(),
					"-D", "-", "-o", "/dev/null", fmt.Sprintf("http://%s/", l.VIP)).CombinedOutput()
				return err
			})
			if err != nil {
				t.Fatalf("curl from %v (request %d): %v\n%s", c, j, err, out)
			}
			server := ""
			for _, line := range strings.Split(string(out), "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.EqualFold(k, testbed.ServerHeader) {
					server = strings.TrimSpace(v)
				}
			}
			if server == "" {
				t.Fatalf("curl from %v: no %s header:\n%s", c, testbed.ServerHeader, out)
			}
			if j == 0 {
				first = server
			} else if server != first {
				t.Fatalf("client %v went to %s, then %s: persistence broken across workers", c, first, server)
			}
		}
	}
	out, err := exec.Command(drlbBinary, "ctl", "list", "-s", sock, "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("drlb ctl list: %v\n%s", err, out)
	}
	var snap struct {
		Workers []struct {
			Frames    uint64 `json:"frames"`
			Entries   int    `json:"entries"`
			XDPFrames uint64 `json:"xdp_frames"`
		} `json:"workers"`
		Overload struct {
			TrustedClients int `json:"trusted_clients"`
		} `json:"overload"`
	}
	if err := json.Unmarshal(out, &snap); err != nil || len(snap.Workers) != 2 {
		t.Fatalf("ctl list -o json: %v, workers %+v\n%s", err, snap.Workers, out)
	}
	for i, w := range snap.Workers {
		// Each client: 1 template and 3 connections (closed, still in
		// the table as TIME_WAIT-like entries).
		if want[i] > 0 && (w.Frames == 0 || w.Entries < 4*want[i]) {
			t.Errorf("worker %d: %+v, want frames and at least %d entries for its %d clients", i, w, 4*want[i], want[i])
		}
		if want[i] == 0 && w.Frames != 0 {
			t.Errorf("worker %d has no clients by the hash but processed %d frames", i, w.Frames)
		}
		// Its clients' flows are spread over both queues by the
		// switch's flow hash: some of each worker's reach its own.
		if afxdp && want[i] > 0 && (w.XDPFrames == 0 || w.XDPFrames > w.Frames) {
			t.Errorf("worker %d: %d of its %d frames through AF_XDP, want some and no more than all", i, w.XDPFrames, w.Frames)
		}
		if !afxdp && w.XDPFrames != 0 {
			t.Errorf("worker %d: %d frames through AF_XDP with AF_PACKET", i, w.XDPFrames)
		}
	}
	// Every client completed handshakes, so each is in the trusted lane
	// (its next SYNs skip a flooded SYN queue): reported once, not once
	// per connection (a worker's dedup set may rarely let one through
	// twice).
	if n := snap.Overload.TrustedClients; n < len(clients) || n >= 3*len(clients) {
		t.Errorf("%d clients trusted after %d clients made 3 connections each, want %d", n, len(clients), len(clients))
	}
	t.Logf("16 clients: %v by the hash; workers %+v; %d trusted", want, snap.Workers, snap.Overload.TrustedClients)
}

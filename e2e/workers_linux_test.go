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
	"github.com/drlb/drlb/internal/testutil"
	"github.com/drlb/drlb/testbed"
	"github.com/vishvananda/netlink"
)

// TestWorkersShareClients runs drlb with two workers (two AF_PACKET
// sockets in a fanout group sorted by client address) and real curl
// clients from 16 addresses: every request is answered, persistence keeps
// each client on one real server (its template is in the same worker's
// table as its connections), and both workers carry clients, each as many
// as the hash gives it (drlb ctl list -o json).
func TestWorkersShareClients(t *testing.T) {
	testutil.NeedRoot(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not installed (apt-get install curl)")
	}
	l := newLab(t, testbed.Options{RealServers: 3})
	dir := t.TempDir()
	path := filepath.Join(dir, "drlb.yaml")
	if err := os.WriteFile(path, []byte(serviceConfig(l, "tcp", testbed.HTTPPort, "rr", "persistence: 300s, ")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "drlb.sock")
	p := startDirectorN(t, l, len(l.RealServers), "run", "-c", path, "-ctl", sock, "-workers", "2")
	p.waitLog("workers=2", 1, time.Second)

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
	for _, c := range clients {
		var first string
		for j := range 3 {
			var out []byte
			err := l.Do(l.Client, func() error {
				var err error
				out, err = exec.Command("curl", "-sS", "--max-time", "5", "--interface", c.String(),
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
			Frames  uint64 `json:"frames"`
			Entries int    `json:"entries"`
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

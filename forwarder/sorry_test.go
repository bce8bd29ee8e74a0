package forwarder

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/framegen"
)

var sorryAddr = netip.MustParseAddr("198.18.0.99")

// sorryConfig is testConfig with two real servers and a sorry server at
// index 2 (its MAC is rsMACs[2], so process checks where frames go).
func sorryConfig(sched string, inhibit bool) *config.Config {
	cfg := testConfig(sched, 2)
	cfg.Services[0].SorryServer = &config.SorryServer{Address: sorryAddr, MAC: rsMACs[2], Inhibit: inhibit}
	return cfg
}

// TestSorryServer: while no real server can take a connection (down,
// weight 0, unresolved), new connections go to the sorry server, as with
// keepalived's sorry_server; when one is back, the sorry server's
// connections end and new ones go to the real servers.
func TestSorryServer(t *testing.T) {
	f := newForwarder(t, sorryConfig("rr", false), Options{})
	c0, c1, c2 := client(0, 40000), client(1, 40000), client(2, 40000)
	res, _ := process(t, f, syn(c0), t0)
	expect(t, res, Forward, ReasonNew)
	if res.Real == 2 {
		t.Fatal("the sorry server took a connection while real servers were up")
	}
	for ri := 0; ri < 2; ri++ {
		if err := f.SetAvailable(0, ri, false); err != nil {
			t.Fatal(err)
		}
	}
	res, _ = process(t, f, ack(c0), t0+second)
	expect(t, res, Drop, ReasonServerGone)
	res, _ = process(t, f, syn(c1), t0+second)
	expect(t, res, Forward, ReasonSorry)
	if res.Real != 2 {
		t.Fatalf("sorry connection went to %d, want 2 (the sorry server)", res.Real)
	}
	res, _ = process(t, f, ack(c1), t0+2*second)
	expect(t, res, Forward, ReasonExisting)
	if res.Real != 2 {
		t.Fatalf("sorry connection moved to %d", res.Real)
	}
	st := f.Stats()[0]
	if len(st.RealServers) != 2 || st.Sorry == nil || st.Sorry.Addr != sorryAddr || !st.Sorry.Available || st.Sorry.Active != 1 {
		t.Fatalf("stats while the sorry server stands in: %+v sorry %+v", st.RealServers, st.Sorry)
	}

	if err := f.SetAvailable(0, 1, true); err != nil {
		t.Fatal(err)
	}
	res, _ = process(t, f, ack(c1), t0+3*second)
	expect(t, res, Drop, ReasonServerGone)
	res, _ = process(t, f, syn(c2), t0+3*second)
	expect(t, res, Forward, ReasonNew)
	if res.Real != 1 {
		t.Fatalf("new connection went to %d, want the real server 1", res.Real)
	}
	if st := f.Stats()[0]; st.Sorry.Available {
		t.Fatal("stats say the sorry server stands in while a real server is up")
	}
	if err := f.SetAvailable(0, 2, false); !errors.Is(err, ErrUnknownServer) {
		t.Fatalf("SetAvailable on the sorry server's index: %v, want ErrUnknownServer", err)
	}
	if f.Count(ReasonSorry) != 1 {
		t.Fatalf("%d frames counted sorry, want 1", f.Count(ReasonSorry))
	}
}

// TestSorryServerInhibit: with sorry_server_inhibit the sorry server's
// connections continue when the real servers come back.
func TestSorryServerInhibit(t *testing.T) {
	f := newForwarder(t, sorryConfig("wlc", true), Options{})
	for ri := 0; ri < 2; ri++ {
		f.SetInhibited(0, ri, true) // weight 0 counts as unusable, as keepalived's quorum
	}
	c := client(0, 40000)
	res, _ := process(t, f, syn(c), t0)
	expect(t, res, Forward, ReasonSorry)
	f.SetInhibited(0, 0, false)
	res, _ = process(t, f, ack(c), t0+second)
	expect(t, res, Forward, ReasonExisting)
	if res.Real != 2 {
		t.Fatalf("went to %d, want the sorry server's connection to continue", res.Real)
	}
}

// TestSorryServerUnresolved: real servers whose MAC is unknown cannot take
// traffic, so the sorry server stands in; without its own MAC, nothing does.
func TestSorryServerUnresolved(t *testing.T) {
	cfg := sorryConfig("rr", false)
	for i := range cfg.Services[0].RealServers {
		cfg.Services[0].RealServers[i].MAC = nil
	}
	f := newForwarder(t, cfg, Options{})
	res, _ := process(t, f, syn(client(0, 40000)), t0)
	expect(t, res, Forward, ReasonSorry)
	if err := f.SetMAC(sorryAddr, nil); err != nil {
		t.Fatal(err)
	}
	res, _ = process(t, f, syn(client(1, 40000)), t0)
	expect(t, res, Drop, ReasonNoServer)
	if err := f.SetMAC(cfg.Services[0].RealServers[0].Address, rsMACs[0]); err != nil {
		t.Fatal(err)
	}
	res, _ = process(t, f, syn(client(2, 40000)), t0)
	expect(t, res, Forward, ReasonNew)
}

// TestSorryServerPersistence: a persistence template made while the sorry
// server stood in does not pin the client to it once a real server is up.
func TestSorryServerPersistence(t *testing.T) {
	cfg := sorryConfig("rr", true)
	cfg.Services[0].Persistence = 300 * time.Second
	cfg.Services[0].PersistenceBits = 32
	f := newForwarder(t, cfg, Options{})
	f.SetAvailable(0, 0, false)
	f.SetAvailable(0, 1, false)
	res, _ := process(t, f, syn(client(0, 40000)), t0)
	expect(t, res, Forward, ReasonSorry)
	f.SetAvailable(0, 0, true)
	res, _ = process(t, f, syn(client(0, 40001)), t0+second)
	expect(t, res, Forward, ReasonNew)
	if res.Real != 0 {
		t.Fatalf("went to %d, want real server 0", res.Real)
	}
}

// TestSorryServerNotForOneBucket: the sorry server stands in for the
// service, never for one hash bucket whose server is down while others
// are up (IPVS has no sorry server then, and sh without fallback drops).
func TestSorryServerNotForOneBucket(t *testing.T) {
	f := newForwarder(t, sorryConfig("sh", false), Options{})
	f.SetAvailable(0, 1, false)
	dropped := false
	for i := 0; i < 40 && !dropped; i++ {
		res, _ := process(t, f, syn(client(i, 40000)), t0)
		if res.Verdict == Forward && res.Real != 0 {
			t.Fatalf("client %d went to %d (%v) with real server 0 up", i, res.Real, res.Reason)
		}
		dropped = res.Verdict == Drop && res.Reason == ReasonNoServer
	}
	if !dropped {
		t.Fatal("no client hashed to the down server in 40 tries")
	}
}

// TestSorryServerStaticMACReload: a reload that gives the sorry server
// another static MAC sends its frames there from the swap, as a kept real
// server's new MAC does. The resolver's Static sends no event, so the
// forwarder went on sending to the old NIC.
func TestSorryServerStaticMACReload(t *testing.T) {
	cfg := sorryConfig("rr", false)
	f := newForwarder(t, cfg, Options{})
	next := sorryConfig("rr", false)
	next.Services[0].SorryServer.MAC = rsMACs[0]
	apply(t, f, next, t0)
	if got := f.Stats()[0].Sorry.MAC; got.String() != rsMACs[0].String() {
		t.Errorf("sorry server's MAC after the reload: %v, want the config's new %v", got, rsMACs[0])
	}
}

// TestSorryServerICMPError: an ICMP error about a sorry server's
// connection reaches it while it stands in. Once a real server is back it
// is dropped as server-gone, as the connection's own packets are
// (connection()), unless sorry_server_inhibit keeps the sorry server's
// connections: then the error (fragmentation needed: its path MTU) still
// reaches it, as the connection's packets do.
func TestSorryServerICMPError(t *testing.T) {
	for _, tc := range []struct {
		name    string
		inhibit bool
		after   Reason // the error's fate once a real server is back
	}{
		{"sorry server", false, ReasonServerGone},
		{"inhibited sorry server", true, ReasonICMP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, sorryConfig("rr", tc.inhibit), Options{MAC: directorMAC})
			for ri := 0; ri < 2; ri++ {
				if err := f.SetAvailable(0, ri, false); err != nil {
					t.Fatal(err)
				}
			}
			c := client(1, 4000)
			res, _ := process(t, f, syn(c), t0)
			expect(t, res, Forward, ReasonSorry)
			reply := framegen.TCP(framegen.L2{Src: rsMACs[2], Dst: clientMAC}, netip.AddrPortFrom(vip, 80), c, "PA", 9, 2, make([]byte, 1400))
			icmp := framegen.ICMPFragNeeded(toDir, netip.MustParseAddr("198.18.1.1"), vip, framegen.IPPacket(reply)[:28], 1400)
			res, _ = process(t, f, icmp, t0+second)
			expect(t, res, Forward, ReasonICMP)
			if err := f.SetAvailable(0, 1, true); err != nil {
				t.Fatal(err)
			}
			res, _ = process(t, f, icmp, t0+2*second)
			if res.Reason != tc.after || tc.after == ReasonICMP && res.Real != 2 {
				t.Fatalf("ICMP error once a real server is back: %v to %d, want %v (to the sorry server, 2, when forwarded)", res.Reason, res.Real, tc.after)
			}
		})
	}
}

// TestApplyLogsSorryServerChanges: a reload that removes the sorry server
// (its connections end) or changes sorry_server_inhibit (whether a real
// server back ends them) says so in its changes, as it does of every
// other change. Both used to be applied with no change reported at all.
func TestApplyLogsSorryServerChanges(t *testing.T) {
	// As a file's defaults make it (testConfig leaves the netmask unset).
	masked := func(c *config.Config) *config.Config {
		for i := range c.Services {
			c.Services[i].PersistenceBits = c.Services[i].VIP.BitLen()
		}
		return c
	}
	for _, tc := range []struct {
		name string
		to   *config.Config
		want string
	}{
		{"removed", masked(testConfig("rr", 2)), "sorry server " + sorryAddr.String() + " removed"},
		{"inhibit", masked(sorryConfig("rr", true)), "sorry_server_inhibit false -> true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newForwarder(t, masked(sorryConfig("rr", false)), Options{})
			changes, err := f.Apply(tc.to, 1, nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, c := range changes {
				found = found || c.Kind == ServiceChanged && strings.Contains(c.Detail, tc.want)
			}
			if !found {
				t.Errorf("changes %v, want a service change saying %q", changes, tc.want)
			}
		})
	}
}

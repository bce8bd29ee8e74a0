package bgp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/testutil"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// freePort finds a TCP port on testutil.LoopbackAddr that is free right
// now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// loopbackRouter is a second GoBGP playing the router: AS 65000,
// listening on port of testutil.LoopbackAddr, passive towards the
// director there (AS 65001), IPv4 and IPv6 unicast, a 3 s hold time;
// stopped when the test ends.
func loopbackRouter(t *testing.T, ctx context.Context, port int) *server.BgpServer {
	t.Helper()
	lo := testutil.LoopbackAddr
	router := server.NewBgpServer()
	go router.Serve()
	t.Cleanup(router.Stop)
	if err := router.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: 65000, RouterId: "198.18.0.1", ListenPort: int32(port), ListenAddresses: []string{lo.String()},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := router.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
		Conf:      &api.PeerConf{NeighborAddress: lo.String(), PeerAsn: 65001},
		Transport: &api.Transport{PassiveMode: true},
		AfiSafis: []*api.AfiSafi{
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
		},
		Timers: &api.Timers{Config: &api.TimersConfig{HoldTime: 3, KeepaliveInterval: 1}},
	}}); err != nil {
		t.Fatal(err)
	}
	return router
}

// TestGoBGPSession runs the speaker against a second GoBGP playing the
// router, over the loopback of the tests' own network namespace
// (MainInOwnNetNS; no root needed where user namespaces are allowed): the session comes up,
// an announced VIP reaches the router with our next hop and AS, a
// withdrawal removes it, and routes the router sends are not accepted.
func TestGoBGPSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	lo := testutil.LoopbackAddr

	router := loopbackRouter(t, ctx, port)
	// The router offers a route of its own: the director must ignore it.
	offered, _ := path(netip.MustParsePrefix("198.18.9.0/24"), netip.MustParseAddr("198.18.0.1"))
	if _, err := router.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{offered}}); err != nil {
		t.Fatal(err)
	}

	sp, err := StartGoBGP(ctx, GoBGPConfig{
		BGP: &config.BGP{ASN: 65001, HoldTime: 3 * time.Second, MinRealServers: 1,
			Peers: []config.BGPPeer{{Address: lo, ASN: 65000, Port: uint16(port)}}},
		RouterID: netip.MustParseAddr("198.18.0.2"), ConnectRetry: time.Second, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	waitFor(t, ctx, "session established", func() bool {
		p := sp.Peers()
		return len(p) == 1 && p[0].Established() && p[0].HoldTime == 3*time.Second
	})

	// What the router received from us (its adj-RIB-in).
	routerHas := func(prefix string) (nh netip.Addr, asPath string) {
		pfx := netip.MustParsePrefix(prefix)
		family := gbgp.RF_IPv4_UC
		if pfx.Addr().Is6() {
			family = gbgp.RF_IPv6_UC
		}
		_ = router.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_IN, Name: lo.String(), Family: family},
			func(n gbgp.NLRI, paths []*apiutil.Path) {
				if n.String() != pfx.String() {
					return
				}
				for _, p := range paths {
					for _, a := range p.Attrs {
						switch a := a.(type) {
						case *gbgp.PathAttributeNextHop:
							nh = a.Value
						case *gbgp.PathAttributeMpReachNLRI:
							nh = a.Nexthop
						case *gbgp.PathAttributeAsPath:
							asPath = a.String()
						}
					}
				}
			})
		return nh, asPath
	}
	a := NewAnnouncer(sp, AnnouncerConfig{NextHop4: nh4, NextHop6: nh6, Logger: quiet()})
	a.Report(map[netip.Addr]int{vip: 1, vip6: 1})
	waitFor(t, ctx, "the router learns the VIP", func() bool {
		nh, as := routerHas("198.18.2.100/32")
		return nh == nh4 && as == "{AsPath: 65001}"
	})
	waitFor(t, ctx, "the router learns the IPv6 VIP", func() bool {
		nh, _ := routerHas("2001:2:0:2::100/128")
		return nh == nh6
	})
	a.Report(map[netip.Addr]int{vip: 0})
	waitFor(t, ctx, "the router drops the VIPs", func() bool {
		nh, _ := routerHas("198.18.2.100/32")
		nh6, _ := routerHas("2001:2:0:2::100/128")
		return !nh.IsValid() && !nh6.IsValid()
	})
	n := 0
	_ = sp.s.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: gbgp.RF_IPv4_UC},
		func(gbgp.NLRI, []*apiutil.Path) { n++ })
	if n != 0 {
		t.Errorf("the director's RIB holds %d prefixes: the router's route was accepted", n)
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting: %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestGoBGPQuietStop: a speaker started and stopped cleanly logs nothing
// from GoBGP below a warning (its "Add a peer" chatter), and no error
// (stopping the sessions twice made GoBGP log one on every shutdown).
func TestGoBGPQuietStop(t *testing.T) {
	var buf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sp, err := StartGoBGP(context.Background(), GoBGPConfig{
		BGP: &config.BGP{ASN: 65001, HoldTime: 3 * time.Second, MinRealServers: 1,
			Peers: []config.BGPPeer{{Address: testutil.LoopbackAddr, ASN: 65000, Port: uint16(freePort(t))}}},
		RouterID: netip.MustParseAddr("198.18.0.2"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sp.Stop()
	if s := buf.String(); strings.Contains(s, "component=gobgp") {
		t.Errorf("GoBGP logged below a warning, or an error on a clean stop:\n%s", s)
	}
}

// TestGoBGPPeerStatesWhileStarting: with several peers, sessions already
// added change state (GoBGP's watch goroutine calls peerEvent) while
// StartGoBGP is still adding the next ones. The status list must be
// complete before the first event, or the two goroutines share it
// unlocked (go test -race) and an append that moves it loses the
// states recorded meanwhile: drlb ctl bgp and drlb_bgp_peer_up would
// show a session idle for good.
func TestGoBGPPeerStatesWhileStarting(t *testing.T) {
	var peers []config.BGPPeer
	for i := range 32 {
		// Nothing listens there: each session goes to active at once.
		peers = append(peers, config.BGPPeer{Address: netip.AddrFrom4([4]byte{127, 0, 1, byte(i + 1)}), ASN: 65000, Port: uint16(freePort(t))})
	}
	sp, err := StartGoBGP(context.Background(), GoBGPConfig{
		BGP:      &config.BGP{ASN: 65001, HoldTime: 3 * time.Second, MinRealServers: 1, Peers: peers},
		RouterID: netip.MustParseAddr("198.18.0.2"), ConnectRetry: time.Second, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, ctx, "every session out of idle, as GoBGP says", func() bool {
		for _, p := range sp.Peers() {
			if p.State == "idle" {
				return false
			}
		}
		return true
	})
}

// TestGoBGPBadPeerASLogged: a session that cannot come up because the
// director expects another ASN than the router's (a typo in bgp.peers)
// is warned about, once over several connect retries, with what to
// check; it said nothing above GoBGP's debug level, and the VIPs were
// never announced without a word.
func TestGoBGPBadPeerASLogged(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := freePort(t)
	lo := testutil.LoopbackAddr
	loopbackRouter(t, ctx, port)
	buf := &testutil.SyncBuffer{}
	sp, err := StartGoBGP(ctx, GoBGPConfig{
		// The router is AS 65000; the director expects 65099.
		BGP:      &config.BGP{ASN: 65001, HoldTime: 3 * time.Second, MinRealServers: 1, Peers: []config.BGPPeer{{Address: lo, ASN: 65099, Port: uint16(port)}}},
		RouterID: netip.MustParseAddr("198.18.0.2"), ConnectRetry: time.Second, FailedPoll: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Stop()
	waitFor(t, ctx, "a warning that the session was not established", func() bool {
		return strings.Contains(buf.String(), "bgp: session not established")
	})
	time.Sleep(3 * time.Second) // a few connect retries, each refused again
	logs := buf.String()
	if n := strings.Count(logs, "bgp: session not established"); n != 1 {
		t.Errorf("%d warnings over a few retries, want 1:\n%s", n, logs)
	}
	for _, want := range []string{"level=WARN", "NOTIFICATION sent", "bgp.peers[].asn", "asn=65099", "state="} {
		if !strings.Contains(logs, want) {
			t.Errorf("the warning lacks %q:\n%s", want, logs)
		}
	}
}

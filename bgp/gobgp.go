package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// GoBGPConfig shapes the embedded speaker.
type GoBGPConfig struct {
	// BGP is the config file's bgp: block.
	BGP *config.BGP
	// RouterID replaces BGP.RouterID when that is unset: the director's
	// IPv4 address on its interface.
	RouterID netip.Addr
	// ListenPort, if above 0, accepts sessions on that port (tests; a
	// director connects to its peers and does not listen).
	ListenPort int32
	// ConnectRetry spaces the attempts to reach a peer (default 2s), so
	// a restarted router is back in seconds, not GoBGP's default 120s.
	ConnectRetry time.Duration
	// FailedPoll is how often failing sessions are looked for
	// (watchFailed; default failedPollEvery).
	FailedPoll time.Duration
	Logger     *slog.Logger // default slog.Default(); GoBGP's own log is kept at warnings
}

// GoBGP is the Speaker backed by an embedded GoBGP server.
type GoBGP struct {
	s      *server.BgpServer
	log    *slog.Logger
	cancel context.CancelFunc

	mu    sync.Mutex
	peers []PeerStatus // configuration order

	// pollStop ends watchFailed, which closes pollDone.
	pollStop context.CancelFunc
	pollDone chan struct{}
}

// StartGoBGP starts the speaker and its sessions with every configured
// peer. It does not listen for sessions (unless cfg.ListenPort says so),
// and rejects every route the peers send: the director originates its
// VIPs and learns nothing.
func StartGoBGP(ctx context.Context, cfg GoBGPConfig) (*GoBGP, error) {
	b := cfg.BGP
	if b == nil {
		return nil, errors.New("bgp: no bgp configuration")
	}
	rid := b.RouterID
	if !rid.IsValid() {
		rid = cfg.RouterID
	}
	if !rid.Is4() {
		return nil, errors.New("bgp: no router_id and no IPv4 address on the interface to use as one: set bgp.router_id")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	retry := cfg.ConnectRetry
	if retry <= 0 {
		retry = 2 * time.Second
	}
	// GoBGP logs through this logger at every level (the LevelVar only
	// serves its gRPC SetLogLevel): its session chatter stays out of
	// drlb's log unless it is a warning.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	quiet := slog.New(atLeast{log.Handler(), lvl}).With("component", "gobgp")
	s := server.NewBgpServer(server.LoggerOption(quiet, lvl))
	go s.Serve()
	g := &GoBGP{s: s, log: log}
	fail := func(err error) (*GoBGP, error) {
		s.Stop()
		return nil, err
	}
	port := cfg.ListenPort
	if port <= 0 {
		port = -1 // GoBGP: do not listen
	}
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: b.ASN, RouterId: rid.String(), ListenPort: port,
	}}); err != nil {
		return fail(fmt.Errorf("bgp: start: %w", err))
	}
	// GoBGP's global import policy also filters the paths we originate,
	// so it cannot simply default to reject: it rejects whatever comes
	// from a peer (internal or external) and lets local paths through.
	reject := func(rt api.Conditions_RouteType) *api.Statement {
		return &api.Statement{Conditions: &api.Conditions{RouteType: rt},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}}
	}
	learnNothing := &api.Policy{Name: "drlb-learn-nothing", Statements: []*api.Statement{
		reject(api.Conditions_ROUTE_TYPE_EXTERNAL), reject(api.Conditions_ROUTE_TYPE_INTERNAL),
	}}
	if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: learnNothing}); err != nil {
		return fail(fmt.Errorf("bgp: import policy: %w", err))
	}
	if err := s.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies:      []*api.Policy{{Name: learnNothing.Name}},
		DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}}); err != nil {
		return fail(fmt.Errorf("bgp: import policy: %w", err))
	}
	// Every peer's status entry exists before the watch starts: GoBGP's
	// watch goroutine (peerEvent) changes entries while the loop below
	// still adds peers, and an append then would race with it and, when
	// it moved the slice, lose the states recorded meanwhile (a session
	// shown idle for good).
	for _, p := range b.Peers {
		g.peers = append(g.peers, PeerStatus{Address: p.Address, ASN: p.ASN, State: "idle"})
	}
	wctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	if err := s.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: g.peerEvent}, server.WatchPeer()); err != nil {
		cancel()
		return fail(fmt.Errorf("bgp: watch: %w", err))
	}
	hold := uint64(b.HoldTime / time.Second)
	for _, p := range b.Peers {
		peer := &api.Peer{
			Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
			Timers: &api.Timers{Config: &api.TimersConfig{
				HoldTime: hold, KeepaliveInterval: max(hold/3, 1),
				ConnectRetry: uint64(max(retry/time.Second, 1)), IdleHoldTimeAfterReset: 1,
			}},
			Transport: &api.Transport{RemotePort: uint32(p.Port)},
			AfiSafis: []*api.AfiSafi{
				{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
				{Config: &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}, Enabled: true}},
			},
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peer}); err != nil {
			cancel()
			return fail(fmt.Errorf("bgp: peer %s: %w", p.Address, err))
		}
	}
	poll := cfg.FailedPoll
	if poll <= 0 {
		poll = failedPollEvery
	}
	// Its own context, ended and waited for before the server stops: a
	// ListPeer of a stopping server need not return.
	pctx, pcancel := context.WithCancel(context.Background())
	g.pollStop, g.pollDone = pcancel, make(chan struct{})
	go func() {
		defer close(g.pollDone)
		g.watchFailed(pctx, poll)
	}()
	log.Info("bgp: speaker started", "asn", b.ASN, "router_id", rid, "hold_time", b.HoldTime, "peers", len(b.Peers))
	return g, nil
}

// peerEvent records a session's state change.
func (g *GoBGP) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	addr := ev.Peer.State.NeighborAddress
	state := stateName(ev.Peer.State.SessionState)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := range g.peers {
		p := &g.peers[i]
		if p.Address != addr || p.State == state {
			continue
		}
		if p.Established() || state == StateEstablished {
			p.Since = at
		}
		old := p.State
		p.State = state
		if state == StateEstablished || old == StateEstablished {
			g.log.Info("bgp: session", "peer", addr, "asn", p.ASN, "state", state, "was", old, "reason", ev.Peer.State.DisconnectMessage)
		}
	}
}

// stateName is GoBGP's BGP_FSM_ESTABLISHED as "established".
func stateName(s gbgp.FSMState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "BGP_FSM_"))
}

// Announce originates prefix (a VIP's /32 or /128) with nextHop.
func (g *GoBGP) Announce(prefix netip.Prefix, nextHop netip.Addr) error {
	p, err := path(prefix, nextHop)
	if err != nil {
		return err
	}
	_, err = g.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}})
	return err
}

// Withdraw stops originating prefix.
func (g *GoBGP) Withdraw(prefix netip.Prefix) error {
	p, err := path(prefix, netip.Addr{})
	if err != nil {
		return err
	}
	return g.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}})
}

// path is the route for prefix: origin IGP, an empty AS path (GoBGP
// prepends the director's ASN towards eBGP peers) and the next hop.
func path(prefix netip.Prefix, nextHop netip.Addr) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("bgp: %s: %w", prefix, err)
	}
	attrs := []gbgp.PathAttributeInterface{
		gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		gbgp.NewPathAttributeAsPath([]gbgp.AsPathParamInterface{}),
	}
	family := gbgp.RF_IPv4_UC
	if prefix.Addr().Is6() {
		family = gbgp.RF_IPv6_UC
	}
	if nextHop.IsValid() {
		var nh gbgp.PathAttributeInterface
		if nextHop.Is4() {
			nh, err = gbgp.NewPathAttributeNextHop(nextHop)
		} else {
			nh, err = gbgp.NewPathAttributeMpReachNLRI(family, []gbgp.PathNLRI{{NLRI: nlri}}, nextHop)
		}
		if err != nil {
			return nil, fmt.Errorf("bgp: next hop %s: %w", nextHop, err)
		}
		attrs = append(attrs, nh)
	}
	// Without a next hop it is a withdrawal (GoBGP asks for one otherwise).
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: attrs, Withdrawal: !nextHop.IsValid()}, nil
}

// Peers reports the sessions in configuration order.
func (g *GoBGP) Peers() []PeerStatus {
	g.mu.Lock()
	out := append([]PeerStatus(nil), g.peers...)
	g.mu.Unlock()
	for i := range out {
		if !out[i].Established() {
			continue
		}
		_ = g.s.ListPeer(context.Background(), &api.ListPeerRequest{Address: out[i].Address.String()}, func(p *api.Peer) {
			if t := p.GetTimers().GetState(); t != nil {
				out[i].HoldTime = time.Duration(t.NegotiatedHoldTime) * time.Second
			}
		})
	}
	return out
}

// Stop closes every session (a Cease notification tells the peers to drop
// the routes at once) and stops the server, waiting at most stopTimeout.
// GoBGP's Stop does both: stopping the sessions first as well made its
// own stop fail, and log an error, on every clean shutdown.
func (g *GoBGP) Stop() {
	if g.pollStop != nil {
		g.pollStop()
		select {
		case <-g.pollDone:
		case <-time.After(stopTimeout):
		}
	}
	done := make(chan struct{})
	go func() {
		g.s.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopTimeout):
		g.log.Warn("bgp: the speaker did not stop in time; exiting anyway", "after", stopTimeout)
	}
	g.cancel()
}

// stopTimeout bounds Stop: a peer that does not take its Cease must not
// hold up the director's exit.
const stopTimeout = 3 * time.Second

// atLeast passes on the records at its level or above.
type atLeast struct {
	slog.Handler
	min slog.Leveler
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(as []slog.Attr) slog.Handler {
	return atLeast{h.Handler.WithAttrs(as), h.min}
}

func (h atLeast) WithGroup(name string) slog.Handler {
	return atLeast{h.Handler.WithGroup(name), h.min}
}

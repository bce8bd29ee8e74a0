package bgp

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"github.com/osrg/gobgp/v4/api"
)

// A session that never comes up (a peer ASN the router does not have, a
// router that refuses the director's OPEN, a wrong MD5 password) left no
// trace above GoBGP's debug level: GoBGP's watch reports the first state
// of such a session and, in 4.8, none of its later trips through OpenSent
// and back, so the VIPs were never announced without a word. The speaker
// reads its sessions' NOTIFICATION counters instead, every
// failedPollEvery, and warns about a session that is not established
// and exchanged one since the last look, at most once per
// failedLogEvery for each peer and direction.

// failedPollEvery is how often watchFailed reads the sessions.
const failedPollEvery = 5 * time.Second

// failedLogEvery bounds the warnings about one peer's failing session.
const failedLogEvery = 5 * time.Minute

// notifications are a session's NOTIFICATION messages, sent and
// received, as GoBGP counts them.
type notifications struct{ sent, received uint64 }

// watchFailed polls the sessions until ctx ends (Stop).
func (g *GoBGP) watchFailed(ctx context.Context, every time.Duration) {
	seen := map[netip.Addr]notifications{}
	logged := map[string]time.Time{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			_ = g.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
				g.checkFailed(p, seen, logged, now)
			})
		}
	}
}

// checkFailed warns about p's session if it is not established and a
// NOTIFICATION went either way since the last look.
func (g *GoBGP) checkFailed(p *api.Peer, seen map[netip.Addr]notifications, logged map[string]time.Time, now time.Time) {
	st := p.GetState()
	addr, err := netip.ParseAddr(st.GetNeighborAddress())
	if err != nil {
		return
	}
	msgs := st.GetMessages()
	n := notifications{sent: msgs.GetSent().GetNotification(), received: msgs.GetReceived().GetNotification()}
	was, known := seen[addr]
	seen[addr] = n
	if !known || st.GetSessionState() == api.PeerState_SESSION_STATE_ESTABLISHED {
		return
	}
	warn := func(dir, why string) {
		key := addr.String() + " " + dir
		if last, ok := logged[key]; ok && now.Sub(last) < failedLogEvery {
			return
		}
		logged[key] = now
		g.log.Warn("bgp: session not established: "+why, "peer", addr, "asn", st.GetPeerAsn(), "state", apiStateName(st.GetSessionState()),
			"notifications_sent", n.sent, "notifications_received", n.received)
	}
	if n.sent > was.sent {
		warn("sent", "this director closed it (NOTIFICATION sent): an OPEN it refuses (check bgp.peers[].asn against the router's own AS) or a hold timer that ran out")
	}
	if n.received > was.received {
		warn("received", "the router closed it (NOTIFICATION received): check the router's neighbor for this address and bgp.asn")
	}
}

// apiStateName is GoBGP's API state SESSION_STATE_ACTIVE as "active", as
// stateName names the FSM's.
func apiStateName(s api.PeerState_SessionState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SESSION_STATE_"))
}

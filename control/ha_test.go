package control

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
)

func haSnapshot() Snapshot {
	s := fixtureSnapshot()
	s.HA = &HAStatus{Family: "ipv4", State: "BACKUP", VRID: 51, Priority: 150, Master: netip.MustParseAddr("198.18.0.3"), MasterPriority: 200,
		AdvertInterval: 0.1, Since: s.Time.Add(-3 * time.Second), Transitions: 1, Received: 30, Sent: 0,
		Ignored: map[string]uint64{"ttl": 1, "version": 0, "vrid": 2, "checksum": 0, "malformed": 0}}
	return s
}

// haSnapshot6 has both virtual routers: IPv4 backup, IPv6 master.
func haSnapshot6() Snapshot {
	s := haSnapshot()
	s.HA6 = &HAStatus{Family: "ipv6", State: "MASTER", VRID: 51, Priority: 150, Master: netip.MustParseAddr("fe80::2"), MasterPriority: 150,
		AdvertInterval: 0.1, Since: s.Time.Add(-2 * time.Second), Transitions: 2, Sent: 12, Ignored: map[string]uint64{}}
	return s
}

// haSnapshotOnly6 has the IPv6 virtual router alone (every VIP IPv6).
func haSnapshotOnly6() Snapshot {
	s := haSnapshot6()
	s.HA, s.HA6 = s.HA6, nil
	return s
}

// haSnapshotFault is haSnapshot with the link down.
func haSnapshotFault() Snapshot {
	s := haSnapshot()
	h := *s.HA
	h.State, h.Master, h.MasterPriority = "FAULT", netip.Addr{}, 0
	s.HA = &h
	return s
}

// TestIpvsadmListHA: -L -n gains one HA line with ha:, the other layouts
// none; without ha: the listing is the golden one, byte for byte.
func TestIpvsadmListHA(t *testing.T) {
	cfg := fixtureConfig(t)
	for _, tc := range []struct {
		snap   Snapshot
		args   string
		suffix string
	}{
		{haSnapshot(), "-L -n", "\nHA BACKUP for 3s vrid 51 priority 150 master 198.18.0.3 (priority 200)\n"},
		{haSnapshot6(), "-L -n", "\nHA ipv4 BACKUP for 3s vrid 51 priority 150 master 198.18.0.3 (priority 200)\n" +
			"HA ipv6 MASTER for 2s vrid 51 priority 150 master fe80::2 (priority 150)\n"},
		{haSnapshotOnly6(), "-L -n", "\nHA ipv6 MASTER for 2s vrid 51 priority 150 master fe80::2 (priority 150)\n"},
		{haSnapshotFault(), "-L -n", "\nHA FAULT for 3s vrid 51 priority 150 master none heard\n"},
		{haSnapshot(), "-L -n --stats", ""},
		{haSnapshot(), "-L -n -t 198.18.0.100:443", ""},
		{fixtureSnapshot(), "-L -n", ""},
	} {
		x := &ipvsadmRunner{take: func(bool) Snapshot { return tc.snap }, ed: fixedConfig{cfg}}
		got := x.run(context.Background(), strings.Fields(tc.args))
		c, _ := parseCommand(strings.Fields(tc.args))
		var plain strings.Builder
		if err := writeIpvsadmList(&plain, tc.snap, nil, cfg, c.list); err != nil {
			t.Fatal(err)
		}
		want := plain.String() + strings.TrimPrefix(tc.suffix, "\n")
		if got.Output != want {
			t.Errorf("%s: got\n%s\nwant\n%s", tc.args, got.Output, want)
		}
	}
}

// fixedConfig is an Editor that only reads.
type fixedConfig struct{ cfg *config.Config }

func (f fixedConfig) Config() *config.Config     { return f.cfg }
func (f fixedConfig) Apply(*config.Config) error { return nil }
func (f fixedConfig) ZeroCounters()              {}
func (f fixedConfig) ZeroService(config.Protocol, netip.AddrPort) bool {
	return false
}
func (f fixedConfig) Edit(func(*config.Config) (*config.Config, error)) error {
	return nil
}

func TestHAMetrics(t *testing.T) {
	body := scrapeMetrics(t, haSnapshot6())
	for _, want := range []string{
		`drlb_ha_state{family="ipv4",state="BACKUP"} 1`,
		`drlb_ha_state{family="ipv4",state="MASTER"} 0`,
		`drlb_ha_state{family="ipv4",state="FAULT"} 0`,
		`drlb_ha_transitions_total{family="ipv4"} 1`,
		`drlb_ha_adverts_received_total{family="ipv4"} 30`,
		`drlb_ha_adverts_sent_total{family="ipv4"} 0`,
		`drlb_ha_adverts_ignored_total{family="ipv4",reason="vrid"} 2`,
		`drlb_ha_adverts_ignored_total{family="ipv4",reason="ttl"} 1`,
		`drlb_ha_state{family="ipv6",state="MASTER"} 1`,
		`drlb_ha_adverts_sent_total{family="ipv6"} 12`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

package control

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/forwarder"
)

// TestSnapshotJSON pins the field names of `drlb ctl list -o json`, a
// user-facing format: renaming a Go field must not rename its JSON key.
func TestSnapshotJSON(t *testing.T) {
	s := Snapshot{
		Time:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		MaxConns: 4096,
		Services: []Service{{
			Protocol: "tcp", VIP: netip.MustParseAddr("198.18.0.100"), Port: 80, Scheduler: "wrr",
			Persistence: "5m0s", Connections: 7, InPackets: 70, InBytes: 7000,
			RealServers: []Real{{
				Address: netip.MustParseAddr("198.18.0.11"), MAC: "02:00:00:00:00:11", Weight: 3, State: "up",
				Active: 1, Inactive: 2, Persistent: 1, Connections: 7, InPackets: 70, InBytes: 7000,
			}},
		}},
		Frames: map[string]uint64{"new": 7},
		ConnEntries: []ConnEntry{{
			Protocol: "tcp", Client: netip.MustParseAddrPort("198.18.1.10:40000"),
			Virtual: netip.MustParseAddrPort("198.18.0.100:80"), Real: netip.MustParseAddr("198.18.0.11"),
			State: "ESTABLISHED", Expires: 899,
		}},
		ConnEntriesOmitted: 2,
		Link:               map[string]uint64{"rx_dropped": 1},
		ARP:                map[string]uint64{"replies": 1},
		Neighbors:          map[string]uint64{"accepted": 1},
	}
	got, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2026-01-02T03:04:05Z","max_conns":4096,` +
		`"services":[{"protocol":"tcp","vip":"198.18.0.100","port":80,"scheduler":"wrr","persistence":"5m0s",` +
		`"conns":7,"in_packets":70,"in_bytes":7000,"realservers":[{"address":"198.18.0.11","mac":"02:00:00:00:00:11",` +
		`"weight":3,"state":"up","active_conns":1,"inactive_conns":2,"persistent":1,"conns":7,"in_packets":70,"in_bytes":7000}]}],` +
		`"frames":{"new":7},` +
		`"conns":[{"protocol":"tcp","client":"198.18.1.10:40000","virtual":"198.18.0.100:80","real":"198.18.0.11",` +
		`"state":"ESTABLISHED","expires_seconds":899}],"conns_omitted":2,` +
		`"link":{"rx_dropped":1},"arp":{"replies":1},"neighbors":{"accepted":1}}`
	if string(got) != want {
		t.Errorf("JSON:\n got %s\nwant %s", got, want)
	}
}

// TestSnapshotJSONNoRealServers: a service without real servers (ipvsadm
// -A before its -a) lists "realservers": [], as every other list of the
// JSON (bgp's peers and vips) is an array even when empty, never null: a
// script iterating over it (jq '.services[].realservers[]') must not fail.
func TestSnapshotJSONNoRealServers(t *testing.T) {
	cfg, err := config.Parse("rules", []byte("-A -t 198.18.0.100:80 -s rr\n"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := forwarder.New(cfg, forwarder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(Take(f, 4096, nil))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"realservers":[]`) {
		t.Errorf("a service without real servers: %s, want \"realservers\":[]", got)
	}
}

package control

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// HAStatus is one VRRP virtual router of the director (one per address
// family of the VIPs), in a Snapshot when the config has an ha: block.
type HAStatus struct {
	// Family is the virtual router's address family: "ipv4" or "ipv6"
	// (IPv6 adverts go from the link-local address to ff02::12).
	Family   string `json:"family"`
	State    string `json:"state"` // INIT, BACKUP, MASTER or FAULT
	VRID     int    `json:"vrid"`
	Priority int    `json:"priority"`
	// Master is the current master's address (this director's own while
	// MASTER; zero while no master was heard).
	Master         netip.Addr `json:"master,omitzero"`
	MasterPriority int        `json:"master_priority,omitempty"`
	AdvertInterval float64    `json:"advert_interval_seconds"` // the master's
	Since          time.Time  `json:"since,omitzero"`
	Transitions    uint64     `json:"transitions"`
	Received       uint64     `json:"adverts_received"`
	Sent           uint64     `json:"adverts_sent"`
	SendErrors     uint64     `json:"advert_send_errors"`
	// Ignored counts adverts ignored by reason: ttl, version, vrid,
	// checksum, addr_list (our VRID, another address list), malformed.
	Ignored map[string]uint64 `json:"adverts_ignored"`
	// AddrListTaken counts adverts whose address list differs from
	// ours, taken all the same: the list follows the VIPs (YAML, IPv6).
	AddrListTaken uint64 `json:"adverts_addr_list_taken"`
	// Sync is connection sync with the peers (nil without ha.sync; in
	// Snapshot.HA only).
	Sync *SyncStatus `json:"sync,omitempty"`
}

// HAInstances are the snapshot's VRRP virtual routers: HA, then HA6 when
// there are both (none without ha:).
func (s Snapshot) HAInstances() []*HAStatus {
	var out []*HAStatus
	for _, h := range []*HAStatus{s.HA, s.HA6} {
		if h != nil {
			out = append(out, h)
		}
	}
	return out
}

// SyncStatus is the connection sync side of HAStatus.
type SyncStatus struct {
	Peers []netip.Addr `json:"peers"`
	// Bulk says where the bulk copy of the table at start stands:
	// "waiting", "done" (from BulkFrom, BulkEntries entries, BulkTook),
	// "incomplete" (answers kept arriving with fewer entries than they
	// sent; preemption allowed with what arrived) or "timeout" (no peer
	// answered; preemption allowed all the same).
	Bulk        string     `json:"bulk"`
	BulkFrom    netip.Addr `json:"bulk_from,omitzero"`
	BulkEntries uint64     `json:"bulk_entries"`
	BulkTook    float64    `json:"bulk_seconds"`
	// Messages sent (one per peer), refused by the socket, and received.
	Sent       uint64 `json:"messages_sent"`
	SendErrors uint64 `json:"send_errors"`
	Received   uint64 `json:"messages_received"`
	// Rejected counts dropped messages by reason: bad_mac, replay,
	// unknown_peer, malformed.
	Rejected map[string]uint64 `json:"messages_rejected"`
	// Entries counts received entries by what became of them: applied,
	// ended, unknown_service, unknown_server, invalid, table_full.
	Entries map[string]uint64 `json:"entries"`
	// Dropped counts events the data path could not hand to the sender
	// (its queue was full).
	Dropped uint64 `json:"events_dropped"`
}

// SyncRejectReasons are the reasons a sync message is dropped.
var SyncRejectReasons = []string{"bad_mac", "replay", "unknown_peer", "malformed"}

// HAStates are the states drlb_ha_state reports, one series each.
var HAStates = []string{"INIT", "BACKUP", "MASTER", "FAULT"}

// WriteHA prints the HA lines of `drlb ctl -L -n` and `drlb ctl list`
// (nothing without an ha: block): one per virtual router, named by its
// family unless it is the IPv4 one alone (`HA MASTER ...`, as before IPv6
// adverts), then the sync line.
func WriteHA(w io.Writer, s Snapshot) {
	insts := s.HAInstances()
	if len(insts) == 0 {
		return
	}
	for _, h := range insts {
		master := "none heard"
		if h.Master.IsValid() {
			master = fmt.Sprintf("%s (priority %d)", h.Master, h.MasterPriority)
		}
		since := ""
		if !h.Since.IsZero() && !s.Time.IsZero() {
			since = fmt.Sprintf(" for %s", s.Time.Sub(h.Since).Truncate(time.Second))
		}
		family := ""
		if len(insts) > 1 || h.Family == "ipv6" {
			family = h.Family + " "
		}
		fmt.Fprintf(w, "HA %s%s%s vrid %d priority %d master %s\n", family, h.State, since, h.VRID, h.Priority, master)
	}
	if y := s.HA.Sync; y != nil {
		peers := make([]string, len(y.Peers))
		for i, p := range y.Peers {
			peers[i] = p.String()
		}
		bulk := y.Bulk
		if y.Bulk == "done" {
			bulk = fmt.Sprintf("done (%s, %d entries, %s)", y.BulkFrom, y.BulkEntries, time.Duration(y.BulkTook*float64(time.Second)).Round(time.Millisecond))
		}
		var rejected uint64
		for _, n := range y.Rejected {
			rejected += n
		}
		fmt.Fprintf(w, "Sync peers %s bulk %s sent %d received %d rejected %d dropped %d\n",
			strings.Join(peers, ","), bulk, y.Sent, y.Received, rejected, y.Dropped)
	}
}

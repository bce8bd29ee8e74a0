package control

import (
	"fmt"
	"io"
	"net/netip"
	"time"
)

// HAStatus is the director's VRRP side, in a Snapshot when the config has
// an ha: block.
type HAStatus struct {
	State    string `json:"state"` // INIT, BACKUP or MASTER
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
	// checksum, malformed.
	Ignored map[string]uint64 `json:"adverts_ignored"`
}

// HAStates are the states drlb_ha_state reports, one series each.
var HAStates = []string{"INIT", "BACKUP", "MASTER"}

// WriteHA prints the one HA line of `drlb ctl -L -n` and `drlb ctl list`
// (nothing without an ha: block).
func WriteHA(w io.Writer, s Snapshot) {
	h := s.HA
	if h == nil {
		return
	}
	master := "none heard"
	if h.Master.IsValid() {
		master = fmt.Sprintf("%s (priority %d)", h.Master, h.MasterPriority)
	}
	since := ""
	if !h.Since.IsZero() && !s.Time.IsZero() {
		since = fmt.Sprintf(" for %s", s.Time.Sub(h.Since).Truncate(time.Second))
	}
	fmt.Fprintf(w, "HA %s%s vrid %d priority %d master %s\n", h.State, since, h.VRID, h.Priority, master)
}

package config

import (
	"bytes"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// Config is a whole director configuration, validated. Every field is filled:
// defaults are applied by Parse, so consumers never guess.
type Config struct {
	// Interface is the director's LAN interface ("" in a file used only for replay).
	Interface string
	// VLAN, on a trunk port, is the 802.1Q VLAN ID (1..4094) the
	// director's own frames carry: announcements and its ARP/NDP requests
	// for real servers (answers and forwarded frames keep the tag of the
	// frame they answer or forward; ARP and solicitations for a VIP are
	// answered on this VLAN only). 0 = untagged, answered on any VLAN.
	VLAN     int
	Services []Service
	Timeouts Timeouts
	// MaxConns bounds the connection table (default DefaultMaxConns).
	MaxConns int
	// BGP, if set, announces the VIPs to routers (see BGP); nil = the
	// VIPs are on the LAN and the director answers ARP/NDP for them.
	BGP *BGP
	// HA, if set, shares the VIPs with other directors by VRRP: only the
	// master answers ARP/NDP for them (see HA); nil = this director
	// always answers.
	HA *HA
	// Lines maps the YAML field path of a setting outside the services
	// ("interface", "max_conns", "ha.vrid", "bgp.peers", ...) to its line
	// in the file Parse read, for messages (LineOf); a setting the file
	// does not set (a default) has none, and a Config built in code has
	// no map. Services, real servers and sorry servers carry their own
	// Line instead: a drlb ctl change adds and removes them, and a path
	// (services[2]) would then name another.
	Lines map[string]int
}

// LineOf is the line of the file where the setting at path (a YAML
// field path, see Lines) was written; 0 for none.
func (c *Config) LineOf(path string) int {
	if c == nil {
		return 0
	}
	return c.Lines[path]
}

// NoteOf is LineNote for the setting at path: " (line N)" where the file
// sets it, "" where it does not (a default, a removed block).
func (c *Config) NoteOf(path string) string { return LineNote(c.LineOf(path)) }

// DefaultMaxConns is the connection table bound when the config names none.
const DefaultMaxConns = 1 << 20

// Protocol is an IP protocol number a virtual service matches.
type Protocol uint8

const (
	TCP Protocol = 6
	UDP Protocol = 17
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// Service is one virtual service: ipvsadm -A.
type Service struct {
	VIP      netip.Addr
	Port     uint16 // 0 = every port of the VIP
	Protocol Protocol
	// Scheduler is an ipvsadm -s name; SchedOptions its flags (sh-port, ...).
	Scheduler    string
	SchedOptions scheduler.Options
	// Persistence is ipvsadm -p (0 = off); PersistenceBits the client
	// netmask length of -M (32 for IPv4, 128 for IPv6 unless set).
	Persistence     time.Duration
	PersistenceBits int
	// DrainTimeout bounds draining: once a real server's weight has been 0
	// this long, its remaining connections end as a removed server's do
	// (their next packet is refused). 0 = drain until they end by
	// themselves, as IPVS does.
	DrainTimeout time.Duration
	RealServers  []RealServer
	// SorryServer, if set, takes the service's new connections while none
	// of its real servers is usable (keepalived's sorry_server); nil = none.
	SorryServer *SorryServer
	// Line is where the service is defined in its file, for messages.
	Line int
}

// RealServer is one real server of a service: ipvsadm -a ... -g.
type RealServer struct {
	Address netip.Addr
	Weight  int // 0 = quiesced; default 1
	// MAC is a static neighbor entry; nil means resolve by ARP/NDP.
	MAC   net.HardwareAddr
	Check *Check // nil = no health check
	Line  int
}

// SorryServer is where a service sends new connections while no real
// server can take them (all down, inhibited, weight 0 or unresolved), as
// keepalived's sorry_server does. It is reached by direct routing like a
// real server, so it must hold the VIP on its loopback too.
type SorryServer struct {
	Address netip.Addr
	// MAC is a static neighbor entry; nil means resolve by ARP/NDP.
	MAC net.HardwareAddr
	// Inhibit keeps the sorry server's connections when a real server
	// comes back (keepalived's sorry_server_inhibit); without it they end
	// on their next packet, as when keepalived removes the sorry server.
	Inhibit bool
	Line    int
}

// Check is a keepalived-style health check.
type Check struct {
	Type string // "tcp", "http", "https", "udp" or "dns"
	Port uint16 // 0 = the service port
	// URLs are the pages an http or https check gets, in order; every one
	// must pass (keepalived's url blocks). Parse gives an http(s) check
	// one URL, DefaultCheckPath expecting DefaultCheckStatus, when the
	// file names none.
	URLs []URL
	// Host is the Host header of http(s) checks (keepalived's
	// virtualhost); "" = the real server's address and port.
	Host string
	// UDP checks (keepalived's UDP_CHECK): Payload is the datagram sent
	// (nil: 32 random bytes, as keepalived). The check fails on an ICMP
	// error (port or host unreachable); with RequireReply it also fails
	// when no answer comes within Timeout. Reply, if set, is what the
	// answer must start with (compared over the shorter of the two),
	// ignoring the bits set in ReplyMask (keepalived's x digits, nil =
	// none), and the answer's length must be ReplyMin..ReplyMax.
	Payload            []byte
	RequireReply       bool
	Reply, ReplyMask   []byte
	ReplyMin, ReplyMax int
	// DNS checks (keepalived's DNS_CHECK) send one query over UDP,
	// whatever the service's protocol: DNSName is the name asked for,
	// always absolute (a trailing dot is implied: "example.org" is
	// "example.org."; "." is the root), DNSType the record type, upper
	// case, one of DNSTypes. Parse gives a dns check DefaultDNSName and
	// DefaultDNSType when the file names none.
	DNSName, DNSType string
	Interval         time.Duration
	Timeout          time.Duration
	Retries          int // consecutive failures before marking down
	// RetryDelay is the wait before the next probe after a failure while
	// the server is still up (keepalived's delay_before_retry); Interval
	// otherwise.
	RetryDelay time.Duration
	// Inhibit sets weight 0 when down instead of removing the server.
	Inhibit bool
}

// Identity is c without its timers (Interval, Retries, RetryDelay) and
// without Inhibit, which says what a failure does to the real server: what
// the check probes and how (type, port, URLs, host, timeout, the UDP and
// DNS fields). A reload that changes only the rest keeps the check's
// verdict, as keepalived matches a reloaded checker to the running one
// (ipwrapper.c migrate_checkers, compare_conn_opts: the destination and
// connect_timeout, and for HTTP_GET the URLs and virtualhost, never
// delay_loop, retry or delay_before_retry). A field added to Check is part
// of the identity unless it is cleared here.
func (c Check) Identity() Check {
	c.Interval, c.Retries, c.RetryDelay, c.Inhibit = 0, 0, 0, false
	return c
}

// SameIdentity reports whether a and b are the same check but for their
// timers and Inhibit (Identity); two nil checks are, a nil and a non-nil
// one are not.
func SameIdentity(a, b *Check) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a.Identity(), b.Identity())
}

// Clone returns a deep copy of c (nil for nil): a Check holds slices, so
// a plain copy would share them.
func (c *Check) Clone() *Check {
	if c == nil {
		return nil
	}
	k := *c
	k.URLs = slices.Clone(c.URLs)
	for i := range k.URLs {
		k.URLs[i].Status = slices.Clone(k.URLs[i].Status)
	}
	k.Payload = bytes.Clone(c.Payload)
	k.Reply = bytes.Clone(c.Reply)
	k.ReplyMask = bytes.Clone(c.ReplyMask)
	return &k
}

// Clone returns a deep copy of s (nil for nil).
func (s *SorryServer) Clone() *SorryServer {
	if s == nil {
		return nil
	}
	c := *s
	c.MAC = slices.Clone(s.MAC)
	return &c
}

// URL is one page an http or https check gets.
type URL struct {
	Path string
	// Status lists the accepted status codes (keepalived's status_code
	// 200-299 404 is {200 299} {404 404}).
	Status []StatusRange
	// Digest is the MD5 of the body as lower-case hex, as keepalived's
	// genhash prints it; "" = the body is not checked.
	Digest string
	// Host is this URL's Host header (keepalived's virtualhost in a url
	// block, which comes before the checker's); "" = the check's Host.
	Host string
}

// StatusRange is a range of HTTP status codes, both ends included.
type StatusRange struct{ Min, Max int }

// Accepts reports whether status is in one of the ranges.
func (u *URL) Accepts(status int) bool {
	for _, r := range u.Status {
		if status >= r.Min && status <= r.Max {
			return true
		}
	}
	return false
}

// Timeouts are connection entry lifetimes per state (ipvsadm --set and the
// IPVS per-state table).
type Timeouts struct {
	TCPEstablished time.Duration // default 900s
	TCPSynRecv     time.Duration // default 60s
	TCPFinWait     time.Duration // default 120s
	TCPClose       time.Duration // default 10s
	UDP            time.Duration // default 300s
}

// DefaultTimeouts are the IPVS defaults.
var DefaultTimeouts = Timeouts{
	TCPEstablished: 900 * time.Second,
	TCPSynRecv:     60 * time.Second,
	TCPFinWait:     120 * time.Second,
	TCPClose:       10 * time.Second,
	UDP:            300 * time.Second,
}

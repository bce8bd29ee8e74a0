package config

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/drlb/drlb/scheduler"
)

// Config is a whole director configuration, validated. Every field is filled:
// defaults are applied by Parse, so consumers never guess.
type Config struct {
	// Interface is the director's LAN interface ("" in a file used only for replay).
	Interface string
	Services  []Service
	Timeouts  Timeouts
	// MaxConns bounds the connection table (default DefaultMaxConns).
	MaxConns int
}

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

// Check is a keepalived-style health check.
type Check struct {
	Type     string // "tcp", "http" or "https"
	Port     uint16 // 0 = the service port
	Path     string // http(s): default "/"
	Status   int    // http(s): expected status, default 200
	Interval time.Duration
	Timeout  time.Duration
	Retries  int // consecutive failures before marking down
	// Inhibit sets weight 0 when down instead of removing the server.
	Inhibit bool
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

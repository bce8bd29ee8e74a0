package config

import "time"

// Defaults Parse fills in for what a file leaves out. Scheduler and weight
// follow ipvsadm, checks follow keepalived's spirit with a faster interval
// (keepalived's delay_loop is 60s; failing over in a few seconds matters more
// here than a quieter real server).
const (
	DefaultWeight = 1
	// DefaultPersistence is IPVS_SVC_PERSISTENT_TIMEOUT (6*60 in
	// libipvs/ip_vs.h): what ipvsadm's parse_timeout gives -p without a
	// value (and ipvsadm -L then shows; its man page's 300 is out of
	// date), and what keepalived sets for persistence_timeout without a
	// value, persistence_granularity alone and a service without a port.
	DefaultPersistence   = 360 * time.Second
	DefaultCheckInterval = 2 * time.Second
	DefaultCheckTimeout  = 1 * time.Second
	DefaultCheckRetries  = 3
	DefaultCheckPath     = "/" // http and https checks
	DefaultCheckStatus   = 200 // http and https checks
	// DefaultUDPReplyMax is the longest answer a udp check with an
	// expected reply accepts unless told otherwise (keepalived's
	// max_reply_length default).
	DefaultUDPReplyMax = 255
	// DefaultDNSName and DefaultDNSType are what a dns check asks for
	// unless told otherwise: the root's SOA record, as keepalived's
	// DNS_CHECK.
	DefaultDNSName = "."
	DefaultDNSType = "SOA"
)

// fullBits is the persistence netmask length that keeps whole client
// addresses apart: the default of ipvsadm -M.
func fullBits(vip6 bool) int {
	if vip6 {
		return 128
	}
	return 32
}

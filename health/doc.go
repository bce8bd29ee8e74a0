// Package health runs keepalived-style health checks against real servers
// and marks them up or down in the forwarder.
//
// Flow: one goroutine per (service, real server) with a check probes the
// real server's own address (not the VIP) from the director every
// interval: a TCP connect; an HTTP/HTTPS GET of each URL expecting one of
// its statuses and, with a digest, the MD5 of the body (keepalived's
// HTTP_GET and SSL_GET; redirects are not followed); a UDP datagram
// that must draw no ICMP error and, if required, an answer matching the
// expected reply (UDP_CHECK); or a DNS query over UDP (DNS_CHECK: a random
// ID, recursion desired, one question) whose answer must come within the
// timeout with the same ID, QR set, RCODE NOERROR, the question echoed
// and at least one answer record (keepalived passes on NOERROR alone;
// answers with another ID or without QR are ignored, as keepalived
// ignores them, and the probe waits on). A failure while the server is up is retried
// after retry_delay (keepalived's delay_before_retry); after `retries`
// consecutive failures the server goes down: removed (no new connections,
// its connections end on their next packet, so clients fail fast) or,
// with inhibit, weight 0 (no new connections, open ones continue). One
// success brings it back, as keepalived does. Servers start up, so a
// director serves at once, but until a check's first pass one failure
// takes its server down (keepalived: "one failure is enough initially").
//
// A Monitor follows configuration changes: Update starts the checks of new
// servers, stops those of removed ones and leaves the others running with
// their state; a check whose timers or inhibit only changed goes on from
// the state of the one it replaces (keepalived's migrate_checkers), and one
// that probes differently starts afresh, one failure from down, as a new
// check does. An HTTP path goes
// into the request line as written, as keepalived sends it. Targets name servers by protocol, VIP, port and address,
// never by index, since a reload moves indexes.
package health

// Package health runs keepalived-style health checks against real servers
// and marks them up or down in the forwarder.
//
// Flow: one goroutine per (service, real server) with a check probes the
// real server's own address (not the VIP) from the director every
// interval: a TCP connect, or an HTTP/HTTPS GET expecting a status. After
// `retries` consecutive failures the server goes down: removed (no new
// connections, its connections end on their next packet, so clients fail
// fast) or, with inhibit, weight 0 (no new connections, open ones
// continue). One success brings it back, as keepalived does. Servers start
// up, so a director serves at once.
//
// A Monitor follows configuration changes: Update starts the checks of new
// servers, stops those of removed ones and leaves the others running with
// their state. Targets name servers by protocol, VIP, port and address,
// never by index, since a reload moves indexes.
package health

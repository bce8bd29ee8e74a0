// Package control exposes a running director's state and takes its
// commands: `drlb ctl` talks to it over a Unix socket that only root (and
// the director's own user) can use, and Prometheus scrapes the same
// counters at /metrics.
//
// Flow: the forwarder keeps its counters in atomics; a request to the
// socket (HTTP over the Unix socket) takes a Snapshot of them (Stats, drop
// reasons, the link's drops, and with bgp: or ha: the BGP, VRRP and sync
// status) without stopping the data path, and answers it as JSON
// (GET /v1/list) or in Prometheus' text format (GET /metrics, also on TCP
// alone with MetricsHandler). `drlb ctl list` prints a Snapshot the way
// `ipvsadm -Ln` prints the kernel's table.
//
// Changes: POST /v1/ipvsadm runs ipvsadm's own command line against an
// Editor (the director: config.EditIpvsadm, then Apply, whole or refused)
// and answers what ipvsadm prints; POST /v1/reload re-reads the config
// file as SIGHUP does; WithBGP adds POST /v1/bgp (`drlb ctl bgp drain` and
// `undrain`).
package control

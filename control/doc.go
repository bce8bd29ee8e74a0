// Package control exposes a running director's state: `drlb ctl` reads it
// over a Unix socket that only root can open, and Prometheus scrapes the
// same counters at /metrics.
//
// Flow: the forwarder keeps its counters in atomics; a request to the
// socket (HTTP over the Unix socket) takes a Snapshot of them (Stats, drop
// reasons) without stopping the data path, and answers it as JSON
// (/v1/list) or in Prometheus' text format (/metrics). `drlb ctl list`
// prints a Snapshot the way `ipvsadm -Ln` prints the kernel's table.
package control

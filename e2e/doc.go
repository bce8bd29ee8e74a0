// Package e2e holds drlb's end-to-end tests: a real lab of network
// namespaces (package testbed), the real drlb binary running as the director
// inside it, real clients (Go's net/http, curl when installed) and packet
// captures that check DR holds on the wire: replies bypass the director,
// only the director answers ARP for the VIP, flows stick to their real
// server, uploads and downloads arrive intact.
//
// The tests need root; they skip without it, but fail when CI=true, so a
// CI run can never hide a broken director behind a skip.
//
// With DRLB_E2E_RACE=1 the director is built with the race detector: a
// data race makes it exit 66 when a test stops it, which fails that test
// (e.g. DRLB_E2E_RACE=1 go test ./e2e -run 'TestKernelFlows|TestCtlLive').
package e2e

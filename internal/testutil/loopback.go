package testutil

import "net/netip"

// LoopbackAddr is the address MainInOwnNetNS puts on the lo of the tests'
// own network namespace, for tests that serve and dial on one host: an
// address of the lab range (198.18.0.0/15), never the host's 127.0.0.1.
var LoopbackAddr = netip.MustParseAddr("198.19.255.254")

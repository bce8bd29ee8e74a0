// Package testutil holds the helpers that drlb's tests used to copy from
// package to package: the decision whether a root-only test runs, skips or
// fails (NeedRoot), the same decision for a tool a test runs, such as
// headless Chromium (NeedTool), and for anything else a test finds
// missing, user namespaces say (Need), network namespace builders for
// tests that need a private network (NewNS, Veth, Do, NetlinkHandle,
// WaitOperUp), a TestMain
// that runs a package's tests in a network namespace of their own, for
// tests that serve and dial on one host (MainInOwnNetNS, NeedOwnNetNS,
// LoopbackAddr, LoopbackAny, HTTPServer), and a reader for the pcap files
// tests capture (ReadPcap).
//
// The rules the helpers enforce, so that a test cannot get them wrong:
//
//   - A test that needs root (or a tool) skips on a laptop, with the
//     reason, but fails under CI=true: there, a skip would let a broken
//     director pass.
//   - Everything is built in namespaces the test owns and is torn down by
//     t.Cleanup, also when the test fails or panics. The root network
//     namespace is never configured.
//   - Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking) only.
//     A test never serves or dials in the host's namespace, its loopback
//     included: health checks against a server of the test's, GoBGP
//     against GoBGP, run in the package's own namespace on LoopbackAddr.
//
// For a whole client-router-director-real-server topology, use package testbed;
// this package builds the small ad-hoc topologies of unit tests. It imports
// nothing from drlb but internal/userns, so any package's tests, lab's
// included, can use it.
package testutil

// Package testbed builds a throw-away LVS-DR test network out of Linux network
// namespaces, shared by `drlb lab`, the end-to-end tests and the benchmarks.
//
// Topology (ARCHITECTURE.md#lab-addresses; IPv6 from the 2001:2::/48 benchmarking range):
//
//	client  198.18.1.10  2001:2:0:1::10
//	   |  (veth, routed link 198.18.1.0/24, 2001:2:0:1::/64)
//	router  198.18.1.1 (eth1)  |  198.18.0.1 (eth0)   ip_forward=1
//	   |  (veth into the bridge)
//	switch  br0 in its own namespace: the LAN 198.18.0.0/24, 2001:2::/64
//	   +-- director   198.18.0.2   2001:2::2     drlb runs here; the VIP is NOT configured
//	   +-- rs1        198.18.0.11  2001:2::11    VIP/32 and VIP6/128 on lo, arp_ignore=1
//	   +-- rs2 ...    198.18.0.12  2001:2::12
//	   +-- director2  198.18.0.3, director3 .4   optional (Options.Directors: BGP, ECMP, VRRP)
//	   +-- lanclient  198.18.0.50  2001:2::50    optional (Options.LANClient)
//
//	VIP 198.18.0.100, VIP6 2001:2::100
//	routed VIPs (Options.RoutedVIP, off the LAN) 198.18.2.100, 2001:2:0:2::100
//
// Options.DirectorQueues gives the directors' interfaces several receive
// queues, for one AF_XDP worker per queue; BIRD 2 can run on the router
// (Lab.StartBIRD) for the BGP tests and the scale-out scenario.
//
// Packet flow in the lab: the client sends to the VIP through the router; the
// router ARPs (or solicits) for the VIP on the LAN; the real servers keep quiet
// (arp_ignore=1) and the director — drlb, not its kernel — answers. drlb
// rewrites only the destination MAC and sends the byte-identical frame to a
// real server, which accepts it because the VIP is on its lo; the reply leaves
// the real server with source VIP straight to the router (its default
// gateway), never through the director.
//
// Nothing is configured in the root namespace: the bridge lives in a private
// "switch" namespace and every veth is created there with its peer placed
// directly into the host's namespace. Namespaces are named
// "<Options.Name>-<host>" and appear under /var/run/netns, so `ip netns exec`
// works for debugging while a lab runs.
//
// Teardown. Always pair New with Close, which is idempotent and safe to call
// from any goroutine:
//
//	l, err := testbed.New(ctx, testbed.Options{})
//	if err != nil { return err }
//	defer l.Close()              // also runs when the caller panics
//	stop := l.CloseOnSignal(ctx) // Ctrl-C / SIGTERM: tear down, then the signal's usual effect
//	defer stop()
//
// In tests use t.Cleanup(func() { l.Close() }), which also runs after a failed
// or panicking test. A run that was killed (SIGKILL) leaves its namespaces
// behind: Cleanup(prefix) and CleanupStale remove them.
//
// Building a lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); without it New
// returns an error wrapping ErrNotRoot.
package testbed

// Package lab is `drlb lab`: it builds a throw-away LVS-DR network in
// namespaces (package testbed), configures and explains it the way the LVS-DR
// setup guides do, runs the real director on it, sends requests through the
// VIP and walks one of them hop by hop from packets captured on the wire.
//
// The packet flow it shows, and checks (so the lab doubles as a self-test):
//
//	client --IP CIP->VIP--> router: who-has VIP? the director answers (drlb, not
//	        its kernel); the real servers hear the broadcast and stay silent
//	router --frame dst=MAC(director)--> director (drlb)
//	director --same IP packet, byte for byte, dst=MAC(real server)--> real server
//	real server --IP VIP->CIP, dst=MAC(router)--> router --> client
//	        (the reply never crosses the director)
//
// Every interface's frames are saved as a pcap file for Wireshark.
//
// Scenarios (Options.Scenario, `drlb lab --scenario NAME`) break one point
// of that flow at a time, each in its own lab and its own file
// (scenario_*_linux.go: arpflux, forwarding, restart, mtu, scaleout,
// failover), with the same runner, captures and checks:
// arp-flux (a real server answers ARP for the VIP), forwarding-on (the
// director's kernel routes its copy of each frame), restart (connections
// through a director restart, rr against mh), mtu (a real server with a
// smaller MTU) and scale-out (two directors announcing a routed VIP by BGP
// to BIRD 2 on the router, ECMP over both, one withdrawing; it needs bird,
// testbed.StartBIRD) and failover (two directors sharing the VIP by VRRP,
// the master killed, the backup taking over). Options.HTML writes the run as one self-contained page:
// the topology and the walked request (or the scenario) as SVG drawings
// made from the captures, and the check table.
//
// The director is the drlb binary itself (Options.Executable), started as
// `drlb run -c CONFIG` in the director's namespace: a child process inherits
// the network namespace of the thread that forks it (testbed.Lab.Do).
package lab

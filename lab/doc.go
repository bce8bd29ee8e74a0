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
// The director is the drlb binary itself (Options.Executable), started as
// `drlb run -c CONFIG` in the director's namespace: a child process inherits
// the network namespace of the thread that forks it (testbed.Lab.Do).
package lab

// Package ethtool reads and switches the on/off offloads of a network
// interface (GRO, TSO, GSO, rx- and tx-checksumming) with the legacy
// SIOCETHTOOL ioctls, as `ethtool -k` and `ethtool -K` do.
//
// Why drlb cares: the director reads frames with an AF_PACKET socket, and
// what that socket sees depends on these switches. With GRO on, the kernel
// merges a TCP flow's segments into super-frames far larger than the MTU
// before drlb reads them; with TSO/GSO on at a local sender, veth carries the
// sender's unsegmented super-frames end to end; with tx-checksumming on, a
// local sender's frames carry only a partial checksum. The link package
// copes with all of these (PACKET_VNET_HDR), and the end-to-end tests use this
// package to prove it on every combination.
//
// RxQueues reads how many receive queues an interface uses (ETHTOOL_GCHANNELS,
// as `ethtool -l`): `drlb run -io auto` and -io afxdp plan their AF_XDP
// ports by it.
//
// Get, Set and RxQueues act in the network namespace of the calling thread: to
// reach an interface in a lab namespace, call them inside testbed's Lab.Do.
package ethtool

// Package link is the director's frame I/O: a Port reads batches of
// Ethernet frames from an interface and writes frames back out of it.
//
// The forwarding loop reads a batch, rewrites each frame in place (only the
// MAC addresses change; the IP packet stays byte-identical) and writes the
// forwarded ones back out of the same Port, in order. Backends:
//
//   - Open: an AF_PACKET socket (github.com/mdlayher/packet) batched with
//     recvmmsg/sendmmsg and driven by the Go runtime poller;
//   - OpenSplit: per worker a Port over AF_PACKET sockets of one fanout
//     group, a main one and one for bare TCP SYNs, read main first, so a
//     SYN flood overflows only the SYN queue (ARCHITECTURE.md, "The SYN
//     socket"), and with the eBPF fanout program a third one for bare SYNs
//     from clients in the trusted map (TrustClients: clients that
//     completed a handshake; ARCHITECTURE.md, "The trusted lane"). These
//     sockets live outside the Go runtime's poller (the port polls them
//     itself), and frames leave through a send-only socket. With
//     Config.KernelFlows each worker's filter is eBPF and refuses the
//     frames of the established flows drlb handed it (FlowPort), leaving
//     them in a per-CPU slot to the tc program AttachVIPDrop attaches,
//     which sends them to the server itself (TCFlowPort;
//     ARCHITECTURE.md, "Established flows forwarded at tc ingress");
//   - OpenXDP: an XDP program redirects VIP frames into three AF_XDP
//     sockets on queue 0 that share one UMEM, split as OpenSplit's
//     (untrusted bare SYNs into the SYN socket's small ring, trusted ones
//     into another, the rest into the main ring), and an AF_PACKET socket
//     reads what XDP passes (ARP, NDP, tagged frames, frames too long
//     for a 2 KiB UMEM chunk); the program may
//     also forward frames itself with XDP_TX: bare SYNs under table
//     pressure (StatelessSYNPort) and the frames of established flows
//     drlb handed it (FlowPort, with Config.KernelFlows);
//   - OpenXDPQueues: OpenXDP's port once per receive queue, one program:
//     a queue's sockets take its own worker's clients (ClientHash, in
//     XDP), the program passes the others to the ports' AF_PACKET
//     fanout group, sorted by the same hash;
//   - Pipe: two connected in-memory Ports, for tests without root.
//
// # The packet path through the AF_PACKET socket
//
// ARCHITECTURE.md#kernel-pitfalls: the raw socket does not see wire frames:
// frames from a local sender (veth, containers) carry a partial TCP/UDP
// checksum (TP_STATUS_CSUMNOTREADY), and bulk TCP arrives as super-frames
// far larger than the MTU (veth carries the sender's TSO segments end to
// end; GRO merges frames too). Forwarded as plain frames, TCP breaks and
// uploads stall. So the socket runs with PACKET_VNET_HDR, and every frame
// crosses it behind a 10-byte virtio-net header:
//
//	recvmmsg slot:  iov[0] = virtio_net_hdr (flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)
//	                iov[1] = buf[4:] (64 KiB: MaxFrame)        cmsg = tpacket_auxdata
//
// The header becomes Frame.Offload. WriteBatch puts the same header in
// front of the frame again, and the kernel completes the checksum and
// segments the super-frame on the way out (in the driver if it can TSO, in
// software otherwise). In the lab this turned 0/3 into 3/3 1 MB uploads, and
// bulk flows cross user space as few large frames instead of many small.
//
// With PACKET_AUXDATA each frame also carries a tpacket_auxdata control
// message. The kernel strips an 802.1Q tag before packet sockets see the
// frame and reports it there (TP_STATUS_VLAN_VALID, tp_vlan_tci,
// tp_vlan_tpid). A VLAN-tagged frame must leave with its tag, so the tag is
// put back: the frame was received 4 bytes into its buffer, the 12 MAC bytes
// move to the front and the tag fills the gap (no payload copy), and the
// checksum offsets in Offload move by 4. Writing a tagged frame needs nothing
// special: the kernel sends it as it is.
//
// The socket is bound to ETH_P_ALL: a socket bound to one ethertype sees
// frames only after VLAN processing has removed the tag. It never reads its
// own transmissions (PACKET_IGNORE_OUTGOING), so a forwarded frame is not
// read and forwarded again; the forwarder must still drop frames whose
// source MAC is the director's own (another director, a loop). A classic BPF
// filter (VIPFilter) keeps everything but ARP, NDP and VIP traffic in the
// kernel. Options are set before the socket starts receiving, so no frame is
// ever queued without them. Optional: PACKET_QDISC_BYPASS, PACKET_FANOUT
// to spread frames over several Ports (Fanout): by the kernel's flow hash,
// or by client address with ClientHash's classic BPF program, which keeps
// a client's fragments and the ICMP errors about it with its connections
// (OpenSplit's program also sends bare SYNs to a second member per worker,
// and trusted clients' to a third).
//
// # Costs
//
// ARCHITECTURE.md#performance: batching is worth about 40% over one system call per
// frame. ReadBatch and WriteBatch use one recvmmsg/sendmmsg per batch on
// preallocated arrays and allocate nothing in steady state (tested with
// testing.AllocsPerRun on a veth pair). An AF_PACKET socket's receive
// slots are two halves of BatchSize buffers of MaxFrame bytes each (8 MiB
// of address space at the default 64; only the pages frames touch become
// resident), filled in turn. Frames returned by ReadBatch point into those
// buffers and stay valid through one more read (ReadAheader: the director
// reads the next batch while it handles this one), until the second
// ReadBatch or TryReadBatch after the one that returned them.
package link

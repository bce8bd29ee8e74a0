// Package conntable is the director's connection table: a bounded,
// allocation-free hash table of connection entries and persistence templates.
//
// Packet flow: for every client frame the forwarder builds a Key (proto,
// client IP and port, VIP and port) and calls Lookup. A hit gives the real
// server the flow is already pinned to; the forwarder refreshes the entry's
// State and timeout (SetTimeout) and rewrites the MAC. A miss on a new flow
// (a SYN, or any frame under a consistent scheduler) asks the scheduler for a
// real server and records the choice with Insert followed by SetTimeout.
// Persistence templates (ipvsadm -p) live in the same table under
// Kind == KindTemplate, keyed by the masked client address, as IPVS does.
//
// Expiry is lazy and incremental: an entry whose time has passed is treated
// as absent and is removed by whichever operation meets it first (Lookup or
// Insert probing over it, Sweep's clock hand, or Delete). Options.OnExpire is
// called exactly once for every entry that leaves the table, so the forwarder
// can keep its per-real-server active/inactive counters exact.
//
// Layout: open addressing with linear probing over one flat []Entry of
// 48-byte entries, backward-shift deletion (no tombstones, so probe runs never
// grow from churn), and a non-power-of-two slot count reached with Lemire's
// multiply-shift range reduction. The slot count is Max*4/3, so at Max live
// entries the load factor is 0.75 and the table costs 64 bytes per connection.
// An empty slot is one whose internal expiry word is 0; no side array needed.
// At 1M connections a lookup costs one random memory access (about 2.5
// adjacent slots): the table is memory-latency bound, not compute bound.
// On Linux a slot array of 16 MiB or more starts on a 2 MiB boundary and is
// advised onto transparent huge pages (slots_linux.go): with 4 KiB pages
// every such lookup also missed the TLB and paid a page walk, which limited
// how many prefetched lookups overlapped. Measured side by side on the
// 2-core VM at 1M flows: a forwarded packet ~600 -> ~450 ns CPU without
// Prefetch, ~300 -> ~275 with it (batch-loaded slots); with each slot
// prefetched (PREFETCHT0) 8 packets ahead of its own, 275-300 -> 247-270
// when old and new binaries alternate in one window. Today the forwarder
// prefetches slots back to back (PrefetchKey, PrefetchHash): under load a
// stream 12 frames ahead, 4 at a time, across the batch boundary
// (forwarder.Ahead, which keeps each key's hash for LookupHash), otherwise
// the whole batch's slots first (forwarder.Prefetch).
//
// A full table refuses Insert with ErrFull, unless Options.Evictable lets
// it make room: Insert then removes an expired entry it meets, else the
// approved live entry (SYN_RECV, for the forwarder) that expires first
// among a bounded scan from a rotating hand (IPVS's drop_entry, bounded).
//
// Pointer lifetime: an *Entry returned by Lookup or Insert points into the
// slot array. It stays valid only until the next call that may mutate the
// table: Insert, Delete, Sweep, or a Lookup (which may lazily remove an
// expired entry and shift others). Re-Lookup after any of those.
//
// A Table is not safe for concurrent use: give each forwarding goroutine its
// own table, or guard it with a lock.
package conntable

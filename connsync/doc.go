// Package connsync is the wire format of connection sync between
// directors (README "Two directors: VRRP failover", issue 12): batches of
// connection-table entries in UDP datagrams, each authenticated with
// HMAC-SHA256 under a shared key and replay-protected by the sender's
// epoch, a sequence number and a timestamp.
//
//	director A --UDP 8848, one datagram per batch, HMAC-SHA256--> director B
//	  header: magic, version, type, count, sender, epoch, seq, time
//	  entries: 64 bytes each (op, protocol, kind, state, ports, client,
//	           VIP, service port, real server, timeout)
//	  trailer: HMAC-SHA256(key, header+entries)
//
// A bulk request (a director that starts, or whose link came back) is
// answered by Bulk datagrams and a BulkDone; the request and its BulkDone
// carry the request's number in one OpRequest record, so that the answer
// to an earlier request is told apart.
//
// It does no I/O beyond the Conn a caller hands it, and encoding and
// parsing allocate nothing.
package connsync

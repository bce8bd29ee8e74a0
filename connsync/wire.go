package connsync

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
	"time"
)

// Port is the UDP port sync datagrams go to and come from (IPVS's sync
// daemon uses it too, on multicast; drlb sends unicast to each peer).
const Port = 8848

// Version is the wire format version in every header.
const Version = 1

// Message types.
const (
	TypeUpdate      uint8 = 1 // live changes: new connections, state changes, ends
	TypeBulkRequest uint8 = 2 // "send me your whole table" (a director that starts)
	TypeBulk        uint8 = 3 // part of an answer to a bulk request
	TypeBulkDone    uint8 = 4 // the answer is complete
)

// Entry operations.
const (
	OpUpsert uint8 = 1 // insert or update the entry
	OpEnd    uint8 = 2 // the connection ended: delete it
	// OpRequest is no connection: the one record of a BulkRequest and of
	// the BulkDone that ends its answer, holding the request's number
	// (AppendRequest, RequestOf), so that a director that asked again
	// (its link came back) can tell the answer to its latest request
	// from one to an earlier request, whose middle the link may have
	// lost. A drlb without it reads no payload of those two types and
	// sends none; EntryAt refuses it.
	//
	// In a BulkDone it also says how many entries the answer carried
	// (AppendBulkDone: flag reqHasEntries in the record's second byte,
	// the count after the number), so that the requester can tell an
	// answer that lost datagrams from a complete one and ask again. A
	// drlb without it reads the number alone (RequestOf), and a BulkDone
	// from one has no count (BulkEndOf: HasEntries false).
	OpRequest uint8 = 3
)

// reqHasEntries, in the second byte of an OpRequest record, says that
// its bytes 12-20 hold the answer's entry count.
const reqHasEntries = 1

// Sizes on the wire.
const (
	HeaderLen = 48
	EntryLen  = 64
	MACLen    = sha256.Size
	// MaxDatagram keeps a datagram within one Ethernet frame with room for
	// IP and UDP headers and a VLAN tag or tunnel.
	MaxDatagram = 1400
	// MaxEntries is how many entries fit in one datagram.
	MaxEntries = (MaxDatagram - HeaderLen - MACLen) / EntryLen
	// MinKeyLen is the shortest key accepted: 128 bits.
	MinKeyLen = 16
)

var magic = [4]byte{'d', 'r', 's', 'y'}

// Entry is one connection-table entry as sync carries it. The service is
// named by its key (protocol, VIP, port) and the real server by address,
// never by the sender's slots, which mean nothing to the receiver.
type Entry struct {
	Op    uint8
	Proto uint8
	Kind  uint8 // conntable.KindConn or KindTemplate
	State uint8
	// CIP, VIP, CPort and VPort are the connection table key.
	CIP, VIP     netip.Addr
	CPort, VPort uint16
	// SvcPort is the service's port (0: the VIP's every-port service).
	SvcPort uint16
	Real    netip.Addr
	// Timeout is the time left before the entry expires (whole
	// milliseconds on the wire, up to about 49 days).
	Timeout time.Duration
}

// Header is a message's header.
type Header struct {
	Type   uint8
	Count  int        // entries that follow
	Sender netip.Addr // the sender's own address; must be the datagram's source
	// Epoch is when the sender started (unix ns): a restarted sender has
	// a larger one and starts its sequence afresh.
	Epoch uint64
	Seq   uint64
	Time  int64 // unix ns when the message was sealed
}

// Parse errors, by what the receiver counts.
var (
	ErrMalformed = errors.New("connsync: malformed message")
	ErrVersion   = errors.New("connsync: unknown version")
	ErrMAC       = errors.New("connsync: bad MAC")
	ErrReplay    = errors.New("connsync: replayed or stale message")
	ErrKey       = errors.New("connsync: key too short")
)

// Codec seals and opens messages with one key. It is not safe for
// concurrent use (it keeps its HMAC state); give each goroutine its own.
type Codec struct {
	mac hash.Hash
	sum [MACLen]byte
}

// NewCodec returns a Codec for key (at least MinKeyLen bytes).
func NewCodec(key []byte) (*Codec, error) {
	if len(key) < MinKeyLen {
		return nil, ErrKey
	}
	return &Codec{mac: hmac.New(sha256.New, key)}, nil
}

// AppendHeader starts a message in b[:0]: the header, with Count 0.
func AppendHeader(b []byte, h *Header) []byte {
	b = append(b[:0], magic[:]...)
	b = append(b, Version, h.Type, 0, 0)
	a := h.Sender.As16()
	b = append(b, a[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Epoch)
	b = binary.BigEndian.AppendUint64(b, h.Seq)
	return binary.BigEndian.AppendUint64(b, uint64(h.Time))
}

// Restamp sets the sequence number and time of the message started in b
// (AppendHeader), not yet sealed: a sender whose goroutines fill
// messages side by side numbers each one as it sends it, in the order
// the messages leave, so that the receiver's replay window (Window)
// never sees one fall far behind the others.
func Restamp(b []byte, seq uint64, now int64) {
	if len(b) < HeaderLen {
		return
	}
	binary.BigEndian.PutUint64(b[32:40], seq)
	binary.BigEndian.PutUint64(b[40:48], uint64(now))
}

// AppendEntry adds e to the message in b and bumps its count. It reports
// false (b unchanged) when the datagram is full.
func AppendEntry(b []byte, e *Entry) ([]byte, bool) {
	if len(b) < HeaderLen || len(b)+EntryLen+MACLen > MaxDatagram {
		return b, false
	}
	b = append(b, e.Op, e.Proto, e.Kind, e.State)
	b = binary.BigEndian.AppendUint16(b, e.CPort)
	b = binary.BigEndian.AppendUint16(b, e.VPort)
	c, v, r := e.CIP.As16(), e.VIP.As16(), e.Real.As16()
	b = append(b, c[:]...)
	b = append(b, v[:]...)
	b = binary.BigEndian.AppendUint16(b, e.SvcPort)
	b = append(b, r[:]...)
	ms := e.Timeout.Milliseconds()
	if ms < 0 {
		ms = 0
	}
	if ms > 0xffffffff {
		ms = 0xffffffff
	}
	b = binary.BigEndian.AppendUint32(b, uint32(ms))
	b = append(b, 0, 0) // reserved
	n := binary.BigEndian.Uint16(b[6:8])
	binary.BigEndian.PutUint16(b[6:8], n+1)
	return b, true
}

// AppendRequest adds the request number record (OpRequest) to the
// BulkRequest or BulkDone message started in b and bumps its count.
func AppendRequest(b []byte, id uint64) ([]byte, bool) {
	if len(b) < HeaderLen || len(b)+EntryLen+MACLen > MaxDatagram {
		return b, false
	}
	var zeros [EntryLen - 12]byte
	b = append(b, OpRequest, 0, 0, 0)
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, zeros[:]...)
	n := binary.BigEndian.Uint16(b[6:8])
	binary.BigEndian.PutUint16(b[6:8], n+1)
	return b, true
}

// AppendBulkDone adds the record of a BulkDone (OpRequest) to the message
// started in b: the number of the request it answers and how many
// entries the answer carried (its Bulk messages' counts summed).
func AppendBulkDone(b []byte, id, entries uint64) ([]byte, bool) {
	b, ok := AppendRequest(b, id)
	if !ok {
		return b, false
	}
	r := b[len(b)-EntryLen:]
	r[1] = reqHasEntries
	binary.BigEndian.PutUint64(r[12:20], entries)
	return b, true
}

// BulkEnd is what a BulkDone says about the answer it ends.
type BulkEnd struct {
	Request    uint64 // the request's number, if HasRequest
	HasRequest bool   // false: a peer without OpRequest
	Entries    uint64 // the entries the answer carried, if HasEntries
	HasEntries bool   // false: a peer without the count
}

// BulkEndOf reads a BulkDone's payload (Open).
func BulkEndOf(payload []byte) BulkEnd {
	var e BulkEnd
	e.Request, e.HasRequest = RequestOf(payload)
	if e.HasRequest && payload[1]&reqHasEntries != 0 {
		e.Entries, e.HasEntries = binary.BigEndian.Uint64(payload[12:20]), true
	}
	return e
}

// RequestOf is the request number a BulkRequest's or BulkDone's payload
// (Open) holds; false when it holds none (a peer without OpRequest).
func RequestOf(payload []byte) (uint64, bool) {
	if len(payload) != EntryLen || payload[0] != OpRequest {
		return 0, false
	}
	return binary.BigEndian.Uint64(payload[4:12]), true
}

// Seal appends the MAC over the whole message.
func (c *Codec) Seal(b []byte) []byte {
	c.mac.Reset()
	c.mac.Write(b)
	return c.mac.Sum(b)
}

// Open checks the message in b (its length, magic, version, count and
// MAC) and returns its header and its entries' bytes (Entries reads
// them). It never panics, whatever b holds.
func (c *Codec) Open(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) < HeaderLen+MACLen || [4]byte(b[0:4]) != magic {
		return h, nil, ErrMalformed
	}
	if b[4] != Version {
		return h, nil, ErrVersion
	}
	body, sum := b[:len(b)-MACLen], b[len(b)-MACLen:]
	c.mac.Reset()
	c.mac.Write(body)
	if !hmac.Equal(c.mac.Sum(c.sum[:0]), sum) {
		return h, nil, ErrMAC
	}
	h.Type = b[5]
	h.Count = int(binary.BigEndian.Uint16(b[6:8]))
	h.Sender = netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	h.Epoch = binary.BigEndian.Uint64(b[24:32])
	h.Seq = binary.BigEndian.Uint64(b[32:40])
	h.Time = int64(binary.BigEndian.Uint64(b[40:48]))
	payload := body[HeaderLen:]
	if h.Type < TypeUpdate || h.Type > TypeBulkDone || len(payload) != h.Count*EntryLen {
		return h, nil, ErrMalformed
	}
	return h, payload, nil
}

// EntryAt decodes the i-th entry of a payload Open returned; it reports
// false for an entry that makes no sense (unknown op, zero addresses).
func EntryAt(payload []byte, i int) (Entry, bool) {
	var e Entry
	// Divide, not multiply: (i+1)*EntryLen wraps for an i near MaxInt/64
	// and would pass the check into a slice that panics.
	if i < 0 || i >= len(payload)/EntryLen {
		return e, false
	}
	p := payload[i*EntryLen : (i+1)*EntryLen]
	e.Op, e.Proto, e.Kind, e.State = p[0], p[1], p[2], p[3]
	e.CPort = binary.BigEndian.Uint16(p[4:6])
	e.VPort = binary.BigEndian.Uint16(p[6:8])
	e.CIP = netip.AddrFrom16([16]byte(p[8:24])).Unmap()
	e.VIP = netip.AddrFrom16([16]byte(p[24:40])).Unmap()
	e.SvcPort = binary.BigEndian.Uint16(p[40:42])
	e.Real = netip.AddrFrom16([16]byte(p[42:58])).Unmap()
	e.Timeout = time.Duration(binary.BigEndian.Uint32(p[58:62])) * time.Millisecond
	ok := (e.Op == OpUpsert || e.Op == OpEnd) && e.Kind <= 1 && !e.VIP.IsUnspecified() && !e.Real.IsUnspecified()
	return e, ok
}

package arp

import (
	"errors"
	"strconv"
)

// Sentinel errors of the parsers; test with errors.Is. The concrete error
// is a *ParseError naming the field, its value and its offset.
var (
	// ErrTruncated: the frame ends before the header or message does.
	ErrTruncated = errors.New("truncated frame")
	// ErrNotARP: the frame is not ARP (another ethertype).
	ErrNotARP = errors.New("not an ARP frame")
	// ErrNotNDP: the frame is not an ICMPv6 neighbor solicitation or
	// advertisement (another ethertype, protocol or ICMPv6 type).
	ErrNotNDP = errors.New("not a neighbor solicitation or advertisement")
	// ErrUnsupported: a well-formed frame this package does not handle:
	// ARP for other hardware/protocol types or operations, more than two
	// VLAN tags, IPv6 extension headers.
	ErrUnsupported = errors.New("unsupported")
	// ErrBadHopLimit: an NDP message whose hop limit is not 255, so it may
	// have crossed a router (RFC 4861 section 7.1).
	ErrBadHopLimit = errors.New("hop limit is not 255")
	// ErrBadChecksum: the ICMPv6 checksum does not match.
	ErrBadChecksum = errors.New("bad ICMPv6 checksum")
	// ErrInvalid: a message that breaks a validity rule of RFC 4861 (or
	// of IPv6): bad version, nonzero code, zero-length option, multicast
	// target, and so on.
	ErrInvalid = errors.New("invalid message")
)

// ParseError says what was wrong in a frame: which field, at which byte
// offset, with which value. Unwrap gives the sentinel.
type ParseError struct {
	Proto  string // "arp" or "ndp"
	Field  string
	Offset int
	Value  uint64
	Err    error
}

func (e *ParseError) Error() string {
	return e.Proto + ": " + e.Field + " = " + strconv.FormatUint(e.Value, 10) +
		" at offset " + strconv.Itoa(e.Offset) + ": " + e.Err.Error()
}

func (e *ParseError) Unwrap() error { return e.Err }

// fault is the allocation-free form of a ParseError used inside the
// package: the hot paths drop bad frames without ever building an error
// value; only the exported parsers turn a fault into a *ParseError.
type fault struct {
	err   error
	field string
	off   int
	value uint64
}

func (f fault) ok() bool { return f.err == nil }

func (f fault) toError(proto string) error {
	if f.err == nil {
		return nil
	}
	return &ParseError{Proto: proto, Field: f.field, Offset: f.off, Value: f.value, Err: f.err}
}

package config

import (
	"errors"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every *Error: errors.Is(err, ErrInvalid) tells a
// bad configuration from an I/O failure.
var ErrInvalid = errors.New("config: invalid configuration")

// Error is one problem in a configuration, placed as precisely as the input
// allows. Line and Column are 1-based; 0 means unknown.
type Error struct {
	File   string // the name given to Parse, the path given to Load
	Line   int
	Column int
	// Field is the field path (services[0].realservers[1].weight) for YAML,
	// the option (-w) for ipvsadm text.
	Field string
	// Value is the offending text as written ("" when there is none).
	Value string
	Msg   string
}

// Error reads like a compiler message:
//
//	drlb.yaml:7:12: services[0].realservers[1].weight: "-1": must be 0..65535
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	for _, part := range []string{e.Field, quoteValue(e.Value), e.Msg} {
		if part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(part)
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *Error) Unwrap() error { return ErrInvalid }

// quoteValue quotes a value for a message, shortening absurdly long ones so
// a fuzzed or binary file cannot flood a terminal.
func quoteValue(v string) string {
	if v == "" {
		return ""
	}
	const max = 80
	if len(v) > max {
		return strconv.Quote(v[:max]) + "..."
	}
	return strconv.Quote(v)
}

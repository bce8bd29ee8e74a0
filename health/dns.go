package health

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/drlb/drlb/config"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsQuery is one dns check query: the message sent, and what its answer
// must echo.
type dnsQuery struct {
	id  uint16
	q   dnsmessage.Question
	msg []byte
}

// newDNSQuery builds the query keepalived's DNS_CHECK sends: a random ID,
// recursion desired, one question (name, type, class IN), no EDNS.
func newDNSQuery(name, typ string) (*dnsQuery, error) {
	code, ok := config.DNSTypeCode(typ)
	if !ok {
		return nil, fmt.Errorf("dns: record type %q is not one a check asks for", typ)
	}
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("dns: name %q: %v", name, err)
	}
	var id [2]byte
	rand.Read(id[:])
	q := &dnsQuery{
		id: binary.BigEndian.Uint16(id[:]),
		q:  dnsmessage.Question{Name: n, Type: dnsmessage.Type(code), Class: dnsmessage.ClassINET},
	}
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: q.id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q.q); err != nil {
		return nil, fmt.Errorf("dns: name %q: %v", name, err)
	}
	if q.msg, err = b.Finish(); err != nil {
		return nil, err
	}
	return q, nil
}

// errNotTheAnswer is judge's verdict on a datagram that does not answer
// the query (too short for a DNS header, another ID, or not a response):
// the probe waits on for the answer, as keepalived's DNS_CHECK does.
var errNotTheAnswer = errors.New("not the answer to this query")

// judge decides a dns check on the answer b. It passes when the answer
// (ID and QR checked before, see errNotTheAnswer) has RCODE NOERROR, holds
// exactly the question asked (the name compared without regard to case,
// type and class equal) and at least one whole answer record, of any type
// (a CNAME answers an A query). keepalived's DNS_CHECK passes on NOERROR
// alone; drlb also wants the record, so that a server that lost its zone
// or cannot resolve (NODATA, empty answers) is taken out. It never panics,
// whatever b holds.
func (q *dnsQuery) judge(b []byte) error {
	var p dnsmessage.Parser
	h, err := p.Start(b)
	if err != nil || h.ID != q.id || !h.Response {
		return errNotTheAnswer
	}
	if h.RCode != dnsmessage.RCodeSuccess {
		return fmt.Errorf("answer %s", rcodeName(h.RCode))
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return fmt.Errorf("malformed answer: %v", err)
	}
	switch {
	case len(qs) != 1:
		return fmt.Errorf("the answer does not echo the question: it holds %d questions", len(qs))
	case !strings.EqualFold(qs[0].Name.String(), q.q.Name.String()) || qs[0].Type != q.q.Type || qs[0].Class != q.q.Class:
		return fmt.Errorf("the answer is to another question: %s %s %s", qs[0].Name,
			strings.TrimPrefix(qs[0].Class.String(), "Class"), strings.TrimPrefix(qs[0].Type.String(), "Type"))
	}
	if _, err := p.AnswerHeader(); err != nil {
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			if h.Truncated {
				return errors.New("no answer record (truncated: drlb asks over UDP only)")
			}
			return errors.New("no answer record")
		}
		return fmt.Errorf("malformed answer record: %v", err)
	}
	if err := p.SkipAnswer(); err != nil {
		return fmt.Errorf("malformed answer record: %v", err)
	}
	return nil
}

// rcodeName names a DNS response code as dig prints it.
func rcodeName(r dnsmessage.RCode) string {
	switch r {
	case dnsmessage.RCodeFormatError:
		return "FORMERR"
	case dnsmessage.RCodeServerFailure:
		return "SERVFAIL"
	case dnsmessage.RCodeNameError:
		return "NXDOMAIN"
	case dnsmessage.RCodeNotImplemented:
		return "NOTIMP"
	case dnsmessage.RCodeRefused:
		return "REFUSED"
	}
	return fmt.Sprintf("rcode %d", int(r))
}

// probeDNS sends one query over UDP to the real server and waits up to
// the timeout for its answer (see judge). An ICMP error (port or host
// unreachable) or silence fails the check.
func probeDNS(parent context.Context, t Target) error {
	q, err := newDNSQuery(t.Check.DNSName, t.Check.DNSType)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("dns %s: %s %s", t.Addr, q.q.Name, t.Check.DNSType)
	c, done, err := dialUDP(parent, t)
	if err != nil {
		return err
	}
	defer done()
	if _, err := c.Write(q.msg); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	buf := make([]byte, 65536)
	ignored := 0
	for {
		n, err := c.Read(buf)
		var ne net.Error
		switch {
		case err != nil && parent.Err() != nil:
			return parent.Err() // the caller gave up, not the server
		case err != nil && errors.As(err, &ne) && ne.Timeout() && ignored > 0:
			plural := "s"
			if ignored == 1 {
				plural = ""
			}
			return fmt.Errorf("%s: no answer within %s, %d other datagram%s ignored (too short, another ID or not a response)", what, t.Check.Timeout, ignored, plural)
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			return fmt.Errorf("%s: no answer within %s", what, t.Check.Timeout)
		case err != nil:
			return fmt.Errorf("%s: %w", what, err) // ECONNREFUSED: port unreachable...
		}
		switch err := q.judge(buf[:n]); {
		case errors.Is(err, errNotTheAnswer):
			ignored++
			continue
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

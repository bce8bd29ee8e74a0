package health

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drlb/drlb/config"
	"github.com/drlb/drlb/internal/testutil"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers each datagram on testutil.LoopbackAddr with the datagrams
// answer(query) returns (none: silence). It records the queries.
type dnsServer struct {
	addr    netip.AddrPort
	mu      sync.Mutex
	queries [][]byte
}

func newDNSServer(t testing.TB, answer func(query []byte) [][]byte) *dnsServer {
	t.Helper()
	c, err := net.ListenPacket("udp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s := &dnsServer{addr: netip.MustParseAddrPort(c.LocalAddr().String())}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			s.mu.Lock()
			s.queries = append(s.queries, q)
			s.mu.Unlock()
			for _, a := range answer(q) {
				c.WriteTo(a, from)
			}
		}
	}()
	return s
}

func (s *dnsServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.queries...)
}

// reply builds the answer to query the way a working server would (the
// question echoed, one record of the type asked for), changed by edit.
// It returns nil for a query it cannot read.
func reply(query []byte, edit func(m *dnsmessage.Message)) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(query); err != nil || len(m.Questions) != 1 {
		return nil
	}
	q := m.Questions[0]
	m.Response, m.RecursionAvailable = true, true
	h := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var body dnsmessage.ResourceBody
	switch q.Type {
	case dnsmessage.TypeA:
		body = &dnsmessage.AResource{A: [4]byte{198, 18, 0, 53}}
	case dnsmessage.TypeSOA:
		body = &dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.example.org."), MBox: dnsmessage.MustNewName("hostmaster.example.org."),
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, MinTTL: 60}
	default:
		body = &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("alias.example.org.")}
	}
	m.Answers = []dnsmessage.Resource{{Header: h, Body: body}}
	if edit != nil {
		edit(&m)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

func one(b []byte) [][]byte { return [][]byte{b} }

func dnsCheck(name, typ string, timeout time.Duration) config.Check {
	return config.Check{Type: "dns", DNSName: name, DNSType: typ, Timeout: timeout}
}

// TestProbeDNS runs dns checks against local responders: an answer with
// a record passes; an error code, an empty answer, another ID, another
// question, a query echoed back, silence or a closed port fail.
// slowMargin is how much longer than its timeout a probe may take on a
// busy machine before a test calls it a probe that ignores its timeout.
const slowMargin = 5 * time.Second

func TestProbeDNS(t *testing.T) {
	const timeout = 300 * time.Millisecond
	answers := newDNSServer(t, func(q []byte) [][]byte { return one(reply(q, nil)) })
	nxdomain := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.RCode, m.Answers = dnsmessage.RCodeNameError, nil }))
	})
	servfail := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.RCode, m.Answers = dnsmessage.RCodeServerFailure, nil }))
	})
	refusedWithRecord := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.RCode = dnsmessage.RCodeRefused }))
	})
	nodata := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) {
			m.Answers = nil
			m.Authorities = []dnsmessage.Resource{{
				Header: dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName("example.org."), Class: dnsmessage.ClassINET, TTL: 60},
				Body: &dnsmessage.SOAResource{NS: dnsmessage.MustNewName("ns.example.org."), MBox: dnsmessage.MustNewName("hostmaster.example.org."),
					Serial: 1, MinTTL: 60},
			}}
		}))
	})
	truncatedEmpty := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.Truncated, m.Answers = true, nil }))
	})
	wrongID := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.ID++ }))
	})
	notResponse := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.Response = false }))
	})
	otherName := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.Questions[0].Name = dnsmessage.MustNewName("example.net.") }))
	})
	otherType := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.Questions[0].Type = dnsmessage.TypeMX }))
	})
	noQuestion := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) { m.Questions = nil }))
	})
	mixedCase := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) {
			m.Questions[0].Name = dnsmessage.MustNewName(strings.ToUpper(m.Questions[0].Name.String()))
		}))
	})
	cnameForA := newDNSServer(t, func(q []byte) [][]byte {
		return one(reply(q, func(m *dnsmessage.Message) {
			m.Answers[0].Body = &dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName("www.example.net.")}
		}))
	})
	// The header says one answer, the record is cut short.
	cutRecord := newDNSServer(t, func(q []byte) [][]byte {
		b := reply(q, nil)
		return one(b[:len(b)-3])
	})
	noRecordBytes := newDNSServer(t, func(q []byte) [][]byte {
		b := reply(q, func(m *dnsmessage.Message) { m.Answers = nil })
		binary.BigEndian.PutUint16(b[6:], 1) // ANCOUNT 1, nothing after the question
		return one(b)
	})
	// Stray datagrams first, then the answer: the probe waits for it.
	strayThenAnswer := newDNSServer(t, func(q []byte) [][]byte {
		return [][]byte{
			{1, 2, 3},
			reply(q, func(m *dnsmessage.Message) { m.ID ^= 0x8000 }),
			q, // the query itself: QR clear
			reply(q, nil),
		}
	})
	silent := newDNSServer(t, func([]byte) [][]byte { return nil })
	closedConn, err := net.ListenPacket("udp", testutil.LoopbackAny(t))
	if err != nil {
		t.Fatal(err)
	}
	closed := netip.MustParseAddrPort(closedConn.LocalAddr().String())
	closedConn.Close()

	for _, tc := range []struct {
		name  string
		addr  netip.AddrPort
		check config.Check
		ok    bool
		err   string // in the error, when !ok
	}{
		{"SOA of the root", answers.addr, dnsCheck(".", "SOA", timeout), true, ""},
		{"A record", answers.addr, dnsCheck("www.example.org", "A", timeout), true, ""},
		{"trailing dot", answers.addr, dnsCheck("www.example.org.", "A", timeout), true, ""},
		{"AAAA answered by a CNAME", answers.addr, dnsCheck("www.example.org", "AAAA", timeout), true, ""},
		{"CNAME for an A query", cnameForA.addr, dnsCheck("www.example.org", "A", timeout), true, ""},
		{"question echoed in another case", mixedCase.addr, dnsCheck("www.example.org", "A", timeout), true, ""},
		{"stray datagrams, then the answer", strayThenAnswer.addr, dnsCheck("www.example.org", "A", timeout), true, ""},
		{"NXDOMAIN", nxdomain.addr, dnsCheck("nope.example.org", "A", timeout), false, "answer NXDOMAIN"},
		{"SERVFAIL", servfail.addr, dnsCheck("www.example.org", "A", timeout), false, "answer SERVFAIL"},
		{"REFUSED with a record", refusedWithRecord.addr, dnsCheck("www.example.org", "A", timeout), false, "answer REFUSED"},
		{"no answer records (NODATA)", nodata.addr, dnsCheck("example.org", "MX", timeout), false, "no answer record"},
		{"truncated and empty", truncatedEmpty.addr, dnsCheck("example.org", "TXT", timeout), false, "truncated"},
		{"wrong ID", wrongID.addr, dnsCheck("www.example.org", "A", timeout), false, "no answer within 300ms, 1 other datagram ignored (too short, another ID or not a response)"},
		{"QR clear", notResponse.addr, dnsCheck("www.example.org", "A", timeout), false, "no answer within"},
		{"another name", otherName.addr, dnsCheck("www.example.org", "A", timeout), false, "the answer is to another question: example.net. INET A"},
		{"another type", otherType.addr, dnsCheck("www.example.org", "A", timeout), false, "the answer is to another question: www.example.org. INET MX"},
		{"no question", noQuestion.addr, dnsCheck("www.example.org", "A", timeout), false, "does not echo the question: it holds 0 questions"},
		{"answer record cut short", cutRecord.addr, dnsCheck("www.example.org", "A", timeout), false, "malformed answer record"},
		{"answer count without a record", noRecordBytes.addr, dnsCheck("www.example.org", "A", timeout), false, "malformed answer record"},
		{"silence", silent.addr, dnsCheck(".", "SOA", timeout), false, "no answer within 300ms"},
		{"closed port: ICMP port unreachable", closed, dnsCheck(".", "SOA", 5*time.Second), false, "refused"},
		{"unknown record type", answers.addr, dnsCheck(".", "ANY", timeout), false, "not one a check asks for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := Probe(context.Background(), Target{Addr: tc.addr, Check: tc.check})
			took := time.Since(start)
			t.Logf("Probe = %v", err)
			if (err == nil) != tc.ok {
				t.Fatalf("Probe = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Probe = %q, want it to say %q", err, tc.err)
			}
			// Never much longer than the timeout: the margin is for a
			// shared, slow machine (1 s was once too little), and still
			// catches a probe that ignores its timeout.
			if took > tc.check.Timeout+slowMargin {
				t.Errorf("Probe took %s, timeout %s", took, tc.check.Timeout)
			}
		})
	}
	t.Run("silence fails at the timeout, not before", func(t *testing.T) {
		start := time.Now()
		err := Probe(context.Background(), Target{Addr: silent.addr, Check: dnsCheck(".", "SOA", timeout)})
		if took := time.Since(start); err == nil || took < timeout || took > timeout+slowMargin {
			t.Fatalf("Probe = %v after %s, want a failure after %s", err, took, timeout)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := Probe(ctx, Target{Addr: silent.addr, Check: dnsCheck(".", "SOA", 5*time.Second)}); err == nil {
			t.Fatal("a cancelled probe passed")
		}
	})
}

// TestDNSQuery checks what goes on the wire: one question (the name made
// absolute, the type, class IN), recursion desired, no EDNS, a new
// random ID per probe.
func TestDNSQuery(t *testing.T) {
	srv := newDNSServer(t, func(q []byte) [][]byte { return one(reply(q, nil)) })
	for _, c := range []config.Check{
		dnsCheck("Www.Example.org", "MX", time.Second),
		dnsCheck(".", "SOA", time.Second),
	} {
		for range 4 {
			if err := Probe(context.Background(), Target{Addr: srv.addr, Check: c}); err != nil {
				t.Fatal(err)
			}
		}
	}
	qs := srv.received()
	if len(qs) != 8 {
		t.Fatalf("%d queries, want 8", len(qs))
	}
	ids := map[uint16]bool{}
	for i, b := range qs {
		var m dnsmessage.Message
		if err := m.Unpack(b); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		ids[m.ID] = true
		want := dnsmessage.Question{Name: dnsmessage.MustNewName("Www.Example.org."), Type: dnsmessage.TypeMX, Class: dnsmessage.ClassINET}
		if i >= 4 {
			want = dnsmessage.Question{Name: dnsmessage.MustNewName("."), Type: dnsmessage.TypeSOA, Class: dnsmessage.ClassINET}
		}
		switch {
		case m.Response || m.OpCode != 0 || !m.RecursionDesired || m.Truncated || m.Authoritative:
			t.Errorf("query %d header %+v, want a plain query with RD", i, m.Header)
		case len(m.Questions) != 1 || m.Questions[0] != want:
			t.Errorf("query %d questions %v, want %v", i, m.Questions, want)
		case len(m.Answers)+len(m.Authorities)+len(m.Additionals) != 0:
			t.Errorf("query %d carries records (EDNS?): %+v", i, m)
		}
	}
	if len(ids) == 1 {
		t.Errorf("8 queries with the same ID: not random")
	}
	if len(qs[4]) != 12+1+4 {
		t.Errorf("root query %d bytes, want 17 (header, root label, type, class)", len(qs[4]))
	}
}

// FuzzDNSJudge: no answer panics judge, and it passes only a response to
// the query's ID with NOERROR and at least one answer record.
func FuzzDNSJudge(f *testing.F) {
	q, err := newDNSQuery("www.example.org", "A")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reply(q.msg, nil))
	f.Add(reply(q.msg, func(m *dnsmessage.Message) { m.RCode, m.Answers = dnsmessage.RCodeNameError, nil }))
	f.Add(reply(q.msg, func(m *dnsmessage.Message) { m.Answers = nil }))
	f.Add(reply(q.msg, func(m *dnsmessage.Message) { m.Truncated = true }))
	f.Add(q.msg)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 2 {
			binary.BigEndian.PutUint16(b, q.id) // reach past the ID check
		}
		if q.judge(b) != nil {
			return
		}
		if len(b) < 12 || b[2]&0x80 == 0 || b[3]&0x0f != 0 || binary.BigEndian.Uint16(b[6:]) == 0 {
			t.Fatalf("judge passed % x: not a NOERROR response with an answer", b)
		}
	})
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drlb/drlb/scheduler"
	"go.yaml.in/yaml/v3"
)

// yamlReader turns drlb's YAML file into a Config. It walks yaml.Node trees
// by hand rather than unmarshalling into structs: that is what lets every
// error carry line, column, field path and the text as written, and lets
// unknown or repeated fields be refused instead of silently ignored.
type yamlReader struct {
	file string
	at   sites
	// budget bounds the values visited: aliases can make a small file
	// expand to a huge one (an alias of a service whose real servers are
	// aliases...), and a config must not stall the director.
	budget int
}

// spend counts one visited node.
func (r *yamlReader) spend(n *yaml.Node) error {
	if r.budget--; r.budget < 0 {
		return r.errorf(n, "", "", "YAML aliases expand this file too much: write the values out")
	}
	return nil
}

// field is one key a mapping accepts.
type field struct {
	name     string
	required bool
	hidden   bool // not listed as valid: a field named only to explain why it is wrong
	set      func(n *yaml.Node, path string) error
}

func parseYAML(file string, data []byte) (*Config, sites, error) {
	r := &yamlReader{file: file, at: sites{}, budget: 1000 + 4*len(data)}
	if err := r.text(data); err != nil {
		return nil, nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, &Error{File: file, Msg: "empty configuration: neither YAML nor ipvsadm rules"}
		}
		return nil, nil, r.syntax(err)
	}
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case err == nil:
		return nil, nil, r.errorf(&extra, "", "", "a second YAML document: a config file holds exactly one")
	case !errors.Is(err, io.EOF):
		return nil, nil, r.syntax(err)
	}
	root := &doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	c := &Config{Timeouts: DefaultTimeouts, MaxConns: DefaultMaxConns}
	// drain_timeout at the top is every service's default; a service's
	// own drain_timeout wins, whichever comes first in the file.
	var drain *yaml.Node
	err := r.mapping(root, "", []field{
		{name: "interface", set: func(n *yaml.Node, p string) (err error) {
			c.Interface, err = r.str(n, p)
			return err
		}},
		{name: "vlan", set: func(n *yaml.Node, p string) (err error) {
			c.VLAN, err = r.integer(n, p)
			return err
		}},
		{name: "max_conns", set: func(n *yaml.Node, p string) (err error) {
			c.MaxConns, err = r.integer(n, p)
			return err
		}},
		{name: "timeouts", set: func(n *yaml.Node, p string) error { return r.timeouts(n, p, &c.Timeouts) }},
		{name: "drain_timeout", set: func(n *yaml.Node, p string) error { drain = n; return nil }},
		{name: "services", set: func(n *yaml.Node, p string) (err error) {
			c.Services, err = r.services(n, p)
			return err
		}},
		{name: "bgp", set: func(n *yaml.Node, p string) (err error) {
			c.BGP, err = r.bgp(n, p)
			return err
		}},
		{name: "ha", set: func(n *yaml.Node, p string) (err error) {
			c.HA, err = r.ha(n, p)
			return err
		}},
	})
	if err != nil {
		return nil, nil, err
	}
	if drain != nil {
		d, err := r.duration(drain, "drain_timeout")
		if err != nil {
			return nil, nil, err
		}
		if d < 0 || d > maxDrainTimeout {
			return nil, nil, r.errorf(drain, "drain_timeout", drain.Value, "must be 0s..%s", maxDrainTimeout)
		}
		for i := range c.Services {
			if _, own := r.at[index("services", i)+".drain_timeout"]; !own {
				c.Services[i].DrainTimeout = d
			}
		}
	}
	return c, r.at, nil
}

// text refuses what the YAML library refuses as it reads the bytes (not
// UTF-8; a character YAML does not print, such as NUL or another control
// character), placed: the library's message for these names no line, so a
// stray Latin-1 byte in a long file could not be found from it. Lines are
// counted at YAML's line breaks, columns in characters, as the library
// counts them. A file starting with a UTF-16 byte order mark is left to
// the library, which decodes it.
func (r *yamlReader) text(data []byte) error {
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return nil
	}
	line, col := 1, 1
	i := 0
	if bytes.HasPrefix(data, []byte("\ufeff")) {
		// The library skips a UTF-8 BOM before it counts columns:
		// counted here, every column on line 1 was one too many.
		i = 3
	}
	for i < len(data) {
		c, size := utf8.DecodeRune(data[i:])
		switch {
		case c == utf8.RuneError && size <= 1:
			return &Error{File: r.file, Line: line, Column: col, Msg: fmt.Sprintf("not UTF-8 text (byte 0x%02x): a YAML file is UTF-8", data[i])}
		case !yamlPrintable(c):
			return &Error{File: r.file, Line: line, Column: col, Msg: fmt.Sprintf("control character %U: not allowed in YAML", c)}
		}
		i += size
		switch {
		case c == '\r' && i < len(data) && data[i] == '\n':
			col++ // the \n ends the line
		case c == '\n' || c == '\r' || c == '\u0085' || c == '\u2028' || c == '\u2029':
			line, col = line+1, 1
		default:
			col++
		}
	}
	return nil
}

// yamlPrintable is YAML 1.1's set of characters a stream may hold (the
// library's reader check): tab, line feed, carriage return, printable
// ASCII, NEL and the non-control, non-surrogate rest of Unicode but
// U+FFFE and U+FFFF.
func yamlPrintable(c rune) bool {
	return c == '\t' || c == '\n' || c == '\r' || c >= 0x20 && c <= 0x7e || c == 0x85 ||
		c >= 0xa0 && c <= 0xd7ff || c >= 0xe000 && c <= 0xfffd || c >= 0x10000 && c <= 0x10ffff
}

// decodeNode reads one document. A panic inside the YAML library must not
// take the director down with it: it becomes an error.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("yaml: the YAML parser failed: %v", p)
		}
	}()
	return dec.Decode(n)
}

// syntax turns the YAML library's "yaml: line N: msg" into an *Error.
func (r *yamlReader) syntax(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &Error{File: r.file, Msg: "YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(num); err == nil {
				e.Line, e.Msg = line, "YAML: "+text
			}
		}
	}
	return e
}

func (r *yamlReader) errorf(n *yaml.Node, path, value, format string, args ...any) error {
	return &Error{File: r.file, Line: n.Line, Column: n.Column, Field: path, Value: value, Msg: fmt.Sprintf(format, args...)}
}

// deref follows aliases (*name) to the node they stand for; pos stays the
// alias itself, where the value is used.
func deref(n *yaml.Node) (target, pos *yaml.Node) {
	pos = n
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n, pos
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value"
	}
	return "YAML node"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapping decodes a mapping node with the given fields, in file order.
func (r *yamlReader) mapping(n *yaml.Node, path string, fields []field) error {
	n, pos := deref(n)
	if err := r.spend(pos); err != nil {
		return err
	}
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		if !f.hidden {
			names = append(names, f.name)
		}
	}
	what := path
	if what == "" {
		what = "the configuration"
	}
	if n.Kind != yaml.MappingNode {
		value := ""
		if n.Kind == yaml.ScalarNode {
			value = n.Value
		}
		return r.errorf(pos, path, value, "%s must be a mapping with fields %s, not a %s", what, strings.Join(names, ", "), kindName(n))
	}
	if path != "" {
		r.at[path] = site{line: pos.Line, col: pos.Column, field: path, value: ""}
	}
	seen := make(map[string]*yaml.Node, len(fields))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, _ := deref(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			return r.errorf(n.Content[i], path, "", "a field name must be a plain word, not a %s", kindName(k))
		}
		key := k.Value
		fp := join(path, key)
		if key == "<<" {
			return r.errorf(k, fp, "", "YAML merge keys are not supported: repeat the fields or use an alias (*name) for a whole value")
		}
		if prev, dup := seen[key]; dup {
			return r.errorf(k, fp, "", "field given twice (first at line %d)", prev.Line)
		}
		seen[key] = k
		var f *field
		for i := range fields {
			if fields[i].name == key {
				f = &fields[i]
			}
		}
		if f == nil {
			msg := "unknown field (valid: " + strings.Join(names, ", ") + ")"
			if s := suggest(key, names); s != "" {
				msg = fmt.Sprintf("unknown field, did you mean %q? (valid: %s)", s, strings.Join(names, ", "))
			}
			return r.errorf(k, fp, "", "%s", msg)
		}
		if err := f.set(n.Content[i+1], fp); err != nil {
			return err
		}
	}
	for _, f := range fields {
		if _, ok := seen[f.name]; f.required && !ok {
			return r.errorf(pos, join(path, f.name), "", "required field missing")
		}
	}
	return nil
}

// scalar returns a single value's text, recording where it was.
func (r *yamlReader) scalar(n *yaml.Node, path string) (string, error) {
	t, pos := deref(n)
	if err := r.spend(pos); err != nil {
		return "", err
	}
	if t.Kind != yaml.ScalarNode {
		return "", r.errorf(pos, path, "", "must be a single value, not a %s", kindName(t))
	}
	if t.ShortTag() == "!!null" {
		return "", r.errorf(pos, path, t.Value, "a value is required")
	}
	if t.ShortTag() == "!!binary" {
		// The value is the base64 text, not the bytes it stands for.
		return "", r.errorf(pos, path, t.Value, "a !!binary value (base64) is not supported: write the value as text")
	}
	r.at[path] = site{line: pos.Line, col: pos.Column, field: path, value: t.Value}
	return t.Value, nil
}

func (r *yamlReader) str(n *yaml.Node, path string) (string, error) { return r.scalar(n, path) }

func (r *yamlReader) integer(n *yaml.Node, path string) (int, error) {
	s, err := r.decimal(n, path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, r.errorf(n, path, s, "must be a whole number")
	}
	return v, nil
}

// decimal is scalar for a number, refusing a plain one with a leading 0
// (017): YAML 1.1, and yaml.v3 for compatibility, read it as octal (15),
// and so does anything else that reads the file as YAML, while drlb's
// decimal parsers would take it as 17. Quoted ("017") it is text, and
// read as decimal.
func (r *yamlReader) decimal(n *yaml.Node, path string) (string, error) {
	s, err := r.scalar(n, path)
	if err != nil {
		return "", err
	}
	if t, _ := deref(n); t.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		d := strings.TrimLeft(s, "+-")
		if len(d) > 1 && d[0] == '0' && d[1] >= '0' && d[1] <= '9' {
			return "", r.errorf(n, path, s, "a leading 0 makes it octal in YAML 1.1 (017 is 15), not decimal: write the number without it")
		}
	}
	return s, nil
}

// number is value for a numeric parser: see decimal.
func number[T any](r *yamlReader, n *yaml.Node, path string, parse func(string) (T, error)) (T, error) {
	return parsed(r, n, path, r.decimal, parse)
}

// value reads a scalar through one of the shared value parsers.
func value[T any](r *yamlReader, n *yaml.Node, path string, parse func(string) (T, error)) (T, error) {
	return parsed(r, n, path, r.scalar, parse)
}

// parsed reads n's text with read, then parses it, placing a parse error
// at n.
func parsed[T any](r *yamlReader, n *yaml.Node, path string, read func(*yaml.Node, string) (string, error), parse func(string) (T, error)) (T, error) {
	var zero T
	s, err := read(n, path)
	if err != nil {
		return zero, err
	}
	v, err := parse(s)
	if err != nil {
		return zero, r.errorf(n, path, s, "%v", err)
	}
	return v, nil
}

func (r *yamlReader) duration(n *yaml.Node, path string) (time.Duration, error) {
	return value(r, n, path, parseDuration)
}

// seq returns a list's items; an empty value is an empty list.
func (r *yamlReader) seq(n *yaml.Node, path string) ([]*yaml.Node, error) {
	t, pos := deref(n)
	if err := r.spend(pos); err != nil {
		return nil, err
	}
	if t.Kind == yaml.ScalarNode && t.ShortTag() == "!!null" {
		return nil, nil
	}
	if t.Kind != yaml.SequenceNode {
		return nil, r.errorf(pos, path, "", "must be a list, not a %s", kindName(t))
	}
	r.at[path] = site{line: pos.Line, col: pos.Column, field: path, value: ""}
	return t.Content, nil
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (r *yamlReader) timeouts(n *yaml.Node, path string, t *Timeouts) error {
	f := func(name string, d *time.Duration) field {
		return field{name: name, set: func(n *yaml.Node, p string) (err error) {
			*d, err = r.duration(n, p)
			return err
		}}
	}
	return r.mapping(n, path, []field{
		f("tcp", &t.TCPEstablished),
		f("tcp_synrecv", &t.TCPSynRecv),
		f("tcp_fin", &t.TCPFinWait),
		f("tcp_close", &t.TCPClose),
		f("udp", &t.UDP),
	})
}

func (r *yamlReader) services(n *yaml.Node, path string) ([]Service, error) {
	items, err := r.seq(n, path)
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(items))
	for i, item := range items {
		s, err := r.service(item, index(path, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *yamlReader) service(n *yaml.Node, path string) (Service, error) {
	_, pos := deref(n)
	s := Service{Protocol: TCP, Scheduler: DefaultScheduler, Line: pos.Line}
	// The netmask's meaning and the flags' validity depend on fields that
	// may come later in the mapping, so they are read after it.
	var mask, flags *yaml.Node
	var rs *yaml.Node
	err := r.mapping(n, path, []field{
		{name: "vip", required: true, set: func(n *yaml.Node, p string) (err error) {
			s.VIP, err = value(r, n, p, parseAddr)
			return err
		}},
		{name: "port", required: true, set: func(n *yaml.Node, p string) (err error) {
			s.Port, err = number(r, n, p, func(v string) (uint16, error) { return parsePort(v, false) })
			return err
		}},
		{name: "protocol", set: func(n *yaml.Node, p string) (err error) {
			s.Protocol, err = value(r, n, p, parseProtocol)
			return err
		}},
		{name: "scheduler", set: func(n *yaml.Node, p string) (err error) {
			s.Scheduler, err = r.str(n, p)
			return err
		}},
		{name: "flags", set: func(n *yaml.Node, p string) error { flags = n; return nil }},
		{name: "mh_table_size", set: func(n *yaml.Node, p string) (err error) {
			s.SchedOptions.TableSize, err = r.integer(n, p)
			return err
		}},
		{name: "persistence", set: func(n *yaml.Node, p string) (err error) {
			s.Persistence, err = r.duration(n, p)
			return err
		}},
		{name: "persistence_netmask", set: func(n *yaml.Node, p string) error { mask = n; return nil }},
		{name: "drain_timeout", set: func(n *yaml.Node, p string) (err error) {
			s.DrainTimeout, err = r.duration(n, p)
			return err
		}},
		{name: "realservers", set: func(n *yaml.Node, p string) error { rs = n; return nil }},
		{name: "sorry_server", set: func(n *yaml.Node, p string) (err error) {
			s.SorryServer, err = r.sorryServer(n, p)
			return err
		}},
	})
	if err != nil {
		return s, err
	}
	s.PersistenceBits = fullBits(s.VIP.Is6())
	if mask != nil {
		s.PersistenceBits, err = number(r, mask, path+".persistence_netmask", func(v string) (int, error) {
			return parseNetmask(v, s.VIP.Is6())
		})
		if err != nil {
			return s, err
		}
	}
	if flags != nil {
		if s.SchedOptions, err = r.flags(flags, path+".flags", s.Scheduler, s.SchedOptions); err != nil {
			return s, err
		}
	}
	if rs != nil {
		if s.RealServers, err = r.realServers(rs, path+".realservers"); err != nil {
			return s, err
		}
	}
	return s, nil
}

func parseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, errors.New("must be tcp or udp")
}

func (r *yamlReader) flags(n *yaml.Node, path, sched string, opts scheduler.Options) (scheduler.Options, error) {
	items, err := r.seq(n, path)
	if err != nil {
		return opts, err
	}
	texts := make([]string, 0, len(items))
	for i, item := range items {
		p := index(path, i)
		f, err := r.str(item, p)
		if err != nil {
			return opts, err
		}
		if err := applyFlag(&opts, sched, f, false); err != nil {
			return opts, r.errorf(item, p, f, "%v", err)
		}
		texts = append(texts, f)
	}
	// Validation speaks of the flags as a whole (sh-port with rr).
	if s, ok := r.at[path]; ok {
		s.value = strings.Join(texts, ",")
		s.field = path
		r.at[path] = s
	}
	return opts, nil
}

func (r *yamlReader) realServers(n *yaml.Node, path string) ([]RealServer, error) {
	items, err := r.seq(n, path)
	if err != nil {
		return nil, err
	}
	out := make([]RealServer, 0, len(items))
	for i, item := range items {
		_, pos := deref(item)
		rs := RealServer{Weight: DefaultWeight, Line: pos.Line}
		p := index(path, i)
		err := r.mapping(item, p, []field{
			{name: "address", required: true, set: func(n *yaml.Node, p string) (err error) {
				rs.Address, err = value(r, n, p, parseAddr)
				return err
			}},
			{name: "weight", set: func(n *yaml.Node, p string) (err error) {
				rs.Weight, err = r.integer(n, p)
				return err
			}},
			{name: "mac", set: func(n *yaml.Node, p string) (err error) {
				rs.MAC, err = value(r, n, p, parseMAC)
				return err
			}},
			{name: "check", set: func(n *yaml.Node, p string) (err error) {
				rs.Check, err = r.check(n, p)
				return err
			}},
			{name: "port", hidden: true, set: func(n *yaml.Node, p string) error {
				// A natural thing to write, coming from NAT setups or
				// keepalived: say why it cannot be.
				return r.errorf(n, p, n.Value, "a real server has no port of its own: direct routing keeps the service port (set a health check port with check.port)")
			}},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, rs)
	}
	return out, nil
}

func (r *yamlReader) check(n *yaml.Node, path string) (*Check, error) {
	c := &Check{Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Retries: DefaultCheckRetries}
	var one URL // path, status and digest: the single-URL form
	var hasPath, hasStatus, hasDigest, hasRetryDelay, hasReplyMax, hasName, hasRecord bool
	var urls, urlsAt, requireAt *yaml.Node
	err := r.mapping(n, path, []field{
		{name: "type", required: true, set: func(n *yaml.Node, p string) (err error) {
			c.Type, err = r.str(n, p)
			return err
		}},
		{name: "port", set: func(n *yaml.Node, p string) (err error) {
			c.Port, err = number(r, n, p, func(v string) (uint16, error) { return parsePort(v, false) })
			return err
		}},
		{name: "path", set: func(n *yaml.Node, p string) (err error) {
			hasPath = true
			one.Path, err = r.str(n, p)
			return err
		}},
		{name: "status", set: func(n *yaml.Node, p string) (err error) {
			hasStatus = true
			one.Status, err = value(r, n, p, parseStatus)
			return err
		}},
		{name: "digest", set: func(n *yaml.Node, p string) (err error) {
			hasDigest = true
			one.Digest, err = value(r, n, p, parseDigest)
			return err
		}},
		{name: "urls", set: func(n *yaml.Node, p string) error {
			urls, urlsAt = n, n
			return nil
		}},
		{name: "host", set: func(n *yaml.Node, p string) (err error) {
			c.Host, err = r.str(n, p)
			return err
		}},
		{name: "payload", set: func(n *yaml.Node, p string) (err error) {
			c.Payload, err = value(r, n, p, func(v string) ([]byte, error) {
				d, _, err := parseHex(v, false)
				return d, err
			})
			return err
		}},
		{name: "require_reply", set: func(n *yaml.Node, p string) (err error) {
			requireAt = n
			c.RequireReply, err = value(r, n, p, parseBool)
			return err
		}},
		{name: "reply", set: func(n *yaml.Node, p string) error {
			s, err := r.scalar(n, p)
			if err != nil {
				return err
			}
			if c.Reply, c.ReplyMask, err = parseHex(s, true); err != nil {
				return r.errorf(n, p, s, "%v (x matches any digit)", err)
			}
			return nil
		}},
		{name: "reply_min_length", set: func(n *yaml.Node, p string) (err error) {
			c.ReplyMin, err = r.integer(n, p)
			return err
		}},
		{name: "reply_max_length", set: func(n *yaml.Node, p string) (err error) {
			hasReplyMax = true
			c.ReplyMax, err = r.integer(n, p)
			return err
		}},
		{name: "name", set: func(n *yaml.Node, p string) (err error) {
			hasName = true
			c.DNSName, err = r.str(n, p)
			return err
		}},
		{name: "record", set: func(n *yaml.Node, p string) (err error) {
			hasRecord = true
			c.DNSType, err = r.str(n, p)
			c.DNSType = strings.ToUpper(c.DNSType) // a, Aaaa: as keepalived
			return err
		}},
		{name: "interval", set: func(n *yaml.Node, p string) (err error) {
			c.Interval, err = r.duration(n, p)
			return err
		}},
		{name: "timeout", set: func(n *yaml.Node, p string) (err error) {
			c.Timeout, err = r.duration(n, p)
			return err
		}},
		{name: "retries", set: func(n *yaml.Node, p string) (err error) {
			c.Retries, err = r.integer(n, p)
			return err
		}},
		{name: "retry_delay", set: func(n *yaml.Node, p string) (err error) {
			hasRetryDelay = true
			c.RetryDelay, err = r.duration(n, p)
			return err
		}},
		{name: "on_fail", set: func(n *yaml.Node, p string) error {
			v, err := r.str(n, p)
			switch {
			case err != nil:
				return err
			case v == "remove":
				c.Inhibit = false
			case v == "inhibit":
				c.Inhibit = true
			default:
				return r.errorf(n, p, v, "must be remove (take the server out) or inhibit (set its weight to 0)")
			}
			return nil
		}},
	})
	if err != nil {
		return nil, err
	}
	if !hasRetryDelay {
		c.RetryDelay = c.Interval
	}
	if c.Reply != nil {
		if requireAt != nil && !c.RequireReply {
			return nil, r.errorf(requireAt, path+".require_reply", "false", "an expected reply (reply) needs an answer: remove require_reply: false")
		}
		c.RequireReply = true
	}
	if c.Type == "udp" && !hasReplyMax {
		c.ReplyMax = DefaultUDPReplyMax
	}
	if c.Type == "dns" && !hasName {
		c.DNSName = DefaultDNSName
	}
	if c.Type == "dns" && !hasRecord {
		c.DNSType = DefaultDNSType
	}
	if urls != nil {
		if hasPath || hasStatus || hasDigest {
			return nil, r.errorf(urlsAt, path+".urls", "", "give either urls or path/status/digest, not both")
		}
		if c.URLs, err = r.urls(urls, path+".urls"); err != nil {
			return nil, err
		}
		return c, nil
	}
	if hasPath || hasStatus || hasDigest || c.Type == "http" || c.Type == "https" {
		if !hasPath {
			one.Path = DefaultCheckPath
		}
		if !hasStatus {
			one.Status = []StatusRange{{DefaultCheckStatus, DefaultCheckStatus}}
		}
		c.URLs = []URL{one}
	}
	return c, nil
}

// urls reads a check's list of URLs: {path, status, digest} each.
func (r *yamlReader) urls(n *yaml.Node, path string) ([]URL, error) {
	items, err := r.seq(n, path)
	if err != nil {
		return nil, err
	}
	out := make([]URL, 0, len(items))
	for i, item := range items {
		u := URL{Path: DefaultCheckPath, Status: []StatusRange{{DefaultCheckStatus, DefaultCheckStatus}}}
		err := r.mapping(item, index(path, i), []field{
			{name: "path", set: func(n *yaml.Node, p string) (err error) {
				u.Path, err = r.str(n, p)
				return err
			}},
			{name: "status", set: func(n *yaml.Node, p string) (err error) {
				u.Status, err = value(r, n, p, parseStatus)
				return err
			}},
			{name: "digest", set: func(n *yaml.Node, p string) (err error) {
				u.Digest, err = value(r, n, p, parseDigest)
				return err
			}},
			{name: "host", set: func(n *yaml.Node, p string) (err error) {
				u.Host, err = r.str(n, p)
				return err
			}},
		})
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// sorryServer reads sorry_server: an address, or {address, mac, inhibit}.
func (r *yamlReader) sorryServer(n *yaml.Node, path string) (*SorryServer, error) {
	t, pos := deref(n)
	ss := &SorryServer{Line: pos.Line}
	if t.Kind == yaml.ScalarNode {
		a, err := value(r, n, path+".address", parseAddr)
		if err != nil {
			return nil, err
		}
		r.at[path] = r.at[path+".address"]
		ss.Address = a
		return ss, nil
	}
	err := r.mapping(n, path, []field{
		{name: "address", required: true, set: func(n *yaml.Node, p string) (err error) {
			ss.Address, err = value(r, n, p, parseAddr)
			return err
		}},
		{name: "mac", set: func(n *yaml.Node, p string) (err error) {
			ss.MAC, err = value(r, n, p, parseMAC)
			return err
		}},
		{name: "inhibit", set: func(n *yaml.Node, p string) (err error) {
			ss.Inhibit, err = value(r, n, p, parseBool)
			return err
		}},
	})
	if err != nil {
		return nil, err
	}
	return ss, nil
}

// parseBool reads true or false.
func parseBool(s string) (bool, error) {
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("must be true or false")
}

// suggest returns the name closest to a mistyped key, if it is close.
func suggest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The keepalived.conf lexer: words, braces and line ends, from the main
// file and every file it includes, each token placed at its file, line and
// column. Like keepalived's own reader:
//
//   - a comment starts with # or ! anywhere outside quotes and runs to the
//     end of the line; outside quotes \# and \! are a literal # and !
//     (keepalived's decomment() drops the backslash), while \\ stays two
//     backslashes, so \\# starts a comment;
//   - { and } are tokens of their own, even written against a word;
//   - double quotes group blanks into a word and are removed, so
//     abcd" efg "h is the one word "abcd efg h"; inside them a backslash
//     escapes as in the shell (\n, \t, \x41, \101, \\, \"). A single
//     quote is an ordinary character: keepalived's word splitter
//     (alloc_strvec_r) knows only ", so path /a'b is /a'b;
//   - `include PATTERN` (and the includer/includem/includew/includeb/
//     includea variants) as a line's first word splices in the files the
//     glob matches, sorted, relative to the including file's directory,
//     with csh-style braces ({a,b}) expanded. A directory or an
//     executable file it matches is skipped with a warning, as keepalived
//     (check_glob_file) skips it. A file that includes itself, directly or
//     not, is refused.
//
// What keepalived would take from the machine it runs on is refused with
// its position rather than guessed: conditional lines (@id ...) and
// parameter definitions ($NAME=...).

// kaKind is what a token is.
type kaKind uint8

const (
	kaWord  kaKind = iota
	kaOpen         // {
	kaClose        // }
	kaEOL          // the end of a line that held tokens
)

// kaToken is one token and where it is.
type kaToken struct {
	kind      kaKind
	text      string
	file      string
	line, col int
}

// kaFS is what the lexer reads included files through: the file system for
// Load and Parse, a map in tests and fuzzing.
type kaFS interface {
	Glob(pattern string) ([]string, error)
	// ReadFile returns errKAExecutable for a file keepalived would not
	// read for its execute bits.
	ReadFile(name string) ([]byte, error)
	IsDir(name string) bool
}

type osFS struct{}

func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }

// errKAExecutable is kaFS.ReadFile's answer for a file with an execute
// bit: keepalived's check_glob_file skips it ("not a regular
// non-executable file - skipping"), so include does too.
var errKAExecutable = errors.New("an executable file")

// ReadFile reads a regular file only, and at most kaMaxBytes of it and
// one more: a FIFO an include pattern matches would block the reader (a
// reload, drlb check) for good, and a device such as /dev/zero would
// never end. Opened without blocking, checked, then read. A file with an
// execute bit is errKAExecutable, unread.
func (osFS) ReadFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if fi.Mode().Perm()&0o111 != 0 {
		return nil, errKAExecutable
	}
	return io.ReadAll(io.LimitReader(f, kaMaxBytes+1))
}
func (osFS) IsDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}

// Bounds that keep a configuration (or a fuzzer) from making the reader do
// unbounded work.
const (
	kaMaxIncludeDepth = 32
	kaMaxFiles        = 1000
	kaMaxBytes        = 64 << 20
	kaMaxBraceAlts    = 1000
	kaMaxPattern      = 4096
)

type kaLexer struct {
	fs    kaFS
	out   []kaToken
	warn  func(Warning)
	stack []string // the files being read, outermost first, for cycles
	files int
	bytes int
}

// lexKeepalived reads the main file (its contents given) and what it
// includes into one stream of tokens.
func lexKeepalived(fsys kaFS, name string, data []byte, warn func(Warning)) ([]kaToken, error) {
	l := &kaLexer{fs: fsys, warn: warn}
	if err := l.file(name, data); err != nil {
		return nil, err
	}
	return l.out, nil
}

// fileKey names a file for cycle detection: its absolute, clean path.
func fileKey(name string) string {
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return filepath.Clean(name)
}

func (l *kaLexer) file(name string, data []byte) error {
	l.files++
	l.bytes += len(data)
	l.stack = append(l.stack, fileKey(name))
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	l.out = slices.Grow(l.out, len(data)/8) // about a token per 8 bytes
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if err := l.line(name, n, string(line)); err != nil {
			return err
		}
	}
	return nil
}

// line lexes one line, handling include, @ and $ lines.
func (l *kaLexer) line(file string, n int, text string) error {
	if kw, arg, ok := includeLine(file, n, text); ok {
		return l.include(kw, arg)
	}
	toks, err := splitKALine(file, n, text)
	if err != nil || len(toks) == 0 {
		return err
	}
	first := toks[0]
	if first.kind == kaWord && text[first.col-1] != '"' {
		switch {
		case strings.HasPrefix(first.text, "@"):
			return &Error{File: file, Line: n, Column: first.col, Field: first.text, Value: "",
				Msg: "conditional configuration lines (@ID ...) are not supported: drlb has no config-id; keep only the lines for this director"}
		case strings.HasPrefix(first.text, "$") && strings.Contains(first.text, "="):
			name, _, _ := strings.Cut(first.text, "=")
			return &Error{File: file, Line: n, Column: first.col, Field: name,
				Msg: "parameter definitions ($NAME=VALUE) are not supported: write the values out"}
		case strings.HasPrefix(first.text, "~SEQ("):
			return &Error{File: file, Line: n, Column: first.col, Field: "~SEQ",
				Msg: "sequences (~SEQ) are not supported: write the lines out"}
		}
	}
	l.out = append(l.out, toks...)
	l.out = append(l.out, kaToken{kind: kaEOL, file: file, line: n, col: len(text) + 1})
	return nil
}

func isIncludeWord(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// includeLine recognises an include line and returns its keyword and the
// rest of the line, comment removed. The pattern is not cut at braces,
// which are glob alternatives there.
func includeLine(file string, n int, text string) (kw kaToken, args []kaToken, ok bool) {
	start := len(text) - len(strings.TrimLeft(text, " \t"))
	rest := text[start:]
	end := strings.IndexAny(rest, " \t")
	if end < 0 {
		end = len(rest)
	}
	if !isIncludeWord(rest[:end]) {
		return kaToken{}, nil, false
	}
	kw = kaToken{kind: kaWord, text: rest[:end], file: file, line: n, col: start + 1}
	i := start + end
	for i < len(text) {
		for i < len(text) && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r') {
			i++
		}
		if i >= len(text) || text[i] == '#' || text[i] == '!' {
			break
		}
		col := i + 1
		var w strings.Builder
		for i < len(text) && text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '#' && text[i] != '!' {
			if text[i] == '"' {
				end, s, err := unquoteKA(text, i)
				if err != nil {
					w.WriteString(text[i:])
					i = len(text)
					break
				}
				w.WriteString(s)
				i = end
				continue
			}
			if n := unescapeKA(&w, text, i); n > 0 {
				i += n
				continue
			}
			w.WriteByte(text[i])
			i++
		}
		args = append(args, kaToken{kind: kaWord, text: w.String(), file: file, line: n, col: col})
	}
	return kw, args, true
}

// include splices in the files an include line names.
func (l *kaLexer) include(kw kaToken, args []kaToken) error {
	fail := func(t kaToken, value, format string, a ...any) error {
		return &Error{File: t.file, Line: t.line, Column: t.col, Field: kw.text, Value: value, Msg: fmt.Sprintf(format, a...)}
	}
	if len(args) != 1 || args[0].kind != kaWord {
		return fail(kw, "", "takes one file name or pattern")
	}
	pat := args[0]
	if len(pat.text) > kaMaxPattern {
		// Before expanding it: each brace level rescans the pattern.
		return fail(pat, pat.text[:64]+"...", "a pattern longer than %d bytes (PATH_MAX)", kaMaxPattern)
	}
	if len(l.stack) >= kaMaxIncludeDepth {
		return fail(pat, pat.text, "includes nest more than %d deep", kaMaxIncludeDepth)
	}
	patterns, err := expandBraces(pat.text)
	if err != nil {
		return fail(pat, pat.text, "%v", err)
	}
	dir := filepath.Dir(kw.file)
	var names []string
	for _, p := range patterns {
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		m, err := l.fs.Glob(p)
		if err != nil {
			return fail(pat, pat.text, "bad pattern: %v", err)
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		l.warn(Warning{File: kw.file, Line: kw.line, Keyword: kw.text, Msg: fmt.Sprintf("%q matches no file: nothing included", pat.text)})
		return nil
	}
	for _, name := range names {
		if l.fs.IsDir(name) {
			l.warn(Warning{File: kw.file, Line: kw.line, Keyword: kw.text, Msg: fmt.Sprintf("%s is a directory: not included", name)})
			continue
		}
		key := fileKey(name)
		if i := slices.Index(l.stack, key); i >= 0 {
			return fail(pat, pat.text, "%s includes itself (through %s): an include cycle", name, strings.Join(l.stack[i:], " -> "))
		}
		if l.files >= kaMaxFiles {
			return fail(pat, pat.text, "more than %d files included", kaMaxFiles)
		}
		data, err := l.fs.ReadFile(name)
		if errors.Is(err, errKAExecutable) {
			l.warn(Warning{File: kw.file, Line: kw.line, Keyword: kw.text, Msg: fmt.Sprintf("%s is executable: not included, as keepalived skips it", name)})
			continue
		}
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fail(pat, name, "cannot read it: %v", err)
		}
		if l.bytes+len(data) > kaMaxBytes {
			return fail(pat, name, "the included files exceed %d MiB", kaMaxBytes>>20)
		}
		if err := l.file(name, data); err != nil {
			return err
		}
	}
	return nil
}

// expandBraces expands csh-style alternatives: "a{b,c}d" is abd and acd;
// they nest. Unbalanced braces are an error.
func expandBraces(s string) ([]string, error) {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		if strings.IndexByte(s, '}') >= 0 {
			return nil, errors.New("unbalanced } in the pattern")
		}
		return []string{s}, nil
	}
	depth, start := 0, open+1
	var alts []string
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case ',':
			if depth == 1 {
				alts = append(alts, s[start:i])
				start = i + 1
			}
		case '}':
			depth--
			if depth == 0 {
				alts = append(alts, s[start:i])
				var out []string
				for _, a := range alts {
					rest, err := expandBraces(s[:open] + a + s[i+1:])
					if err != nil {
						return nil, err
					}
					out = append(out, rest...)
					if len(out) > kaMaxBraceAlts {
						return nil, fmt.Errorf("the braces expand to more than %d patterns", kaMaxBraceAlts)
					}
				}
				return out, nil
			}
		}
	}
	return nil, errors.New("unbalanced { in the pattern")
}

// splitKALine cuts one line into words and braces.
func splitKALine(file string, n int, text string) ([]kaToken, error) {
	var toks []kaToken
	i := 0
	for i < len(text) {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f':
			i++
			continue
		case c == '#' || c == '!':
			return toks, nil
		case c == '{':
			toks = append(toks, kaToken{kind: kaOpen, text: "{", file: file, line: n, col: i + 1})
			i++
			continue
		case c == '}':
			toks = append(toks, kaToken{kind: kaClose, text: "}", file: file, line: n, col: i + 1})
			i++
			continue
		}
		// A word, quotes and all.
		start := i
		var w strings.Builder
	word:
		for i < len(text) {
			c := text[i]
			switch c {
			case ' ', '\t', '\r', '\v', '\f', '{', '}', '#', '!':
				break word
			case '"':
				end, s, err := unquoteKA(text, i)
				if err != nil {
					return nil, &Error{File: file, Line: n, Column: i + 1, Value: text[i:], Msg: err.Error()}
				}
				w.WriteString(s)
				i = end
			default:
				if k := unescapeKA(&w, text, i); k > 0 {
					i += k
					continue
				}
				w.WriteByte(c)
				i++
			}
		}
		toks = append(toks, kaToken{kind: kaWord, text: w.String(), file: file, line: n, col: start + 1})
	}
	return toks, nil
}

// unescapeKA writes what a backslash at text[i], outside quotes, stands
// for and returns how many bytes it took, or 0 when text[i] is not one
// to read specially. As keepalived's decomment(): \# and \! are the
// literal characters (an escaped comment start), and \\ stays two
// backslashes without escaping what follows (\\# is a backslash pair,
// then a comment). Any other backslash is an ordinary character.
func unescapeKA(w *strings.Builder, text string, i int) int {
	if text[i] != '\\' || i+1 >= len(text) {
		return 0
	}
	switch text[i+1] {
	case '#', '!':
		w.WriteByte(text[i+1])
	case '\\':
		w.WriteString(`\\`)
	default:
		return 0
	}
	return 2
}

// unquoteKA reads the quoted string starting at text[i] (a quote): it
// returns the index after the closing quote and the string's value.
func unquoteKA(text string, i int) (int, string, error) {
	q := text[i]
	var b strings.Builder
	for j := i + 1; j < len(text); j++ {
		c := text[j]
		if c == q {
			return j + 1, b.String(), nil
		}
		if c != '\\' || j+1 >= len(text) {
			b.WriteByte(c)
			continue
		}
		j++
		switch e := text[j]; e {
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'E':
			b.WriteByte(0x1b)
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'c':
			if j+1 < len(text) {
				j++
				b.WriteByte(text[j] & 0x1f)
			}
		case 'x':
			k := j + 1
			for k < len(text) && k < j+3 && isHexDigit(text[k]) {
				k++
			}
			if k == j+1 {
				b.WriteByte('x')
				continue
			}
			v, _ := strconv.ParseUint(text[j+1:k], 16, 8)
			b.WriteByte(byte(v))
			j = k - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			k := j
			for k < len(text) && k < j+3 && text[k] >= '0' && text[k] <= '7' {
				k++
			}
			v, _ := strconv.ParseUint(text[j:k], 8, 16)
			b.WriteByte(byte(v))
			j = k - 1
		default:
			b.WriteByte(e)
		}
	}
	return 0, "", errors.New("quote not closed on this line")
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// kaNode is one statement: a keyword, its values and, when it opens one,
// its block of statements.
type kaNode struct {
	key      kaToken
	args     []kaToken
	block    []*kaNode
	hasBlock bool
}

// kaMaxDepth bounds block nesting (keepalived's deepest is 4).
const kaMaxDepth = 32

// parseKATree groups the tokens into statements and blocks.
func parseKATree(toks []kaToken) ([]*kaNode, error) {
	p := &kaTree{toks: toks}
	nodes, err := p.block(nil, 0)
	if err != nil {
		return nil, err
	}
	return nodes, nil
}

type kaTree struct {
	toks []kaToken
	i    int
}

func (p *kaTree) peek() (kaToken, bool) {
	if p.i >= len(p.toks) {
		return kaToken{}, false
	}
	return p.toks[p.i], true
}

// block reads statements up to the } that closes open (or the end of the
// input when open is nil).
func (p *kaTree) block(open *kaToken, depth int) ([]*kaNode, error) {
	var nodes []*kaNode
	for {
		t, ok := p.peek()
		if !ok {
			if open != nil {
				return nil, &Error{File: open.file, Line: open.line, Column: open.col, Value: "{",
					Msg: "this block is never closed: a } is missing"}
			}
			return nodes, nil
		}
		p.i++
		switch t.kind {
		case kaEOL:
		case kaClose:
			if open == nil {
				return nil, &Error{File: t.file, Line: t.line, Column: t.col, Value: "}", Msg: "} without a block to close"}
			}
			return nodes, nil
		case kaOpen:
			// A { on a line of its own opens the block of the
			// statement above it.
			if len(nodes) == 0 || nodes[len(nodes)-1].hasBlock {
				return nil, &Error{File: t.file, Line: t.line, Column: t.col, Value: "{", Msg: "a block must follow a keyword"}
			}
			if err := p.children(nodes[len(nodes)-1], t, depth); err != nil {
				return nil, err
			}
		case kaWord:
			n := &kaNode{key: t}
		args:
			for {
				a, ok := p.peek()
				if !ok {
					break
				}
				switch a.kind {
				case kaWord:
					n.args = append(n.args, a)
					p.i++
				case kaOpen:
					p.i++
					if err := p.children(n, a, depth); err != nil {
						return nil, err
					}
					break args
				default: // end of line, or a } closing the block
					break args
				}
			}
			nodes = append(nodes, n)
		}
	}
}

func (p *kaTree) children(n *kaNode, open kaToken, depth int) error {
	if depth+1 > kaMaxDepth {
		return &Error{File: open.file, Line: open.line, Column: open.col, Value: "{", Msg: fmt.Sprintf("blocks nest more than %d deep", kaMaxDepth)}
	}
	kids, err := p.block(&open, depth+1)
	if err != nil {
		return err
	}
	n.block, n.hasBlock = kids, true
	return nil
}

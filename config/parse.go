package config

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// Load reads the file at path and parses it (see Parse). A file that cannot
// be read gives the *os.PathError, not an ErrInvalid.
func Load(path string) (*Config, error) {
	c, _, err := LoadWithWarnings(path)
	return c, err
}

// LoadWithWarnings is Load that also returns the warnings (see
// ParseWithWarnings).
func LoadWithWarnings(path string) (*Config, []Warning, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseWithWarnings(path, data)
}

// readConfig reads at most maxConfigBytes of the file at path and one
// more, as the keepalived.conf reader reads its includes: os.ReadFile of
// /dev/zero, or of a capture named by mistake, read until the process
// was out of memory, and a SIGHUP reload took the running director with
// it. A pipe (drlb check -c <(...)) is still read, to its end.
func readConfig(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d MiB: not a configuration file", maxConfigBytes>>20)}
	}
	return data, nil
}

// maxConfigBytes bounds the file Load reads (the keepalived.conf reader
// bounds its includes alike).
const maxConfigBytes = kaMaxBytes

// Parse reads a configuration named name (used in messages) in any of the
// three formats: keepalived.conf when the name ends in .conf or the first
// word is one only keepalived.conf starts with (global_defs, vrrp_...,
// virtual_server, virtual_server_group, include); ipvsadm-save text when
// its first line that is neither blank nor a comment is an ipvsadm rule
// (-A ..., -a ...); YAML otherwise. It applies the defaults and validates
// the result: it returns a complete, valid *Config, or nil and an *Error
// (wrapping ErrInvalid) for the first problem. Warnings are dropped; see
// ParseWithWarnings.
//
// ipvsadm text and keepalived.conf have no interface or connection limit
// (and ipvsadm text no timeouts): Interface is "" (the caller supplies it)
// and the others take their defaults. A keepalived.conf's includes are
// read from the file system, relative to name's directory.
func Parse(name string, data []byte) (*Config, error) {
	c, _, err := ParseWithWarnings(name, data)
	return c, err
}

// ParseWithWarnings is Parse that also returns what the file says that
// drlb accepts without acting on it: keepalived.conf keywords it ignores,
// each with its file and line. YAML and ipvsadm text give none. The
// warnings found before an error come back with it.
func ParseWithWarnings(name string, data []byte) (*Config, []Warning, error) {
	return parse(osFS{}, name, data)
}

func parse(fsys kaFS, name string, data []byte) (*Config, []Warning, error) {
	var (
		c     *Config
		at    sites
		warns []Warning
		err   error
	)
	switch {
	case isKeepalived(name, data):
		c, at, warns, err = parseKeepalived(fsys, name, data)
	case isIPVSADM(data):
		c, at, err = parseIPVSADM(name, data)
	default:
		c, at, err = parseYAML(name, data)
	}
	if err != nil {
		return nil, warns, err
	}
	if err := validate(c, name, at); err != nil {
		return nil, warns, err
	}
	c.Lines = at.lines(name)
	return c, warns, nil
}

// lines is Config.Lines of a file named name read into at: the lines of
// the settings outside the services, written in name itself (a line of
// a keepalived.conf's include is not one of name).
func (at sites) lines(name string) map[string]int {
	var out map[string]int
	for p, s := range at {
		if s.line <= 0 || s.file != "" && s.file != name || p == "services" || strings.HasPrefix(p, "services[") {
			continue
		}
		if out == nil {
			out = make(map[string]int)
		}
		out[p] = s.line
	}
	return out
}

// isIPVSADM reports whether data's first significant line is an ipvsadm
// rule. YAML cannot start that way: a config is a mapping, and "-x" at the
// start of a line is neither a key nor a list item ("- x"); "---" is YAML's
// document marker.
func isIPVSADM(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "ipvsadm"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return true
		}
		return len(line) >= 2 && line[0] == '-' && line[1] != '-' && line[1] != ' ' && line[1] != '\t' ||
			len(line) >= 3 && strings.HasPrefix(line, "--") && line[2] != '-'
	}
	return false
}

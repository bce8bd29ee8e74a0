package config

import (
	"bufio"
	"bytes"
	"os"
	"strings"
)

// Load reads the file at path and parses it (see Parse). A file that cannot
// be read gives the *os.PathError, not an ErrInvalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse reads a configuration named name (used in messages) in either
// format: ipvsadm-save text when its first line that is neither blank nor a
// comment is an ipvsadm rule (-A ..., -a ...), YAML otherwise. It applies
// the defaults and validates the result: it returns a complete, valid
// *Config, or nil and an *Error (wrapping ErrInvalid) for the first problem.
//
// ipvsadm text has no interface, timeouts or connection limit: Interface is
// "" (the caller supplies it) and the others take their defaults.
func Parse(name string, data []byte) (*Config, error) {
	read := parseYAML
	if isIPVSADM(data) {
		read = parseIPVSADM
	}
	c, at, err := read(name, data)
	if err != nil {
		return nil, err
	}
	if err := validate(c, name, at); err != nil {
		return nil, err
	}
	return c, nil
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

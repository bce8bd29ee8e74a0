package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics; what parses validates, and survives the trip
// through FormatIPVSADM with its services unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		if filepath.Ext(name) == ".golden" {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		oneRS,
		oneRS + "        check: &c {type: http, port: 8080}\n      - address: 198.18.0.12\n        check: *c\n",
		"services: [{vip: 2001:db8::1, port: 0, persistence: 5s, persistence_netmask: 48}]\n",
		"-A -t 198.18.0.100:80 -s sh -b sh-port -p 30 -M 255.255.255.0\n-a -t 198.18.0.100:80 -r 198.18.0.11 -w 2\n",
		"-A -u [2001:db8::1]:53\n-a -u [2001:db8::1]:53 -r [2001:db8::2]:53 -g\n",
		"services: *a\n",
		"a: &a [*a]\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz", data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and the error %v", err)
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v\n%s", err, data)
		}
		text := FormatIPVSADM(c)
		back, err := Parse("formatted", []byte(text))
		if err != nil {
			t.Fatalf("Parse(FormatIPVSADM) failed: %v\ninput:\n%s\nformatted:\n%s", err, data, text)
		}
		if !equalServices(ipvsadmView(c), ipvsadmView(back)) {
			t.Fatalf("round trip changed the services:\n%s\nthen:\n%s", dump(c), dump(back))
		}
	})
}

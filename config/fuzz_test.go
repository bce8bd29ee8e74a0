package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input panics; what parses validates, parses the same
// again, has a Clone equal to it (and no restart-only change against it),
// and survives the trip through FormatIPVSADM with its services unchanged.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*"))
	for _, name := range files {
		if fi, err := os.Stat(name); filepath.Ext(name) == ".golden" || err == nil && fi.IsDir() {
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
		checkCloneAndReparse(t, "fuzz", data)
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

// FuzzEditIpvsadm: no command line panics; an edit never changes its
// input; what it returns validates (an empty table allowed), and survives
// SaveIpvsadm and Parse unchanged; a refused edit is an *Error.
//
// The input is the argument vector joined with NUL, the one byte argv
// cannot hold, so that empty arguments and arguments with blanks in them
// (drlb ctl -A -t "198.18.0.102:80 " -s "") are tried too.
func FuzzEditIpvsadm(f *testing.F) {
	const sep = "\x00"
	for _, s := range []string{
		"-A -t 198.18.0.102:80 -s rr",
		"-A -t 198.18.0.102:0 -s sh -b sh-port,sh-fallback -p 120 -M 255.255.255.0",
		"-At 198.18.0.102:80 -p",
		"-E -t 198.18.0.100:80 -s mh -b mh-port",
		"-D -u 198.18.0.101:53",
		"-a -t 198.18.0.100:80 -r 198.18.0.13 -w5",
		"-e -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 0",
		"-d -t 198.18.0.100:80 -r 198.18.0.12",
		"-a -t 198.18.0.100:80 -r 198.18.0.13 -m",
		"-A -u [2001:2::100]:53 -p 10 -M 64",
		"--add-server --udp-service=198.18.0.101:53 --real-server 198.18.0.12 --weight=4",
		"-C",
		"-Lnc",
		"-A -f 1",
	} {
		f.Add(strings.Join(strings.Fields(s), sep))
	}
	for _, args := range [][]string{
		{"-A", "-t", "198.18.0.102:80", "-s", ""},
		{"-A", "-t", "198.18.0.102:80 ", "-p", " 60"},
		{"-A", "-t", "", "-M", "255.255.255.0"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.13", "-w", "1 2"},
		{"--add-service", "--tcp-service= 198.18.0.102:80", "--persistent="},
		{"-E", "-t", "198.18.0.100:80", "-s rr"},
		{""},
	} {
		f.Add(strings.Join(args, sep))
	}
	base, err := Parse("base.yaml", []byte(editBase))
	if err != nil {
		f.Fatal(err)
	}
	before := dump(base)
	f.Fuzz(func(t *testing.T, line string) {
		got, err := EditIpvsadm(base, strings.Split(line, sep))
		if dump(base) != before {
			t.Fatalf("EditIpvsadm(%q) changed its input", line)
		}
		if err != nil {
			var e *Error
			if got != nil || !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("EditIpvsadm(%q): %v (config %v), want an *Error and no config", line, err, got != nil)
			}
			_ = err.Error()
			return
		}
		if err := validateConfig(got, "", nil, true); err != nil {
			t.Fatalf("EditIpvsadm(%q) returned a config that does not validate: %v", line, err)
		}
		if len(got.Services) == 0 {
			return
		}
		for _, numeric := range []bool{true, false} {
			text := SaveIpvsadm(got, numeric)
			back, err := Parse("saved", []byte(text))
			if err != nil {
				t.Fatalf("Parse(SaveIpvsadm) after %q: %v\n%s", line, err, text)
			}
			sorted := &Config{Services: sortedServices(got.Services)}
			if !equalServices(ipvsadmView(sorted), ipvsadmView(back)) {
				t.Fatalf("save round trip after %q changed the services:\n%s\nthen:\n%s", line, dump(sorted), dump(back))
			}
		}
	})
}

// FuzzKeepalived: no keepalived.conf panics the reader; a refusal is an
// ErrInvalid *Error without a config; what parses validates. Includes are
// read from a small in-memory file system.
func FuzzKeepalived(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "keepalived", "*.conf"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		kaService,
		"include inc/*.conf\n",
		"include {inc/a,inc/b}.conf\n",
		"virtual_server_group g {\n 198.18.0.1-3 80\n 2001:2::1-f 80\n}\nvirtual_server group g {\n lb_kind DR\n protocol UDP\n}\n",
		"virtual_server [2001:2::1]:53 {\n lb_kind DR\n protocol UDP\n real_server 2001:2::2 53 {\n  UDP_CHECK {\n   payload 01 02\n   require_reply 0x\n  }\n }\n}\n",
		"a \"b\\x41\" 'c' { d { e } } }\n",
		"@x y\n",
		kaVRRP("global_defs {\n vrrp_version 3\n}\n", " state MASTER\n priority 150\n virtual_router_id 51\n advert_int 0.1\n nopreempt\n"),
		// The adverts' list: no VIP in it, another family, a VIP excluded.
		"global_defs {\n vrrp_version 3\n}\nvrrp_instance VI_1 {\n virtual_router_id 7\n virtual_ipaddress {\n  198.18.0.50\n  198.18.0.100/24 dev eth0\n  2001:2::1\n }\n" +
			" virtual_ipaddress_excluded {\n  198.18.0.101\n }\n}\n" + kaService,
	} {
		f.Add([]byte(s))
	}
	fsys := mapFS{
		"inc/a.conf": kaService,
		"inc/b.conf": "include a.conf\nglobal_defs {\n lvs_timeouts tcp 10\n}\n",
		"inc/c.conf": "include c.conf\n",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := parse(fsys, "fuzz.conf", data)
		if err != nil {
			if c != nil {
				t.Fatalf("a config with the error %v", err)
			}
			var e *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an ErrInvalid *Error", err, err)
			}
			_ = err.Error()
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted a config that does not validate: %v\n%s", err, data)
		}
	})
}

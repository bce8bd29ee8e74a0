package config

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// mapFS is an in-memory file system for includes: clean relative paths
// to contents.
type mapFS map[string]string

func (m mapFS) Glob(pattern string) ([]string, error) {
	var out []string
	names := map[string]bool{}
	for name := range m {
		names[name] = true
		for d := path.Dir(name); d != "."; d = path.Dir(d) {
			names[d] = true
		}
	}
	for name := range names {
		ok, err := path.Match(filepath.ToSlash(pattern), name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m mapFS) ReadFile(name string) ([]byte, error) {
	s, ok := m[filepath.ToSlash(filepath.Clean(name))]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m mapFS) IsDir(name string) bool {
	prefix := filepath.ToSlash(filepath.Clean(name)) + "/"
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// dumpWarnings renders warnings one a line, for goldens and messages.
func dumpWarnings(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.String() + "\n")
	}
	return b.String()
}

// kaService is a virtual server with one real server: lines 1-8.
const kaService = `virtual_server 198.18.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 80 {
        weight 3
    }
}
`

// kaCheck wraps checker lines in a virtual and real server: the checker
// starts on line 6.
func kaCheck(checker string) string {
	return "virtual_server 198.18.0.100 80 {\n    lb_kind DR\n    protocol TCP\n    real_server 198.18.0.11 80 {\n        weight 1\n" +
		checker + "\n    }\n}\n"
}

// TestKeepalivedGolden reads each keepalived.conf under
// testdata/keepalived (keepalived's own samples turned to DR, and ours)
// and compares the config and the warnings with its golden file.
func TestKeepalivedGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "keepalived", "*.conf"))
	if err != nil || len(files) < 8 {
		t.Fatalf("keepalived samples: %v %v", files, err)
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			c, warns, err := LoadWithWarnings(name)
			if err != nil {
				t.Fatal(err)
			}
			ha := ""
			if c.HA != nil { // only a vrrp_instance holding the VIPs maps to ha:
				ha = dumpHA(c)
			}
			golden(t, filepath.Join("keepalived", filepath.Base(name)+".golden"), dump(c)+ha+"warnings:\n"+dumpWarnings(warns))
		})
	}
}

// clearLines zeroes the Line fields, which differ between a
// keepalived.conf and its YAML twin by nature.
func clearLines(c *Config) {
	c.Lines = nil
	if c.HA != nil {
		// Where the interface came from: a vrrp_instance or, in YAML,
		// interface: (Config.Interface, compared, holds it either way).
		// The adverts' address list is the one thing a twin cannot say:
		// YAML has no key for it (its adverts carry the VIPs), and
		// TestKeepalivedVRRPAdvertAddrs checks it.
		c.HA.Line, c.HA.Interface, c.HA.Addrs = 0, "", nil
	}
	for i := range c.Services {
		s := &c.Services[i]
		s.Line = 0
		for j := range s.RealServers {
			s.RealServers[j].Line = 0
		}
		if s.SorryServer != nil {
			s.SorryServer.Line = 0
		}
	}
}

// TestKeepalivedTwins: every keepalived.conf under testdata/keepalived has
// a hand-written YAML twin, and both parse into the same Config.
func TestKeepalivedTwins(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "keepalived", "*.conf"))
	for _, name := range files {
		twin := strings.TrimSuffix(name, ".conf") + ".yaml"
		t.Run(filepath.Base(name), func(t *testing.T) {
			ka, _, err := LoadWithWarnings(name)
			if err != nil {
				t.Fatal(err)
			}
			y, warns, err := LoadWithWarnings(twin)
			if err != nil {
				t.Fatalf("the YAML twin: %v", err)
			}
			if len(warns) > 0 {
				t.Errorf("YAML gave warnings: %v", warns)
			}
			clearLines(ka)
			clearLines(y)
			if !reflect.DeepEqual(ka, y) {
				t.Fatalf("%s and %s differ\n--- keepalived.conf:\n%s--- YAML:\n%s", name, twin, dump(ka), dump(y))
			}
		})
	}
}

func TestParseKeepalivedGood(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string // pieces of dump's output
		warns []string // pieces of the warnings, in order
	}{
		{"minimal", kaService, []string{
			"service tcp 198.18.0.100:80 line=1 scheduler=wrr hash_port=false fallback=false table_size=0 persistence=0s bits=32",
			`  realserver 198.18.0.11 line=5 weight=3 mac=""` + "\n",
		}, nil},
		{"lvs_sched and lvs_method, udp, default scheduler", "virtual_server 198.18.0.100 53 {\n lvs_method DR\n protocol udp\n real_server 198.18.0.11 53 {\n }\n}\n",
			[]string{"service udp 198.18.0.100:53 line=1 scheduler=wlc"}, nil},
		{"real server lvs_method", "virtual_server 198.18.0.100 80 {\n protocol TCP\n real_server 198.18.0.11 80 {\n  lvs_method DR\n }\n}\n",
			[]string{"realserver 198.18.0.11"}, nil},
		// keepalived ignores a method not in capitals (strcmp), keeping
		// the one it had: the virtual server's DR here.
		{"lb_kind dr after DR, lvs_method dr: ignored, DR kept", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n lb_kind dr\n protocol TCP\n real_server 198.18.0.11 80 {\n  lvs_method dr\n }\n}\n",
			[]string{"realserver 198.18.0.11"},
			[]string{`keepalived.conf:3: warning: keyword "lb_kind" ignored (keepalived takes DR in capitals only: it ignores "dr" as an unknown routing method)`, `keepalived.conf:6: warning: keyword "lvs_method" ignored`}},
		{"bracketed IPv6 and port", "virtual_server [2001:2::100]:443 {\n lb_kind DR\n protocol TCP\n real_server [2001:2::11]:443 {\n }\n}\n",
			[]string{"service tcp [2001:2::100]:443", "realserver 2001:2::11"}, nil},
		{"bracketed IPv6, port apart", "virtual_server [2001:2::100] 443 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 443 {\n }\n}\n",
			[]string{"service tcp [2001:2::100]:443"}, nil},
		{"IPv4 with colon port", "virtual_server 198.18.0.100:8080 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11:8080 {\n }\n}\n",
			[]string{"service tcp 198.18.0.100:8080"}, nil},
		{"persistence default and granularity", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n persistence_timeout\n persistence_granularity 255.255.255.0\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"persistence=6m0s bits=24"}, nil},
		// check_parser.c pgr_handler sets persistence_timeout to
		// IPVS_SVC_PERSISTENT_TIMEOUT when none is set.
		{"granularity without a timeout: persistent for 360 s", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n persistence_granularity 255.255.255.0\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"persistence=6m0s bits=24"}, []string{`keepalived.conf:4: warning: persistence_granularity without persistence_timeout: persistence_timeout 360, as keepalived sets it`}},
		{"granularity before a timeout: the timeout", "virtual_server 2001:2::100 80 {\n lb_kind DR\n protocol TCP\n persistence_granularity 64\n persistence_timeout 30\n real_server 2001:2::11 80 {\n }\n}\n",
			[]string{"persistence=30s bits=64"}, nil},
		// check_data.c validate_check_config: a group entry without a port
		// makes the virtual_server persistent, every address of it.
		{"group entry without a port: the whole virtual_server persistent", "virtual_server_group G {\n 198.18.0.100\n 198.18.0.101 80\n}\nvirtual_server group G {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"service tcp 198.18.0.100:0 line=5 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=6m0s", "service tcp 198.18.0.101:80 line=5 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=6m0s"},
			[]string{`keepalived.conf:2: warning: virtual_server_group G has an address without a port (198.18.0.100): the virtual_server at line 5 gets persistence_timeout 360 for all its services, as keepalived sets it`}},
		{"group entry without a port, timeout set", "virtual_server_group G {\n 198.18.0.100\n 198.18.0.101 80\n}\nvirtual_server group G {\n lb_kind DR\n protocol TCP\n persistence_timeout 50\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"service tcp 198.18.0.100:0 line=5 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=50s", "service tcp 198.18.0.101:80 line=5 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=50s"}, nil},
		// check_parser.c vs_weight_handler: 1..65535, else an error and
		// the weight kept.
		{"virtual_server weight 0: refused, 1 kept", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n weight 0\n real_server 198.18.0.11 80 {\n }\n real_server 198.18.0.12 80 {\n  weight 0\n }\n}\n",
			[]string{`realserver 198.18.0.11 line=5 weight=1 mac=""`, `realserver 198.18.0.12 line=7 weight=0 mac=""`},
			[]string{`keepalived.conf:4: warning: keyword "weight" ignored (0 is outside a virtual_server's 1..65535: keepalived refuses it and keeps the weight it had (1 unless set))`}},
		{"virtual_server weight 0 after 5: 5 kept", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n weight 5\n weight 0\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{`realserver 198.18.0.11 line=6 weight=5 mac=""`}, []string{`keepalived.conf:5: warning: keyword "weight" ignored (0 is outside`}},
		{"port omitted: persistent", "virtual_server 198.18.0.100 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 {\n  TCP_CHECK {\n   connect_port 22\n  }\n }\n}\n",
			[]string{"service tcp 198.18.0.100:0 line=1", "persistence=6m0s", "check=tcp port=22"}, []string{"has no port: persistence_timeout 360"}},
		// sh-port sets IPVS's flag-2 below lb_algo sh; mh reads the bit.
		{"sh flags as IPVS bits", "virtual_server 198.18.0.100 80 {\n lb_algo sh\n sh-port\n flag-1\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=mh hash_port=true fallback=true"}, nil},
		{"flags on rr do nothing", "virtual_server 198.18.0.100 80 {\n lb_algo rr\n sh-port\n flag-3\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=rr hash_port=false fallback=false"}, []string{`keepalived.conf:3: warning: keyword "sh-port" ignored (keepalived sets sh-port only below lb_algo sh, and it stands under lb_algo rr`, `"flag-3" ignored`}},
		{"flag-3 on sh", "virtual_server 198.18.0.100 80 {\n lb_algo sh\n flag-3\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=sh hash_port=false fallback=false"}, []string{`"flag-3" ignored (neither sh nor mh reads flag-3)`}},
		// check_parser.c lbflags_handler sets sh-port and sh-fallback
		// only while the scheduler so far is sh, mh-port and mh-fallback
		// only while it is mh; elsewhere they do nothing.
		{"sh-port above lb_algo sh: ignored", "virtual_server 198.18.0.100 80 {\n sh-port\n sh-fallback\n lb_algo sh\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=sh hash_port=false fallback=false"}, []string{`keepalived.conf:2: warning: keyword "sh-port" ignored (keepalived sets sh-port only below lb_algo sh, and it stands before any lb_algo`, `keepalived.conf:3: warning: keyword "sh-fallback" ignored`}},
		{"mh-port under lb_algo sh: ignored", "virtual_server 198.18.0.100 80 {\n lb_algo sh\n mh-port\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=sh hash_port=false fallback=false"}, []string{`keepalived.conf:3: warning: keyword "mh-port" ignored (keepalived sets mh-port only below lb_algo mh, and it stands under lb_algo sh`}},
		{"mh flags below lb_algo mh", "virtual_server 198.18.0.100 80 {\n lb_algo mh\n mh-port\n mh-fallback\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"scheduler=mh hash_port=true fallback=true"}, nil},
		// vs_inhibit_handler takes no value: on, whatever follows.
		{"virtual_server inhibit_on_failure off: on", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n inhibit_on_failure off\n real_server 198.18.0.11 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
			[]string{"198.18.0.11 line=5 weight=1 mac=\"\" check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=true"},
			[]string{`keepalived.conf:4: warning: keyword "inhibit_on_failure" ignored (keepalived takes no value here (a virtual_server's inhibit_on_failure is on once written): it ignores "off" and inhibits`}},
		// pto_handler reads 1 and up: 0 is ignored, the timeout stays.
		{"persistence_timeout 0 ignored", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n persistence_timeout 50\n persistence_timeout 0\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{"persistence=50s"}, []string{`keepalived.conf:5: warning: keyword "persistence_timeout" ignored (keepalived takes 1 or more`}},
		{"check defaults are keepalived's", kaCheck("        TCP_CHECK {\n        }"),
			[]string{"check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=1s"}, nil},
		{"http defaults", kaCheck("        HTTP_GET {\n            url {\n                path /\n            }\n        }"),
			[]string{`check=http port=0 path="/" status=200-299 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=3s`}, nil},
		{"retry 0 is one failure", kaCheck("        TCP_CHECK {\n            retry 0\n        }"), []string{"retries=1"}, nil},
		// ... in a checker only: vs_retry_handler and rs_retry_handler
		// read 1 and up, and ignore a 0 ("retry value invalid").
		{"retry 0 in virtual and real server: ignored, as keepalived", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n retry 0\n real_server 198.18.0.11 80 {\n  retry 0\n  TCP_CHECK {\n  }\n }\n}\n",
			[]string{"check=tcp port=0 interval=1m0s timeout=5s retries=2 "},
			[]string{`keepalived.conf:4: warning: keyword "retry" ignored`, `keepalived.conf:6: warning: keyword "retry" ignored`}},
		// keepalived installs nb_get_retry in HTTP_GET and SSL_GET only
		// (check_http.c); in TCP_CHECK, UDP_CHECK, DNS_CHECK, real_server
		// and virtual_server it is an unknown keyword: the retry count
		// stays the default or the inherited retry.
		{"nb_get_retry in TCP_CHECK: ignored, as keepalived", kaCheck("        TCP_CHECK {\n            nb_get_retry 3\n        }"),
			[]string{"check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=1s"},
			[]string{`keepalived.conf:7: warning: keyword "nb_get_retry" ignored (keepalived knows nb_get_retry only in HTTP_GET and SSL_GET (elsewhere the keyword is retry): it ignores it here, and so does drlb)`}},
		{"nb_get_retry in real and virtual server: ignored, retry inherited", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n nb_get_retry 7\n retry 2\n real_server 198.18.0.11 80 {\n  nb_get_retry 5\n  UDP_CHECK {\n   nb_get_retry 4\n  }\n }\n}\n",
			[]string{"check=udp port=0 interval=1m0s timeout=5s retries=3 "},
			[]string{`keepalived.conf:4: warning: keyword "nb_get_retry" ignored`, `keepalived.conf:7: warning: keyword "nb_get_retry" ignored`, `keepalived.conf:9: warning: keyword "nb_get_retry" ignored`}},
		{"nb_get_retry in SSL_GET: retry", kaCheck("        SSL_GET {\n            url {\n                path /\n            }\n            nb_get_retry 3\n        }"),
			[]string{"check=https port=0", "retries=4"}, nil},
		// check_parser.c: delay_before_retry reads down to 0 (retry at
		// once); drlb waits its shortest period instead, and says so.
		{"delay_before_retry 0: drlb's shortest retry delay, with a warning", kaCheck("        TCP_CHECK {\n            retry 2\n            delay_before_retry 0\n        }"),
			[]string{"retries=3 inhibit=false retry_delay=10ms"},
			[]string{"keepalived.conf:8: warning: delay_before_retry 0 is under drlb's shortest retry delay: the next try comes 10ms after a failure"}},
		{"delay_before_retry under 10ms, inherited from the virtual server", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n delay_before_retry 0.005\n real_server 198.18.0.11 80 {\n  TCP_CHECK {\n  }\n }\n real_server 198.18.0.12 80 {\n  TCP_CHECK {\n  }\n }\n}\n",
			[]string{"realserver 198.18.0.11 line=5 weight=1 mac=\"\" check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=10ms", "realserver 198.18.0.12 line=9 weight=1 mac=\"\" check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=10ms"},
			[]string{"keepalived.conf:4: warning: delay_before_retry 0.005 is under drlb's shortest retry delay: the next try comes 10ms after a failure"}},
		{"a url path goes out as written", kaCheck("        HTTP_GET {\n            url {\n                path /100%-ok?a=b\\#top\n            }\n        }"),
			[]string{`path="/100%-ok?a=b#top"`}, nil},
		{"fractional timers", kaCheck("        TCP_CHECK {\n            connect_timeout 0.25\n            delay_loop 1.5\n            delay_before_retry 0.1\n        }"),
			[]string{"interval=1.5s timeout=250ms retries=2 inhibit=false retry_delay=100ms"}, nil},
		{"several status_code lines add up", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 200\n                status_code 301-302\n            }\n        }"),
			[]string{`status=200 301-302`}, nil},
		{"real server port is the check port", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 8080 {\n  TCP_CHECK {\n  }\n }\n}\n",
			[]string{"check=tcp port=8080"}, []string{"keepalived.conf:4: warning: real_server port 8080 differs from the service port 80: direct routing keeps the service port (8080 is used for health checks only), as keepalived resets it"}},
		{"virtualhost inherited, checker first", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n virtualhost vs.example\n real_server 198.18.0.11 80 {\n  virtualhost rs.example\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n real_server 198.18.0.12 80 {\n  SSL_GET {\n   virtualhost ck.example\n   url {\n    path /\n   }\n  }\n }\n real_server 198.18.0.13 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n",
			[]string{`198.18.0.11 line=5 weight=1 mac="" check=http port=0 path="/" status=200-299 host="rs.example"`, `host="ck.example"`, `198.18.0.13 line=21 weight=1 mac="" check=http port=0 path="/" status=200-299 host="vs.example"`}, nil},
		// url_virtualhost_handler: a url's own Host header, before the
		// checker's (ignored, drlb probed with another Host than keepalived).
		{"url virtualhost, before the checker's", kaCheck("        HTTP_GET {\n            virtualhost ck.example\n            url {\n                path /a\n                virtualhost a.example\n            }\n            url {\n                path /b\n            }\n        }"),
			[]string{`path="/a" status=200-299 url_host="a.example" path="/b" status=200-299 host="ck.example"`}, nil},
		{"inhibit_on_failure values", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n inhibit_on_failure yes\n real_server 198.18.0.11 80 {\n  TCP_CHECK {\n  }\n }\n real_server 198.18.0.12 80 {\n  inhibit_on_failure false\n  TCP_CHECK {\n  }\n }\n}\n",
			[]string{"198.18.0.11 line=5 weight=1 mac=\"\" check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=true", "198.18.0.12 line=9 weight=1 mac=\"\" check=tcp port=0 interval=1m0s timeout=5s retries=2 inhibit=false"}, nil},
		{"udp check", "virtual_server 198.18.0.100 53 {\n lb_kind DR\n protocol UDP\n real_server 198.18.0.11 53 {\n  UDP_CHECK {\n   payload ab CD 1\n   require_reply x1\n   min_reply_length 2\n  }\n }\n}\n",
			[]string{`check=udp port=0 interval=1m0s timeout=5s retries=2 inhibit=false retry_delay=1s payload="abcd01" require_reply=true reply="x1" reply_length=2-255`}, nil},
		{"dns check defaults are keepalived's DNS_CHECK's", kaCheck("        DNS_CHECK {\n        }"),
			[]string{`check=dns port=0 interval=1m0s timeout=5s retries=4 inhibit=false retry_delay=1m0s name="." record=SOA`}, nil},
		{"dns check type any case, name, timing inherited", "virtual_server 198.18.0.100 53 {\n lb_kind DR\n protocol UDP\n delay_loop 3\n retry 1\n real_server 198.18.0.11 53 {\n  delay_before_retry 0.5\n  DNS_CHECK {\n   type aaaa\n   name www.example.org\n  }\n }\n}\n",
			[]string{`check=dns port=0 interval=3s timeout=5s retries=2 inhibit=false retry_delay=500ms name="www.example.org" record=AAAA`}, nil},
		{"dns check on a tcp service, another port", kaCheck("        DNS_CHECK {\n            connect_port 53\n            type NS\n            name example.org.\n        }"),
			[]string{`check=dns port=53 interval=1m0s timeout=5s retries=4 inhibit=false retry_delay=1m0s name="example.org." record=NS`}, nil},
		{"dns check: what keepalived ignores", kaCheck("        DNS_CHECK {\n            type SRV\n            name .example.org\n            name a..b\n            name ok.example\n            name other.example\n            payload 00\n        }"),
			[]string{`check=dns port=0 interval=1m0s timeout=5s retries=4 inhibit=false retry_delay=1m0s name="ok.example" record=SOA`},
			[]string{
				`keepalived.conf:7: warning: keyword "type" ignored (keepalived knows no DNS_CHECK type "SRV", only A, NS, CNAME, SOA, MX, TXT, AAAA, RRSIG, DNSKEY: it asks for SOA, as drlb does)`,
				`keepalived.conf:8: warning: keyword "name" ignored (the name ".example.org" has an empty label: keepalived ignores it and asks for ".")`,
				`keepalived.conf:9: warning: keyword "name" ignored (the name "a..b" has an empty label`,
				`keepalived.conf:11: warning: keyword "name" ignored (the name is given twice: keepalived keeps the first, at line 10)`,
				`keepalived.conf:12: warning: keyword "payload" ignored (not a keepalived keyword in DNS_CHECK`,
			}},
		// ssvri_handler and ss_forwarding_handler apply to the sorry
		// server read so far: before it, both are ignored.
		{"sorry_server_inhibit above sorry_server: ignored", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n sorry_server_inhibit\n sorry_server 198.18.0.99\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{`sorry_server 198.18.0.99 line=5 mac="" inhibit=false`}, []string{`keepalived.conf:4: warning: keyword "sorry_server_inhibit" ignored (keepalived ignores it before (or without) the sorry_server line)`}},
		{"sorry server inhibit and method", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n sorry_server 198.18.0.99\n sorry_server_inhibit\n sorry_server_lvs_method DR\n quorum 1\n real_server 198.18.0.11 80 {\n }\n}\n",
			[]string{`sorry_server 198.18.0.99 line=4 mac="" inhibit=true`}, nil},
		{"lvs_timeouts", "global_defs {\n lvs_timeouts tcp 7200 tcpfin 30 udp 10\n}\n" + kaService,
			[]string{"timeouts tcp=2h0m0s tcp_synrecv=1m0s tcp_fin=30s tcp_close=10s udp=10s"}, nil},
		{"group range, prefix, IPv6 range", "virtual_server_group g {\n 198.18.0.1-2 80\n 198.18.0.8/31 80\n}\nvirtual_server_group g6 {\n 2001:2::a-b 80\n}\nvirtual_server group g {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\nvirtual_server group g6 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {\n }\n}\n",
			[]string{"service tcp 198.18.0.1:80 line=8", "service tcp 198.18.0.2:80", "service tcp 198.18.0.8:80", "service tcp 198.18.0.9:80", "service tcp [2001:2::a]:80", "service tcp [2001:2::b]:80"}, nil},
		{"group used before it is defined, full-address range", "virtual_server group late {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\nvirtual_server_group late {\n 198.18.0.255-198.18.1.0 80\n}\n",
			[]string{"service tcp 198.18.0.255:80", "service tcp 198.18.1.0:80"}, nil},
		{"one group, tcp and udp", "virtual_server_group dns {\n 198.18.0.53 53\n}\nvirtual_server group dns {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 53 {\n }\n}\nvirtual_server group dns {\n lb_kind DR\n protocol UDP\n real_server 198.18.0.11 53 {\n }\n}\n",
			[]string{"service tcp 198.18.0.53:53", "service udp 198.18.0.53:53"}, nil},
		{"quotes, comments, braces against words", "virtual_server 198.18.0.100 80{ # comment {\n lb_kind \"DR\" ! another\n protocol \"TCP\"\n real_server 198.18.0.11 80{\n  HTTP_GET{\n   url{ path \"/a#b!c\"\n   }\n  }\n }}\n",
			[]string{`path="/a#b!c"`}, nil},
		// keepalived's decomment(): \# and \! outside quotes are the
		// characters; its word splitter has no single quotes.
		{"escaped comment characters, single quotes ordinary", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  HTTP_GET {\n   url {\n    path /a\\#b\\!c'd' # a comment\n   }\n  }\n }\n}\n",
			[]string{`path="/a#b!c'd'"`}, nil},
		{"brace on the next line", "virtual_server 198.18.0.100 80\n{\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80\n {\n }\n}\n",
			[]string{"service tcp 198.18.0.100:80 line=1", "realserver 198.18.0.11 line=5"}, nil},
		{"byte order mark and CRLF", "\ufeffvirtual_server 198.18.0.100 80 {\r\n lb_kind DR\r\n protocol TCP\r\n real_server 198.18.0.11 80 {\r\n }\r\n}\r\n",
			[]string{"service tcp 198.18.0.100:80 line=1"}, nil},
		{"ignored everywhere", "global_defs {\n router_id x\n vrrp_strict\n lvs_flush\n}\nvrrp_sync_group G {\n group {\n  VI_1\n }\n}\nstatic_routes {\n 198.18.5.0/24 via 198.18.0.1\n}\nnet_namespace blue\nfrobnicate\nvirtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n ha_suspend\n hysteresis 1\n lb_algoo rr\n real_server 198.18.0.11 80 {\n  notify_up /bin/true\n  weigth 2\n  TCP_CHECK {\n   bindto 198.18.0.2\n   connect_ip 198.18.0.12\n   conect_port 80\n  }\n  PING_CHECK {\n  }\n }\n}\n",
			[]string{"realserver 198.18.0.11 line=22 weight=1"},
			[]string{
				`keepalived.conf:2: warning: keyword "router_id" ignored (a keepalived global setting drlb has no use for)`,
				`keepalived.conf:3: warning: keyword "vrrp_strict" ignored (a keepalived VRRP setting drlb has no use for)`,
				`keepalived.conf:4: warning: keyword "lvs_flush" ignored (drlb keeps no kernel IPVS table to flush)`,
				`keepalived.conf:6: warning: keyword "vrrp_sync_group" ignored`,
				`keepalived.conf:11: warning: keyword "static_routes" ignored`,
				`keepalived.conf:14: warning: keyword "net_namespace" ignored`,
				`keepalived.conf:15: warning: keyword "frobnicate" ignored (not a keepalived keyword at the top level)`,
				`keepalived.conf:19: warning: keyword "ha_suspend" ignored`,
				`keepalived.conf:20: warning: keyword "hysteresis" ignored`,
				`keepalived.conf:21: warning: keyword "lb_algoo" ignored (not a keepalived keyword in virtual_server, did you mean "lb_algo"?)`,
				`keepalived.conf:23: warning: keyword "notify_up" ignored`,
				`keepalived.conf:24: warning: keyword "weigth" ignored (not a keepalived keyword in real_server, did you mean "weight"?)`,
				`keepalived.conf:26: warning: keyword "bindto" ignored`,
				`keepalived.conf:27: warning: keyword "connect_ip" ignored (drlb checks the real server's own address)`,
				`keepalived.conf:28: warning: keyword "conect_port" ignored (not a keepalived keyword in TCP_CHECK, did you mean "connect_port"?)`,
				`keepalived.conf:30: warning: keyword "PING_CHECK" ignored`,
			}},
		{"duplicate real server dropped", kaService[:len(kaService)-2] + " real_server 198.18.0.11 80 {\n  weight 9\n }\n}\n",
			[]string{"weight=3"}, []string{"keepalived.conf:8: warning: real_server 198.18.0.11 is given twice (first at line 5): the second is dropped, as keepalived does"}},
		{"http check without url dropped", kaCheck("        HTTP_GET {\n            url {\n                digest 640205b7b0fc66c1ea91c463fac6334d\n            }\n        }"),
			[]string{`realserver 198.18.0.11 line=4 weight=1 mac=""` + "\n"},
			[]string{`keepalived.conf:6: warning: keyword "HTTP_GET" ignored (it has no url with a path, and keepalived drops such a checker)`, `keepalived.conf:7: warning: keyword "url" ignored (a url without a path is dropped, as keepalived does)`}},
		{"virtual server without real servers ignored", "virtual_server 198.18.0.99 80 {\n lb_kind DR\n protocol TCP\n}\n" + kaService,
			[]string{"service tcp 198.18.0.100:80 line=5"}, []string{"keepalived.conf:1: warning: virtual_server without a real_server: ignored, as keepalived ignores it"}},
		{"quorum without a sorry server", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n quorum 3\n real_server 198.18.0.11 80 {\n }\n}\n",
			nil, []string{`keepalived.conf:4: warning: keyword "quorum" ignored (it matters only with a sorry server, and drlb's quorum is 1)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := ParseWithWarnings("keepalived.conf", []byte(tc.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := dump(c)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("parsed config lacks %q; got:\n%s", w, got)
				}
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate of a parsed config: %v", err)
			}
			text := dumpWarnings(warns)
			if len(tc.warns) != len(warns) {
				t.Errorf("%d warnings, want %d:\n%s", len(warns), len(tc.warns), text)
			}
			for i, w := range tc.warns {
				if i < len(warns) && !strings.Contains(warns[i].String(), w) {
					t.Errorf("warning %d is %q, want it to contain %q", i, warns[i].String(), w)
				}
			}
		})
	}
}

// TestParseKeepalivedBad: every refusal names the file, line, column,
// keyword and value.
func TestParseKeepalivedBad(t *testing.T) {
	vs := func(lines ...string) string {
		return "virtual_server 198.18.0.100 80 {\n" + strings.Join(lines, "\n") + "\n    real_server 198.18.0.11 80 {\n    }\n}\n"
	}
	tests := []badCase{
		// What would forward differently from keepalived + IPVS.
		{"NAT", vs("    lb_kind NAT", "    protocol TCP"), 2, 13, "lb_kind", "NAT", "direct routing (DR) only"},
		{"TUN", vs("    lvs_method TUN type gue port 6080", "    protocol TCP"), 2, 16, "lvs_method", "TUN", "direct routing (DR) only"},
		{"NAT by default", vs("    protocol TCP"), 1, 1, "lb_kind", "", "keepalived's default is NAT"},
		// check_parser.c forwarding_handler compares with strcmp: "dr" is
		// an unknown routing method, ignored, and the service stays NAT.
		{"lb_kind in small letters", vs("    lb_kind dr", "    protocol TCP"), 2, 13, "lb_kind", "dr", `keepalived takes DR, NAT and TUN in capitals only: it ignores "dr" and runs the service as NAT`},
		{"lvs_method in mixed case", vs("    lvs_method Dr", "    protocol TCP"), 2, 16, "lvs_method", "Dr", "runs the service as NAT, its default"},
		// A real server's lvs_method dr is ignored too: it keeps the
		// virtual server's NAT.
		{"real server dr under NAT", "virtual_server 198.18.0.100 80 {\n lb_kind NAT\n protocol TCP\n real_server 198.18.0.11 80 {\n  lvs_method dr\n }\n}\n", 2, 10, "lb_kind", "NAT", "direct routing (DR) only"},
		{"real server NAT", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  lvs_method NAT\n }\n}\n", 5, 14, "lvs_method", "NAT", "direct routing (DR) only"},
		{"sorry server NAT", vs("    lb_kind DR", "    protocol TCP", "    sorry_server 198.18.0.99 80", "    sorry_server_lvs_method NAT"), 5, 29, "sorry_server_lvs_method", "NAT", "direct routing (DR) only"},
		// check_data.c alloc_rs / alloc_ssvr copy the virtual server's
		// method when the server is read: a server above lb_kind DR runs
		// as NAT, keepalived's default, and drlb used to run it as DR.
		{"real server above lb_kind DR", "virtual_server 198.18.0.100 80 {\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n lb_kind DR\n}\n", 3, 14, "real_server", "198.18.0.11", "comes before lb_kind DR (line 5)"},
		{"sorry server above lb_kind DR", "virtual_server 198.18.0.100 80 {\n protocol TCP\n sorry_server 198.18.0.99 80\n lb_kind DR\n real_server 198.18.0.11 80 {\n }\n}\n", 3, 15, "sorry_server", "198.18.0.99", "runs this one as NAT"},
		// ss_forwarding_handler ignores sorry_server_lvs_method before
		// the sorry server: it keeps the virtual server's NAT.
		{"sorry_server_lvs_method above sorry_server", "virtual_server 198.18.0.100 80 {\n lb_kind NAT\n protocol TCP\n sorry_server_lvs_method DR\n sorry_server 198.18.0.99 80\n real_server 198.18.0.11 80 {\n  lvs_method DR\n }\n}\n", 2, 10, "lb_kind", "NAT", "direct routing (DR) only"},
		{"fwmark service", "virtual_server fwmark 1 {\n lb_kind DR\n}\n", 1, 16, "virtual_server", "fwmark 1", "firewall-mark services are not supported"},
		{"fwmark in a group", "virtual_server_group g {\n 198.18.0.100 80\n fwmark 2\n}\n", 3, 2, "fwmark", "2", "firewall-mark services are not supported"},
		{"lblc", vs("    lb_algo lblc"), 2, 13, "lb_algo", "lblc", "drlb has no such scheduler (supported: rr, wrr, lc, wlc, sh, mh, sed, nq)"},
		{"dh", vs("    lvs_sched dh"), 2, 15, "lvs_sched", "dh", "supported: rr, wrr"},
		{"fo", vs("    lb_algo fo"), 2, 13, "lb_algo", "fo", "no such scheduler"},
		{"ovf", vs("    lb_algo ovf"), 2, 13, "lb_algo", "ovf", "no such scheduler"},
		{"lblcr", vs("    lb_algo lblcr"), 2, 13, "lb_algo", "lblcr", "no such scheduler"},
		{"SCTP", vs("    protocol SCTP"), 2, 14, "protocol", "SCTP", "SCTP services are not supported"},
		{"ops", vs("    ops"), 2, 5, "ops", "", "one-packet scheduling"},
		{"persistence engine", vs("    persistence_engine sip"), 2, 24, "persistence_engine", "sip", "not supported"},
		{"threshold", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  uthreshold 100\n }\n}\n", 5, 14, "uthreshold", "100", "connection thresholds"},
		{"quorum with sorry server", vs("    lb_kind DR", "    protocol TCP", "    sorry_server 198.18.0.99", "    quorum 2"), 5, 12, "quorum", "2", "a quorum above 1 with a sorry server"},
		{"protocol missing", vs("    lb_kind DR"), 1, 1, "protocol", "", "write protocol TCP or protocol UDP"},
		// Malformed values.
		{"protocol word", vs("    protocol ICMP"), 2, 14, "protocol", "ICMP", "must be TCP or UDP"},
		{"bad VIP", "virtual_server 198.18.0.300 80 {\n}\n", 1, 16, "virtual_server", "198.18.0.300", "not a numeric IPv4 or IPv6 address"},
		{"bad port", "virtual_server 198.18.0.100 http {\n}\n", 1, 29, "virtual_server", "http", "port must be an integer"},
		{"port twice", "virtual_server 198.18.0.100:80 80 {\n}\n", 1, 32, "virtual_server", "80", "the port is given twice"},
		{"no address", "virtual_server {\n}\n", 1, 1, "virtual_server", "", "needs an address"},
		{"no block", "virtual_server 198.18.0.100 80\n", 1, 1, "virtual_server", "", "needs a block"},
		{"loopback VIP", "virtual_server 127.0.0.1 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n", 1, 16, "virtual_server", "127.0.0.1", "a loopback address never reaches the network"},
		{"second checker", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  TCP_CHECK {\n  }\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}\n", 7, 3, "HTTP_GET", "", "a second checker (the TCP_CHECK at keepalived.conf:5 is the first)"},
		{"weight", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 70000\n }\n}\n", 5, 10, "weight", "70000", "must be an integer 0..65535"},
		{"weight word", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight heavy\n }\n}\n", 5, 10, "weight", "heavy", "must be an integer"},
		{"weight twice on a line", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight 1 2\n }\n}\n", 5, 12, "weight", "2", "takes one value"},
		{"timer", kaCheck("        TCP_CHECK {\n            connect_timeout soon\n        }"), 7, 29, "connect_timeout", "soon", "not a time in seconds"},
		{"timer too short for drlb", kaCheck("        TCP_CHECK {\n            connect_timeout 0.001\n        }"), 7, 29, "connect_timeout", "0.001", "must be at least 10ms"},
		{"retry too many", kaCheck("        TCP_CHECK {\n            retry 5000\n        }"), 7, 19, "retry", "5000", "must be an integer 0..999"},
		{"digest", kaCheck("        HTTP_GET {\n            url {\n                path /\n                digest 12345\n            }\n        }"), 9, 24, "digest", "12345", "not an MD5 digest"},
		{"status_code", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 2xx\n            }\n        }"), 9, 29, "status_code", "2xx", "not a status code or range"},
		{"status_code range", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 600\n            }\n        }"), 9, 29, "status_code", "600", "must be HTTP statuses 100..599"},
		{"path with a control character", kaCheck("        HTTP_GET {\n            url {\n                path \"/a\x01b\"\n            }\n        }"), 8, 22, "path", "/a\x01b", "must not contain control characters"},
		{"path // with a bad escape", kaCheck("        HTTP_GET {\n            url {\n                path //100%-ok\n            }\n        }"), 8, 22, "path", "//100%-ok", "a path starting with // goes out as a URL path"},
		{"path relative", kaCheck("        HTTP_GET {\n            url {\n                path index.html\n            }\n        }"), 8, 22, "path", "index.html", "must start with /"},
		{"payload", kaCheck("        UDP_CHECK {\n            payload 12zz\n        }"), 7, 21, "payload", "12zz", "not a hex digit"},
		{"require_reply", kaCheck("        UDP_CHECK {\n            require_reply 12 yy\n        }"), 7, 27, "require_reply", "12 yy", "not a hex digit"},
		{"reply lengths", kaCheck("        UDP_CHECK {\n            min_reply_length 10\n            max_reply_length 2\n        }"), 8, 30, "max_reply_length", "2", "reply lengths must be"},
		{"dns name label too long", kaCheck("        DNS_CHECK {\n            name " + strings.Repeat("a", 64) + ".org\n        }"), 7, 18, "name", strings.Repeat("a", 64) + ".org", "a label is longer than 63 characters"},
		{"dns name not ascii", kaCheck("        DNS_CHECK {\n            name \"bücher.example\"\n        }"), 7, 18, "name", "bücher.example", "xn--"},
		{"dns name two words", kaCheck("        DNS_CHECK {\n            name a b\n        }"), 7, 20, "name", "b", "takes one value"},
		{"dns type without a value", kaCheck("        DNS_CHECK {\n            type\n        }"), 7, 13, "type", "", "needs a value"},
		{"dns check block", kaCheck("        DNS_CHECK"), 6, 9, "DNS_CHECK", "", "needs a block"},
		{"connect_port 0", kaCheck("        TCP_CHECK {\n            connect_port 0\n        }"), 7, 26, "connect_port", "0", "must be a port 1..65535"},
		{"check on a port-0 service", "virtual_server 198.18.0.100 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 {\n  TCP_CHECK {\n  }\n }\n}\n", 5, 3, "TCP_CHECK", "0", "a check needs a port"},
		{"real server inhibit value", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  inhibit_on_failure maybe\n }\n}\n", 5, 22, "inhibit_on_failure", "maybe", "must be on, off"},
		{"real server family", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 2001:2::11 80 {\n }\n}\n", 4, 14, "real_server", "2001:2::11", "address family differs"},
		{"sorry server is the VIP", vs("    lb_kind DR", "    protocol TCP", "    sorry_server 198.18.0.100 80"), 4, 18, "sorry_server", "198.18.0.100", "cannot be the VIP"},
		{"two sorry servers", vs("    sorry_server 198.18.0.98", "    sorry_server 198.18.0.99"), 3, 5, "sorry_server", "198.18.0.99", "one sorry server"},
		{"persistence too long", vs("    lb_kind DR", "    protocol TCP", "    persistence_timeout 99999999"), 4, 25, "persistence_timeout", "99999999", "must be 0s..744h0m0s"},
		{"granularity", vs("    lb_kind DR", "    protocol TCP", "    persistence_timeout 60", "    persistence_granularity 255.0.255.0"), 5, 29, "persistence_granularity", "255.0.255.0", "not contiguous"},
		// keepalived reads an IPv4 granularity with inet_aton: 24 is 0.0.0.24.
		{"granularity a bare number", vs("    lb_kind DR", "    protocol TCP", "    persistence_granularity 24"), 4, 29, "persistence_granularity", "24",
			"a bare number is the mask 0.0.0.24 to ipvsadm and keepalived (inet_aton), not a prefix length: write the mask, 255.255.255.0"},
		{"single quotes are characters", vs("    lb_kind DR", "    protocol 'TCP'"), 3, 14, "protocol", "'TCP'", "must be TCP or UDP"},
		{"same service twice", kaService + kaService, 9, 16, "virtual_server", "198.18.0.100", "the same service (tcp 198.18.0.100:80) as the virtual_server at keepalived.conf:1"},
		{"group missing", "virtual_server group nope {\n}\n", 1, 22, "virtual_server group", "nope", "no virtual_server_group of that name"},
		{"group twice", "virtual_server_group g {\n}\nvirtual_server_group g {\n}\n", 3, 22, "virtual_server_group", "g", "group defined twice (first at keepalived.conf:1)"},
		{"group range backwards", "virtual_server_group g {\n 198.18.0.9-3 80\n}\n", 2, 2, "virtual_server_group", "198.18.0.9-3", "the range ends before it starts"},
		{"group too big", "virtual_server_group g {\n 198.18.0.0/16 80\n}\n", 2, 2, "virtual_server_group", "198.18.0.0/16", "more than 4096 addresses"},
		{"lvs_timeouts", "global_defs {\n lvs_timeouts tcp 0\n}\n" + kaService, 2, 19, "lvs_timeouts", "0", "above 0"},
		{"lvs_timeouts name", "global_defs {\n lvs_timeouts tcpsyn 5\n}\n" + kaService, 2, 15, "lvs_timeouts", "tcpsyn", "valid: tcp, tcpfin, udp"},
		{"url virtualhost not a Host header", kaCheck("        HTTP_GET {\n            url {\n                path /\n                virtualhost a.example/b\n            }\n        }"), 9, 29, "virtualhost", "a.example/b", "not a valid HTTP Host header"},
		// A status_code line's wrong range is the one named, at its column.
		{"status_code out of range after a good one", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 200 700\n            }\n        }"), 9, 33, "status_code", "700", "100..599"},
		{"status_code not a number after a good one", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 200 abc\n            }\n        }"), 9, 33, "status_code", "abc", "not a status code"},
		{"status_code range upside down", kaCheck("        HTTP_GET {\n            url {\n                path /\n                status_code 200-299 404-400\n            }\n        }"), 9, 37, "status_code", "404-400", "100..599"},
		// The file's shape.
		{"unclosed block", "virtual_server 198.18.0.100 80 {\n lb_kind DR\n", 1, 32, "", "{", "never closed"},
		{"stray close", kaService + "}\n", 9, 1, "", "}", "without a block"},
		{"stray open", "{\n}\n", 1, 1, "", "{", "must follow a keyword"},
		{"open quote", "virtual_server 198.18.0.100 80 {\n lb_kind \"DR\n}\n", 2, 10, "", "\"DR", "quote not closed"},
		{"conditional line", "@main virtual_server 198.18.0.100 80 {\n}\n", 1, 1, "@main", "", "conditional configuration lines"},
		{"parameter", "$VIP=198.18.0.100\n", 1, 1, "$VIP", "", "parameter definitions"},
		{"sequence", "~SEQ(i,1,3) real_server 198.18.0.1$i 80 {\n}\n", 1, 1, "~SEQ", "", "sequences"},
		{"nothing to balance", "global_defs {\n router_id x\n}\n", 0, 0, "virtual_server", "", "no virtual_server with real servers"},
		{"deep nesting", "a {" + strings.Repeat(" b {", 40) + "\n", 1, 0, "", "{", "nest more than 32 deep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "keepalived.conf", tc) })
	}
}

// TestKeepalivedIncludes: globs relative to the including file, sorted,
// braces, includes inside blocks, cycles refused, nothing matched warned.
func TestKeepalivedIncludes(t *testing.T) {
	service := func(vip, rs string) string {
		return "virtual_server " + vip + " 80 {\n lb_kind DR\n protocol TCP\n real_server " + rs + " 80 {\n }\n}\n"
	}
	fsys := mapFS{
		"etc/keepalived.conf":     "include conf.d/*.conf\ninclude \"other dir/{b,a}.conf\" # quoted, braces\n",
		"etc/conf.d/20-b.conf":    service("198.18.0.102", "198.18.0.12"),
		"etc/conf.d/10-a.conf":    service("198.18.0.101", "198.18.0.11"),
		"etc/conf.d/reals.inc":    " real_server 198.18.0.13 80 {\n }\n",
		"etc/conf.d/30-c.conf":    "virtual_server 198.18.0.103 80 {\n lb_kind DR\n protocol TCP\n include reals.inc\n}\n",
		"etc/other dir/a.conf":    service("198.18.0.104", "198.18.0.14"),
		"etc/other dir/b.conf":    service("198.18.0.105", "198.18.0.15"),
		"loop/a.conf":             "include b.conf\n",
		"loop/b.conf":             "include ../loop/a.conf\n",
		"self.conf":               "include self.conf\n",
		"empty.conf":              "include nothing/*.conf\n" + service("198.18.0.100", "198.18.0.11"),
		"dir.conf":                "include etc/con*\n" + service("198.18.0.100", "198.18.0.11"),
		"bad.conf":                "include etc/bad/99-bad.conf\n",
		"etc/bad/99-bad.conf":     "virtual_server 198.18.0.109 80 {\n lb_kind NAT\n protocol TCP\n real_server 198.18.0.19 80 {\n }\n}\n",
		"twice.conf":              "include a b\n",
		"brace.conf":              "include {a,b\n",
		"deep.conf":               "include deep2.conf\n",
		"deep2.conf":              "include deep3.conf\n",
		"deep3.conf":              "virtual_server 198.18.0.100 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n  weight x\n }\n}\n",
		"abs.conf":                "include /nonexistent-drlb-dir/*.conf\n" + service("198.18.0.100", "198.18.0.11"),
		"etc/conf.d/readme.notes": "not a config",
		"dup.conf":                "include etc/conf.d/10-a.conf\n" + service("198.18.0.101", "198.18.0.12"),
		"vrrp.conf":               "include etc/conf.d/10-a.conf\nvrrp_instance VI_1 {\n version 3\n virtual_router_id 51\n virtual_ipaddress {\n  198.18.0.200\n }\n}\n" + service("198.18.0.200", "198.18.0.12"),
		"dupreal.conf":            "virtual_server 198.18.0.103 80 {\n lb_kind DR\n protocol TCP\n include etc/conf.d/reals.inc\n real_server 198.18.0.13 80 {\n }\n}\n",
	}
	parseFS := func(name string) (*Config, []Warning, error) {
		data, err := fsys.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return parse(fsys, name, data)
	}
	t.Run("globs, order, braces, blocks", func(t *testing.T) {
		c, warns, err := parseFS("etc/keepalived.conf")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range c.Services {
			got = append(got, s.VIP.String()+">"+s.RealServers[0].Address.String())
		}
		want := "198.18.0.101>198.18.0.11 198.18.0.102>198.18.0.12 198.18.0.103>198.18.0.13 198.18.0.105>198.18.0.15 198.18.0.104>198.18.0.14"
		if strings.Join(got, " ") != want {
			t.Fatalf("services %v, want %s", got, want)
		}
		if len(warns) != 0 {
			t.Fatalf("warnings: %v", warns)
		}
	})
	for _, tc := range []struct {
		name, file string
		err        string // "" = no error
		warn       string
	}{
		{"cycle", "loop/a.conf", "loop/b.conf:1:9: include: \"../loop/a.conf\": loop/a.conf includes itself", ""},
		{"self", "self.conf", "self.conf:1:9: include: \"self.conf\": self.conf includes itself", ""},
		{"nothing matched", "empty.conf", "", `empty.conf:1: warning: keyword "include" ignored ("nothing/*.conf" matches no file: nothing included)`},
		{"absolute, nothing matched", "abs.conf", "", `matches no file`},
		{"directory", "dir.conf", "", `dir.conf:1: warning: keyword "include" ignored (etc/conf.d is a directory: not included)`},
		{"error in an included file names it", "bad.conf", "etc/bad/99-bad.conf:2:10: lb_kind: \"NAT\": drlb does direct routing (DR) only", ""},
		{"validation error in an included file names it", "deep.conf", "deep3.conf:5:10: weight: \"x\": must be an integer", ""},
		{"a duplicate names the include it duplicates", "dup.conf", "dup.conf:2:16: virtual_server: \"198.18.0.101\": the same service (tcp 198.18.0.101:80) as the virtual_server at etc/conf.d/10-a.conf:1", ""},
		{"a duplicate real server names the include", "dupreal.conf", "", "dupreal.conf:5: warning: real_server 198.18.0.13 is given twice (first at etc/conf.d/reals.inc:1): the second is dropped, as keepalived does"},
		{"a VIP missing from the instance names the include", "vrrp.conf", "vrrp.conf:2:1: vrrp_instance: \"VI_1\": does not hold the VIP 198.18.0.101 of the virtual_server at etc/conf.d/10-a.conf:1", ""},
		{"two patterns", "twice.conf", "twice.conf:1:1: include: takes one file name or pattern", ""},
		{"unbalanced brace", "brace.conf", "brace.conf:1:9: include: \"{a,b\": unbalanced {", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := parseFS(tc.file)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			case tc.err != "" && (c != nil || !errors.Is(err, ErrInvalid)):
				t.Fatalf("got a config %v or an error that is not ErrInvalid: %v", c != nil, err)
			}
			if tc.warn != "" && !strings.Contains(dumpWarnings(warns), tc.warn) {
				t.Fatalf("warnings:\n%swant one containing %q", dumpWarnings(warns), tc.warn)
			}
		})
	}
}

// TestKeepalivedIncludeSkipsExecutable: an included file with an execute
// bit is skipped with a warning naming it, as keepalived's check_glob_file
// skips it ("not a regular non-executable file - skipping"), whether a
// pattern or its own name includes it.
func TestKeepalivedIncludeSkipsExecutable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no execute bits")
	}
	service := func(vip string) string {
		return "virtual_server " + vip + " 80 {\n lb_kind DR\n protocol TCP\n real_server 198.18.0.11 80 {\n }\n}\n"
	}
	dir := t.TempDir()
	for name, f := range map[string]struct {
		data string
		mode os.FileMode
	}{
		"conf.d/a.conf": {service("198.18.0.100"), 0o644},
		"conf.d/b.conf": {service("198.18.0.101"), 0o755},
		"c.conf":        {service("198.18.0.102"), 0o744},
	} {
		name = filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, f.mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(main, []byte("include conf.d/*.conf\ninclude c.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, warns, err := LoadWithWarnings(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Services) != 1 || c.Services[0].VIP.String() != "198.18.0.100" {
		t.Errorf("services:\n%swant only 198.18.0.100's", dump(c))
	}
	want := main + ":1: warning: keyword \"include\" ignored (" + filepath.Join(dir, "conf.d", "b.conf") + " is executable: not included, as keepalived skips it)\n" +
		main + ":2: warning: keyword \"include\" ignored (" + filepath.Join(dir, "c.conf") + " is executable: not included, as keepalived skips it)\n"
	if got := dumpWarnings(warns); got != want {
		t.Errorf("warnings:\n%swant:\n%s", got, want)
	}
}

// TestKeepalivedValidationSites: an error found by validation points at
// the keyword and value in the file, not at a YAML path.
func TestKeepalivedValidationSites(t *testing.T) {
	in := kaCheck("        TCP_CHECK {\n            delay_loop 0.001\n        }")
	_, err := Parse("/etc/keepalived/keepalived.conf", []byte(in))
	want := `/etc/keepalived/keepalived.conf:7:24: delay_loop: "0.001": must be at least 10ms`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant  %s", err, want)
	}
}

func TestIsKeepalived(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       bool
	}{
		{"keepalived.conf", "", true},
		{"x", "! comment\n# comment\n\nglobal_defs {\n", true},
		{"x", "virtual_server 198.18.0.1 80 {", true},
		{"x", "virtual_server_group g {", true},
		{"x", "vrrp_instance VI_1 {", true},
		{"x", "include /etc/keepalived/conf.d/*.conf", true},
		{"x", "virtual_server{", true},
		{"drlb.yaml", "services:\n  - vip: 198.18.0.1\n", false},
		{"x", "include: yes\n", false},
		{"x", "-A -t 198.18.0.1:80\n", false},
		{"x", "", false},
	} {
		if got := isKeepalived(tc.name, []byte(tc.data)); got != tc.want {
			t.Errorf("isKeepalived(%q, %q) = %v, want %v", tc.name, tc.data, got, tc.want)
		}
	}
}

func TestKeepalivedLexer(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       []string
	}{
		{"quotes, escapes in them, braces, comment", `a "b c"d "\x41\101\n"{x}#c`, []string{"a", "b cd", "AA\n", "{", "x", "}"}},
		// keepalived's alloc_strvec_r knows only double quotes.
		{"single quotes are characters", `path /a'b 'c d'`, []string{"path", "/a'b", "'c", "d'"}},
		// keepalived's decomment(): \# and \! outside quotes are the
		// characters, \\ is two backslashes (and \\# a comment), other
		// backslashes are characters; in quotes, escapes as before.
		{"escaped comment characters", `a\#b \!c d\\#e`, []string{"a#b", "!c", `d\\`}},
		{"other backslashes", `a\b c\ \`, []string{`a\b`, `c\`, `\`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := splitKALine("f", 1, tc.line)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, tk := range toks {
				got = append(got, tk.text)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("tokens %q, want %q", got, tc.want)
			}
		})
	}
	line := `a "b c"d "\x41\101\n"{x}#c`
	toks, err := splitKALine("f", 1, line)
	if err != nil {
		t.Fatal(err)
	}
	if toks[1].col != 3 || toks[3].col != strings.Index(line, "{")+1 {
		t.Fatalf("columns %d %d, want 3 %d", toks[1].col, toks[3].col, strings.Index(line, "{")+1)
	}
	for _, tc := range []struct{ in, want string }{
		{"a{b,c}d", "abd acd"},
		{"{a,b{c,d}}e", "ae bce bde"},
		{"x{}y", "xy"},
		{"plain", "plain"},
	} {
		got, err := expandBraces(tc.in)
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("expandBraces(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestWarningString(t *testing.T) {
	for _, tc := range []struct {
		w    Warning
		want string
	}{
		{Warning{File: "k.conf", Line: 4, Keyword: "router_id", Msg: "why"}, `k.conf:4: warning: keyword "router_id" ignored (why)`},
		{Warning{File: "k.conf", Line: 4, Msg: "something"}, `k.conf:4: warning: something`},
		{Warning{Msg: "bare"}, `warning: bare`},
	} {
		if got := tc.w.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.w, got, tc.want)
		}
	}
}

// TestLoadWithWarningsMissing: a file that cannot be read is an I/O error.
func TestLoadWithWarningsMissing(t *testing.T) {
	_, _, err := LoadWithWarnings(filepath.Join(t.TempDir(), "keepalived.conf"))
	if !os.IsNotExist(err) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

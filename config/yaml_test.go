package config

import (
	"strings"
	"testing"
)

// head is the start of a one-service YAML config: lines 1-3.
var head = lines(
	"services:",
	"  - vip: 198.18.0.100",
	"    port: 80",
)

// oneRS is head plus a real server: lines 1-5.
var oneRS = head + lines(
	"    realservers:",
	"      - address: 198.18.0.11",
)

func TestParseYAMLGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // lines (or pieces of lines) dump must contain
	}{
		{"defaults", oneRS, []string{
			`interface ""`,
			"max_conns 1048576",
			"timeouts tcp=15m0s tcp_synrecv=1m0s tcp_fin=2m0s tcp_close=10s udp=5m0s",
			"service tcp 198.18.0.100:80 line=2 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=0s bits=32",
			`  realserver 198.18.0.11 line=5 weight=1 mac=""` + "\n",
		}},
		{"no real servers yet", head, []string{"service tcp 198.18.0.100:80 line=2"}},
		{"empty realservers", head + "    realservers:\n", []string{"service tcp 198.18.0.100:80"}},
		{"timeouts partly set", "timeouts: {tcp: 1h, udp: 30s}\n" + head,
			[]string{"timeouts tcp=1h0m0s tcp_synrecv=1m0s tcp_fin=2m0s tcp_close=10s udp=30s"}},
		{"http check defaults", oneRS + "        check: {type: http}\n",
			[]string{`check=http port=0 path="/" status=200 interval=2s timeout=1s retries=3 inhibit=false`}},
		{"https check set", oneRS + "        check: {type: https, port: 8443, path: /h, status: 204, interval: 5s, timeout: 2s, retries: 5, on_fail: inhibit}\n",
			[]string{`check=https port=8443 path="/h" status=204 interval=5s timeout=2s retries=5 inhibit=true`}},
		{"tcp check has no path or status", oneRS + "        check: {type: tcp}\n",
			[]string{`check=tcp port=0 interval=2s`}},
		{"weight 0 and mac", oneRS + "        weight: 0\n        mac: 02:00:00:00:00:11\n",
			[]string{`weight=0 mac="02:00:00:00:00:11"`}},
		{"udp and upper-case protocol", head + "    protocol: UDP\n", []string{"service udp 198.18.0.100:80"}},
		{"sh flags", head + "    scheduler: sh\n    flags: [sh-port, sh-fallback]\n", []string{"scheduler=sh hash_port=true fallback=true"}},
		{"flags before scheduler", head + "    flags: [mh-fallback]\n    scheduler: mh\n    mh_table_size: 65537\n",
			[]string{"scheduler=mh hash_port=false fallback=true table_size=65537"}},
		{"port 0 with persistence and netmask length", lines(
			"services:",
			"  - vip: 198.18.0.100",
			"    port: 0",
			"    persistence: 5m",
			"    persistence_netmask: 24",
		), []string{"service tcp 198.18.0.100:0 line=2 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=5m0s bits=24"}},
		{"dotted netmask", head + "    persistence: 300s\n    persistence_netmask: 255.255.240.0\n", []string{"bits=20"}},
		{"ipv6", lines(
			"services:",
			"  - vip: 2001:db8::100",
			"    port: 443",
			"    persistence: 60s",
			"    realservers: [{address: '2001:db8::11'}]",
		), []string{"service tcp [2001:db8::100]:443", "bits=128", "realserver 2001:db8::11 line=5"}},
		{"same VIP and port on tcp and udp", head + lines(
			"  - vip: 198.18.0.100",
			"    port: 80",
			"    protocol: udp",
		), []string{"service tcp 198.18.0.100:80", "service udp 198.18.0.100:80"}},
		{"interface and max_conns", "interface: eth0.10\nmax_conns: 1000\n" + head, []string{`interface "eth0.10"`, "max_conns 1000"}},
		{"a trunk port's VLAN", "interface: eth0\nvlan: 10\n" + head, []string{"vlan 10"}},
		{"anchor and alias", oneRS + lines(
			"        check: &c {type: tcp, port: 22}",
			"      - address: 198.18.0.12",
			"        check: *c",
		), []string{"realserver 198.18.0.12 line=7 weight=1 mac=\"\" check=tcp port=22"}},
		{"http digest, host, status ranges, retry delay", oneRS + "        check: {type: http, path: /x, status: 200-299 404, digest: 640205B7B0FC66C1EA91C463FAC6334D, host: www.example, retry_delay: 500ms}\n",
			[]string{`check=http port=0 path="/x" status=200-299 404 digest=640205b7b0fc66c1ea91c463fac6334d host="www.example" interval=2s timeout=1s retries=3 inhibit=false retry_delay=500ms`}},
		{"url paths go out as written", oneRS + "        check: {type: http, urls: [{path: '/100%-ok#top'}, {path: '//twice/%41'}]}\n",
			[]string{`path="/100%-ok#top"`, `path="//twice/%41"`}},
		{"several urls", oneRS + "        check: {type: https, urls: [{path: /, digest: ff20ad2481f97b1754ef3e12ecd3a9cc}, {path: /mrtg/, status: 200-299}]}\n",
			[]string{`check=https port=0 path="/" status=200 digest=ff20ad2481f97b1754ef3e12ecd3a9cc path="/mrtg/" status=200-299 interval=2s`}},
		{"a url's own host", oneRS + "        check: {type: http, host: ck.example, urls: [{path: /a, host: a.example}, {path: /b}]}\n",
			[]string{`path="/a" status=200 url_host="a.example" path="/b" status=200 host="ck.example"`}},
		{"udp check defaults", oneRS + "        check: {type: udp}\n",
			[]string{`check=udp port=0 interval=2s timeout=1s retries=3 inhibit=false retry_delay=2s payload="" require_reply=false reply="" reply_length=0-255`}},
		{"udp check with payload and reply", oneRS + "        check: {type: udp, payload: Ab12f 3, reply: 0x 12, reply_max_length: 512}\n",
			[]string{`check=udp port=0 interval=2s timeout=1s retries=3 inhibit=false retry_delay=2s payload="ab120f03" require_reply=true reply="0x12" reply_length=0-512`}},
		{"udp check requiring any reply", oneRS + "        check: {type: udp, require_reply: true}\n",
			[]string{`require_reply=true reply=""`}},
		{"dns check defaults: the root's SOA, as keepalived", oneRS + "        check: {type: dns}\n",
			[]string{`check=dns port=0 interval=2s timeout=1s retries=3 inhibit=false retry_delay=2s name="." record=SOA`}},
		{"dns check name and record, any case", oneRS + "        check: {type: dns, port: 53, name: www.example.org, record: aaaa}\n",
			[]string{`check=dns port=53 interval=2s timeout=1s retries=3 inhibit=false retry_delay=2s name="www.example.org" record=AAAA`}},
		{"dns check srv with a trailing dot", oneRS + "        check: {type: dns, name: _sip._udp.example.org., record: SRV}\n",
			[]string{`name="_sip._udp.example.org." record=SRV`}},
		{"sorry server address", head + "    sorry_server: 198.18.0.99\n", []string{`  sorry_server 198.18.0.99 line=4 mac="" inhibit=false`}},
		{"sorry server mapping", head + "    sorry_server: {address: 198.18.0.99, mac: 02:00:00:00:00:99, inhibit: true}\n",
			[]string{`  sorry_server 198.18.0.99 line=4 mac="02:00:00:00:00:99" inhibit=true`}},
		{"drain_timeout for every service, one overriding it", "drain_timeout: 30s\n" + oneRS + lines(
			"  - vip: 198.18.0.100",
			"    port: 443",
			"    drain_timeout: 0s",
			"  - vip: 198.18.0.100",
			"    port: 8080",
			"    drain_timeout: 5m",
		), []string{"service tcp 198.18.0.100:80 line=3 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=0s bits=32\n  drain_timeout 30s\n",
			"service tcp 198.18.0.100:443 line=7 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=0s bits=32\nservice tcp 198.18.0.100:8080",
			"service tcp 198.18.0.100:8080 line=10 scheduler=wlc hash_port=false fallback=false table_size=0 persistence=0s bits=32\n  drain_timeout 5m0s\n"}},
		{"drain_timeout after the services", oneRS + "drain_timeout: 1m\n", []string{"drain_timeout 1m0s"}},
		{"byte order mark and document marker", "\ufeff---\n" + oneRS, []string{"service tcp 198.18.0.100:80 line=3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("drlb.yaml", []byte(tc.in))
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
		})
	}
}

func TestParseYAMLBad(t *testing.T) {
	rs := "services[0].realservers[0]"
	tests := []badCase{
		// Values out of range, found by validation, still placed.
		{"weight negative", oneRS + "      - address: 198.18.0.12\n        weight: -1\n",
			7, 17, "services[0].realservers[1].weight", "-1", "must be 0..65535"},
		{"weight too big", oneRS + "        weight: 65536\n", 6, 17, rs + ".weight", "65536", "must be 0..65535"},
		{"weight not a number", oneRS + "        weight: heavy\n", 6, 17, rs + ".weight", "heavy", "must be a whole number"},
		{"weight a list", oneRS + "        weight: [1]\n", 6, 17, rs + ".weight", "", "must be a single value, not a list"},
		// Field names.
		{"misspelt field", oneRS + "        wieght: 2\n", 6, 9, rs + ".wieght", "", `did you mean "weight"?`},
		{"unknown top-level field", "service: []\n", 1, 1, "service", "", `did you mean "services"?`},
		{"unknown field far from any", head + "    colour: blue\n", 4, 5, "services[0].colour", "", "unknown field (valid: vip, port, protocol,"},
		{"real server field list", oneRS + "        colour: red\n", 6, 9, rs + ".colour", "", "unknown field (valid: address, weight, mac, check)"},
		{"real server port", oneRS + "        port: 8080\n", 6, 15, rs + ".port", "8080", "direct routing keeps the service port"},
		{"field twice", head + "    port: 81\n", 4, 5, "services[0].port", "", "field given twice (first at line 3)"},
		{"merge key", head + "    <<: {protocol: udp}\n", 4, 5, "services[0].<<", "", "merge keys are not supported"},
		{"vip missing", "services:\n  - port: 80\n", 2, 5, "services[0].vip", "", "required field missing"},
		{"port missing", "services:\n  - vip: 198.18.0.100\n", 2, 5, "services[0].port", "", "required field missing"},
		{"address missing", head + "    realservers:\n      - weight: 1\n", 5, 9, rs + ".address", "", "required field missing"},
		{"check type missing", oneRS + "        check: {port: 80}\n", 6, 16, rs + ".check.type", "", "required field missing"},
		{"null value", "services:\n  - vip:\n    port: 80\n", 2, 9, "services[0].vip", "", "a value is required"},
		// Addresses.
		{"vip not an address", "services:\n  - vip: www.example.com\n    port: 80\n", 2, 10, "services[0].vip", "www.example.com", "not a numeric IPv4 or IPv6 address"},
		{"vip loopback", "services:\n  - vip: 127.0.0.2\n    port: 80\n", 2, 10, "services[0].vip", "127.0.0.2", "loopback"},
		{"vip ipv6 loopback", "services:\n  - vip: ::1\n    port: 80\n", 2, 10, "services[0].vip", "::1", "loopback"},
		{"vip multicast", "services:\n  - vip: 224.0.0.1\n    port: 80\n", 2, 10, "services[0].vip", "224.0.0.1", "multicast"},
		{"vip unspecified", "services:\n  - vip: 0.0.0.0\n    port: 80\n", 2, 10, "services[0].vip", "0.0.0.0", "unspecified"},
		{"vip broadcast", "services:\n  - vip: 255.255.255.255\n    port: 80\n", 2, 10, "services[0].vip", "255.255.255.255", "broadcast"},
		{"vip zone", "services:\n  - vip: fe80::1%eth0\n    port: 80\n", 2, 10, "services[0].vip", "fe80::1%eth0", "zone"},
		{"vip mapped", "services:\n  - vip: ::ffff:198.18.0.1\n    port: 80\n", 2, 10, "services[0].vip", "::ffff:198.18.0.1", "write it as 198.18.0.1"},
		{"rs family", head + "    realservers:\n      - address: 2001:db8::11\n", 5, 18, rs + ".address", "2001:db8::11", "address family differs from the VIP 198.18.0.100"},
		{"rs is the vip", head + "    realservers:\n      - address: 198.18.0.100\n", 5, 18, rs + ".address", "198.18.0.100", "cannot be the VIP"},
		{"rs multicast", head + "    realservers:\n      - address: 239.1.1.1\n", 5, 18, rs + ".address", "239.1.1.1", "multicast"},
		{"rs duplicate", oneRS + "      - address: 198.18.0.11\n", 6, 18, "services[0].realservers[1].address", "198.18.0.11", "duplicate real server: realservers[0] (line 5)"},
		{"service duplicate", head + "  - vip: 198.18.0.100\n    port: 80\n    protocol: tcp\n", 4, 5, "services[1]", "tcp 198.18.0.100:80", "duplicate service: services[0] (line 2)"},
		// MACs.
		{"mac bad", oneRS + "        mac: 02:00:00:00:00\n", 6, 14, rs + ".mac", "02:00:00:00:00", "not a 6-byte MAC"},
		{"mac eui64", oneRS + "        mac: 02:00:00:00:00:00:00:11\n", 6, 14, rs + ".mac", "02:00:00:00:00:00:00:11", "not a 6-byte MAC"},
		{"mac multicast", oneRS + "        mac: 01:00:5e:00:00:01\n", 6, 14, rs + ".mac", "01:00:5e:00:00:01", "unicast"},
		{"mac broadcast", oneRS + "        mac: ff:ff:ff:ff:ff:ff\n", 6, 14, rs + ".mac", "ff:ff:ff:ff:ff:ff", "unicast"},
		{"mac zero", oneRS + "        mac: 00:00:00:00:00:00\n", 6, 14, rs + ".mac", "00:00:00:00:00:00", "all zeros"},
		// Service fields.
		{"port too big", "services:\n  - vip: 198.18.0.100\n    port: 65536\n", 3, 11, "services[0].port", "65536", "0..65535"},
		{"port negative", "services:\n  - vip: 198.18.0.100\n    port: -1\n", 3, 11, "services[0].port", "-1", "0..65535"},
		{"port 0 without persistence", "services:\n  - vip: 198.18.0.100\n    port: 0\n", 3, 11, "services[0].port", "0", "needs persistence"},
		{"protocol sctp", head + "    protocol: sctp\n", 4, 15, "services[0].protocol", "sctp", "must be tcp or udp"},
		{"scheduler unknown", head + "    scheduler: fastest\n", 4, 16, "services[0].scheduler", "fastest", "unknown scheduler (valid: "},
		{"flags for rr", head + "    scheduler: rr\n    flags: [sh-port]\n", 5, 12, "services[0].flags", "sh-port", "apply only to sh and mh, not rr"},
		{"flags for the default", head + "    flags: [mh-port]\n", 4, 12, "services[0].flags", "mh-port", "apply only to sh and mh, not wlc"},
		{"sh flag on mh", head + "    scheduler: mh\n    flags: [mh-port, sh-port]\n", 5, 22, "services[0].flags[1]", "sh-port", "sh-port is a flag of the sh scheduler, this service uses mh"},
		{"flag unknown", head + "    scheduler: sh\n    flags: [sh-sticky]\n", 5, 13, "services[0].flags[0]", "sh-sticky", "unknown scheduler flag"},
		{"flag-1 is ipvsadm only", head + "    scheduler: sh\n    flags: [flag-1]\n", 5, 13, "services[0].flags[0]", "flag-1", "unknown scheduler flag"},
		{"flags not a list", head + "    scheduler: sh\n    flags: sh-port\n", 5, 12, "services[0].flags", "", "must be a list"},
		{"table size not prime", head + "    scheduler: mh\n    mh_table_size: 65536\n", 5, 20, "services[0].mh_table_size", "65536", "must be a prime"},
		{"table size too big", head + "    scheduler: mh\n    mh_table_size: 2147483647\n", 5, 20, "services[0].mh_table_size", "2147483647", "must be a prime number up to 1048573"},
		{"table size for sh", head + "    scheduler: sh\n    mh_table_size: 251\n", 5, 20, "services[0].mh_table_size", "251", "only to the mh scheduler"},
		{"persistence without unit", head + "    persistence: 300\n", 4, 18, "services[0].persistence", "300", "not a duration"},
		{"persistence negative", head + "    persistence: -5s\n", 4, 18, "services[0].persistence", "-5s", "must be 0s..744h0m0s"},
		{"persistence fraction", head + "    persistence: 1500ms\n", 4, 18, "services[0].persistence", "1500ms", "whole seconds"},
		{"drain_timeout negative", head + "    drain_timeout: -1s\n", 4, 20, "services[0].drain_timeout", "-1s", "must be 0s..744h0m0s"},
		{"drain_timeout too long", head + "    drain_timeout: 745h\n", 4, 20, "services[0].drain_timeout", "745h", "must be 0s..744h0m0s"},
		{"global drain_timeout negative", "drain_timeout: -5s\n" + head, 1, 16, "drain_timeout", "-5s", "must be 0s..744h0m0s"},
		{"global drain_timeout without unit", "drain_timeout: 30\n" + head, 1, 16, "drain_timeout", "30", "not a duration"},
		{"persistence too long", head + "    persistence: 745h\n", 4, 18, "services[0].persistence", "745h", "must be 0s..744h0m0s"},
		{"netmask without persistence", head + "    persistence_netmask: 24\n", 4, 26, "services[0].persistence_netmask", "24", "needs persistence"},
		{"netmask holes", head + "    persistence: 1s\n    persistence_netmask: 255.0.255.0\n", 5, 26, "services[0].persistence_netmask", "255.0.255.0", "not contiguous"},
		{"netmask too long", head + "    persistence: 1s\n    persistence_netmask: 33\n", 5, 26, "services[0].persistence_netmask", "33", "prefix length must be 0..32"},
		{"netmask dotted for ipv6", "services:\n  - vip: 2001:db8::1\n    port: 80\n    persistence: 1s\n    persistence_netmask: 255.255.0.0\n",
			5, 26, "services[0].persistence_netmask", "255.255.0.0", "IPv6 netmask is a prefix length"},
		{"realservers a mapping", head + "    realservers: {address: 198.18.0.11}\n", 4, 18, "services[0].realservers", "", "must be a list, not a mapping"},
		{"services a string", "services: web\n", 1, 11, "services", "", "must be a list, not a single value"},
		{"service a string", "services: [web]\n", 1, 12, "services[0]", "web", "services[0] must be a mapping with fields vip, port"},
		// Checks.
		{"check type", oneRS + "        check: {type: icmp}\n", 6, 23, rs + ".check.type", "icmp", "must be tcp, http, https, udp or dns"},
		{"check path relative", oneRS + "        check: {type: http, path: healthz}\n", 6, 35, rs + ".check.path", "healthz", "must start with /"},
		{"check path with a control character", oneRS + "        check: {type: http, path: \"/a\\x7fb\"}\n", 6, 35, rs + ".check.path", "/a\x7fb", "must not contain control characters"},
		{"check path // with a fragment", oneRS + "        check: {type: http, path: '//a#b'}\n", 6, 35, rs + ".check.path", "//a#b", "must not contain # or a % not followed by two hex digits"},
		{"check path // with characters a URL escapes", oneRS + "        check: {type: http, path: '//a{b}'}\n", 6, 35, rs + ".check.path", "//a{b}", "nor characters a URL escapes"},
		{"check path // not in ASCII", oneRS + "        check: {type: http, path: '//caf\u00e9'}\n", 6, 35, rs + ".check.path", "//caf\u00e9", "nor characters a URL escapes"},
		{"check path on tcp", oneRS + "        check: {type: tcp, path: /}\n", 6, 34, rs + ".check.path", "/", "only http and https"},
		{"check status on tcp", oneRS + "        check: {type: tcp, status: 200}\n", 6, 36, rs + ".check.status", "200", "only http and https"},
		{"check status range", oneRS + "        check: {type: http, status: 99}\n", 6, 37, rs + ".check.status", "99", "100..599"},
		{"check interval tiny", oneRS + "        check: {type: tcp, interval: 1ms}\n", 6, 38, rs + ".check.interval", "1ms", "at least 10ms"},
		{"check timeout zero", oneRS + "        check: {type: tcp, timeout: 0s}\n", 6, 37, rs + ".check.timeout", "0s", "at least 10ms"},
		{"check retries zero", oneRS + "        check: {type: tcp, retries: 0}\n", 6, 37, rs + ".check.retries", "0", "must be 1..1000"},
		{"check digest short", oneRS + "        check: {type: http, digest: abc}\n", 6, 37, rs + ".check.digest", "abc", "not an MD5 digest"},
		{"check status word", oneRS + "        check: {type: http, status: ok}\n", 6, 37, rs + ".check.status", "ok", "not a status code or range"},
		{"check status reversed", oneRS + "        check: {type: http, status: 299-200}\n", 6, 37, rs + ".check.status", "299-200", "must be HTTP statuses 100..599"},
		{"check urls and path", oneRS + "        check: {type: http, path: /, urls: [{path: /x}]}\n", 6, 44, rs + ".check.urls", "", "either urls or path"},
		{"check url path relative", oneRS + "        check: {type: http, urls: [{path: /}, {path: x}]}\n", 6, 54, rs + ".check.urls[1].path", "x", "must start with /"},
		{"check url host", oneRS + "        check: {type: http, urls: [{path: /, host: 'a b'}]}\n", 6, 52, rs + ".check.urls[0].host", "a b", "must not contain spaces"},
		{"check url unknown field", oneRS + "        check: {type: http, urls: [{paht: /}]}\n", 6, 37, rs + ".check.urls[0].paht", "", `did you mean "path"?`},
		{"check digest on tcp", oneRS + "        check: {type: tcp, digest: 640205b7b0fc66c1ea91c463fac6334d}\n", 6, 36, rs + ".check.digest", "640205b7b0fc66c1ea91c463fac6334d", "only http and https checks have a digest"},
		{"check host on tcp", oneRS + "        check: {type: tcp, host: www}\n", 6, 34, rs + ".check.host", "www", "only http and https"},
		{"check host with a bar", oneRS + "        check: {type: http, path: /, host: 'www|x'}\n", 6, 44, rs + ".check.host", "www|x", "not a valid HTTP Host header"},
		{"check host with a control character", oneRS + "        check: {type: http, path: /, host: \"www\\x01\"}\n", 6, 44, rs + ".check.host", "www\x01", "not a valid HTTP Host header"},
		{"check payload on tcp", oneRS + "        check: {type: tcp, payload: 00}\n", 6, 37, rs + ".check.payload", "00", "only udp checks"},
		{"check payload not hex", oneRS + "        check: {type: udp, payload: 0g}\n", 6, 37, rs + ".check.payload", "0g", "not a hex digit"},
		{"check reply but no reply", oneRS + "        check: {type: udp, reply: 00, require_reply: false}\n", 6, 54, rs + ".check.require_reply", "false", "needs an answer"},
		{"check reply lengths", oneRS + "        check: {type: udp, reply_min_length: 10, reply_max_length: 5}\n", 6, 68, rs + ".check.reply_max_length", "5", "reply lengths must be"},
		{"check type dns spelled", oneRS + "        check: {type: DNS}\n", 6, 23, rs + ".check.type", "DNS", "must be tcp, http, https, udp or dns"},
		{"dns record unknown", oneRS + "        check: {type: dns, record: ANY}\n", 6, 36, rs + ".check.record", "ANY", "must be a record type drlb asks for: A, AAAA, CNAME"},
		{"dns record as written", oneRS + "        check: {type: dns, record: axfr}\n", 6, 36, rs + ".check.record", "axfr", "must be a record type"},
		{"dns record a number", oneRS + "        check: {type: dns, record: 1}\n", 6, 36, rs + ".check.record", "1", "must be a record type"},
		{"dns name empty label", oneRS + "        check: {type: dns, name: www..example}\n", 6, 34, rs + ".check.name", "www..example", "an empty label"},
		{"dns name leading dot", oneRS + "        check: {type: dns, name: .example}\n", 6, 34, rs + ".check.name", ".example", "an empty label"},
		{"dns name empty", oneRS + "        check: {type: dns, name: ''}\n", 6, 34, rs + ".check.name", "", "a domain name is required"},
		{"dns name long label", oneRS + "        check: {type: dns, name: " + strings.Repeat("a", 64) + ".org}\n", 6, 34, rs + ".check.name", strings.Repeat("a", 64) + ".org", "longer than 63"},
		{"dns name too long", oneRS + "        check: {type: dns, name: " + strings.Repeat("abcdefg.", 32) + "org}\n", 6, 34, rs + ".check.name", strings.Repeat("abcdefg.", 32) + "org", "longer than 253"},
		{"dns name with a space", oneRS + "        check: {type: dns, name: 'a b'}\n", 6, 34, rs + ".check.name", "a b", "spaces"},
		{"dns name not ascii", oneRS + "        check: {type: dns, name: bücher.example}\n", 6, 34, rs + ".check.name", "bücher.example", "xn--"},
		{"dns check with a path", oneRS + "        check: {type: dns, path: /}\n", 6, 34, rs + ".check.path", "/", "only http and https checks have a path"},
		{"dns check with a host", oneRS + "        check: {type: dns, host: www}\n", 6, 34, rs + ".check.host", "www", "only http and https"},
		{"dns check with a payload", oneRS + "        check: {type: dns, payload: 00}\n", 6, 37, rs + ".check.payload", "00", "only udp checks"},
		{"dns check requiring a reply", oneRS + "        check: {type: dns, require_reply: true}\n", 6, 43, rs + ".check.require_reply", "true", "only udp checks"},
		{"name on a tcp check", oneRS + "        check: {type: tcp, name: example.org}\n", 6, 34, rs + ".check.name", "example.org", "only dns checks"},
		{"record on a udp check", oneRS + "        check: {type: udp, record: A}\n", 6, 36, rs + ".check.record", "A", "only dns checks"},
		{"empty record on an http check", oneRS + "        check: {type: http, record: ''}\n", 6, 37, rs + ".check.record", "", "only dns checks"},
		{"check retry_delay tiny", oneRS + "        check: {type: tcp, retry_delay: 1ms}\n", 6, 41, rs + ".check.retry_delay", "1ms", "at least 10ms"},
		{"sorry server loopback", head + "    sorry_server: 127.0.0.1\n", 4, 19, "services[0].sorry_server.address", "127.0.0.1", "loopback"},
		{"sorry server family", head + "    sorry_server: {address: '2001:2::99'}\n", 4, 29, "services[0].sorry_server.address", "2001:2::99", "address family differs"},
		{"sorry server is the VIP", head + "    sorry_server: 198.18.0.100\n", 4, 19, "services[0].sorry_server.address", "198.18.0.100", "cannot be the VIP"},
		{"sorry server multicast mac", head + "    sorry_server: {address: 198.18.0.99, mac: 01:00:00:00:00:99}\n", 4, 47, "services[0].sorry_server.mac", "01:00:00:00:00:99", "unicast"},
		{"check on_fail", oneRS + "        check: {type: tcp, on_fail: drop}\n", 6, 37, rs + ".check.on_fail", "drop", "must be remove"},
		{"check port needed", lines(
			"services:",
			"  - vip: 198.18.0.100",
			"    port: 0",
			"    persistence: 60s",
			"    realservers:",
			"      - address: 198.18.0.11",
			"        check: {type: tcp}",
		), 7, 16, rs + ".check.port", "0", "needs a port when the service port is 0"},
		{"check a string", oneRS + "        check: tcp\n", 6, 16, rs + ".check", "tcp", "must be a mapping"},
		// Top level.
		{"timeout zero", "timeouts: {tcp: 0s}\n" + head, 1, 17, "timeouts.tcp", "0s", "must be more than 0"},
		{"timeout typo", "timeouts: {tcp_syn: 10s}\n" + head, 1, 12, "timeouts.tcp_syn", "", `did you mean "tcp_fin"?`},
		{"max_conns zero", "max_conns: 0\n" + head, 1, 12, "max_conns", "0", "must be 1..1073741824"},
		{"interface with slash", "interface: eth/0\n" + head, 1, 12, "interface", "eth/0", "not a Linux interface name"},
		{"interface too long", "interface: abcdefghijklmnop\n" + head, 1, 12, "interface", "abcdefghijklmnop", "not a Linux interface name"},
		{"no services", "interface: eth0\n", 0, 0, "services", "", "no services defined"},
		{"empty services", "services: []\n", 1, 11, "services", "", "no services defined"},
		{"empty file", "", 0, 0, "", "", "empty configuration"},
		{"only comments", "# nothing\n\n", 0, 0, "", "", "empty configuration"},
		{"root a list", "- vip: 198.18.0.100\n", 1, 1, "", "", "the configuration must be a mapping"},
		{"root a scalar", "hello\n", 1, 1, "", "hello", "the configuration must be a mapping"},
		{"syntax error", "services: [\n", 1, 0, "", "", "YAML: did not find expected node content"},
		{"tab indentation", "services:\n\t- vip: 198.18.0.100\n", 2, 0, "", "", "YAML: found character that cannot start any token"},
		{"second document", head + "---\ninterface: eth0\n", 4, 1, "", "", "a second YAML document"},
		{"unknown anchor", "services: *nope\n", 0, 0, "", "", "unknown anchor 'nope'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
}

func TestErrorMessageShape(t *testing.T) {
	in := oneRS + "      - address: 198.18.0.12\n        weight: -1\n"
	_, err := Parse("drlb.yaml", []byte(in))
	want := `drlb.yaml:7:17: services[0].realservers[1].weight: "-1": must be 0..65535`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
}

// TestYAMLAliasExpansion: a small file whose aliases multiply out to
// millions of real servers is refused quickly, not decoded.
func TestYAMLAliasExpansion(t *testing.T) {
	in := "services:\n  - &svc {vip: 198.18.0.100, port: 80, realservers: &rs [" +
		strings.Repeat("{address: 198.18.0.11}, ", 1000) + "]}\n" + strings.Repeat("  - *svc\n", 1000)
	_, err := Parse("bomb.yaml", []byte(in))
	t.Logf("%d bytes", len(in))
	if err == nil || !strings.Contains(err.Error(), "aliases expand this file too much") {
		t.Fatalf("Parse = %v, want the alias expansion error", err)
	}
}

// TestEverySchedulerName: each ipvsadm scheduler drlb implements
// (ARCHITECTURE.md#schedulers) is accepted by name in both formats.
func TestEverySchedulerName(t *testing.T) {
	for _, name := range []string{"rr", "wrr", "lc", "wlc", "sh", "mh", "sed", "nq"} {
		if _, err := Parse("drlb.yaml", []byte(head+"    scheduler: "+name+"\n")); err != nil {
			t.Errorf("YAML scheduler %s: %v", name, err)
		}
		if _, err := Parse("rules", []byte("-A -t 198.18.0.100:80 -s "+name+"\n")); err != nil {
			t.Errorf("ipvsadm scheduler %s: %v", name, err)
		}
	}
}

// TestYAMLMeaningChanges: values YAML reads otherwise than drlb's parsers
// did are refused, placed, instead of taken as drlb read them: a plain
// number with a leading 0 (octal to YAML 1.1 and yaml.v3: weight 017 was 17
// here, 15 there), a !!binary value (its base64 text was used), and a
// timeout under a second or not whole (the table keeps whole seconds; a
// 500ms timeout lasted up to 1.5s and -L --timeout printed 0).
func TestYAMLMeaningChanges(t *testing.T) {
	const octal = "a leading 0 makes it octal"
	rs := "services[0].realservers[0]"
	bgp := lines("bgp:", "  asn: 065001", "  peers: [{address: 198.18.0.1, asn: 65000}]")
	tests := []badCase{
		{"weight 017", oneRS + "        weight: 017\n", 6, 17, rs + ".weight", "017", octal},
		{"signed weight +017", oneRS + "        weight: +017\n", 6, 17, rs + ".weight", "+017", octal},
		{"port 080", "services:\n  - vip: 198.18.0.100\n    port: 080\n", 3, 11, "services[0].port", "080", octal},
		{"vlan 010", "vlan: 010\n" + head, 1, 7, "vlan", "010", octal},
		{"max_conns 0010", "max_conns: 0010\n" + head, 1, 12, "max_conns", "0010", octal},
		{"netmask 024", head + "    persistence: 60s\n    persistence_netmask: 024\n", 5, 26, "services[0].persistence_netmask", "024", octal},
		{"check port 08080", oneRS + "        check: {type: tcp, port: 08080}\n", 6, 34, rs + ".check.port", "08080", octal},
		{"retries 010", oneRS + "        check: {type: tcp, retries: 010}\n", 6, 37, rs + ".check.retries", "010", octal},
		{"bgp asn 065001", bgp + head, 2, 8, "bgp.asn", "065001", octal},
		{"binary interface", "interface: !!binary ZXRoMA==\n" + head, 1, 12, "interface", "ZXRoMA==", "!!binary"},
		{"timeout 500ms", "timeouts: {tcp: 500ms}\n" + head, 1, 17, "timeouts.tcp", "500ms", "whole seconds"},
		{"timeout 1.5s", "timeouts: {udp: 1.5s}\n" + head, 1, 17, "timeouts.udp", "1.5s", "whole seconds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "drlb.yaml", tc) })
	}
	// Still read: quoted (text, decimal), 0 itself, hex payloads.
	for _, in := range []string{
		oneRS + "        weight: \"017\"\n",
		oneRS + "        weight: 0\n",
		"services:\n  - vip: 198.18.0.100\n    port: '080'\n",
		oneRS + "        check: {type: udp, payload: 0102}\n",
		"timeouts: {tcp: 2s, udp: 1m}\n" + head,
	} {
		if _, err := Parse("drlb.yaml", []byte(in)); err != nil {
			t.Errorf("Parse(%q): %v", in, err)
		}
	}
}

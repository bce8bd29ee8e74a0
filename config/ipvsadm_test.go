package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParseIPVSADMGood(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"ipvsadm -Sn", lines(
			"-A -t 198.18.0.100:80 -s wrr",
			"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 4",
		), []string{
			`interface ""`, "max_conns 1048576",
			"service tcp 198.18.0.100:80 line=1 scheduler=wrr hash_port=false fallback=false table_size=0 persistence=0s bits=32",
			`  realserver 198.18.0.11 line=2 weight=4 mac=""` + "\n",
		}},
		{"defaults: wlc, weight 1, -g", lines(
			"-A -t 198.18.0.100:80",
			"-a -t 198.18.0.100:80 -r 198.18.0.11",
		), []string{"scheduler=wlc", "realserver 198.18.0.11 line=2 weight=1"}},
		// ipvsadm.c parse_timeout(NULL): IPVS_SVC_PERSISTENT_TIMEOUT, 6*60
		// in libipvs/ip_vs.h, not the man page's 300.
		{"-p without a value is 360 s, as ipvsadm", "-A -t 198.18.0.100:80 -p\n", []string{"persistence=6m0s bits=32"}},
		{"-p then another option", "-A -t 198.18.0.100:80 -p -s rr\n", []string{"scheduler=rr", "persistence=6m0s"}},
		{"-p value and -M", "-A -t 198.18.0.100:0 -s rr -p 60 -M 255.255.0.0\n", []string{"service tcp 198.18.0.100:0", "persistence=1m0s bits=16"}},
		{"-M /16 is a prefix length", "-A -t 198.18.0.100:0 -p 60 -M /16\n", []string{"persistence=1m0s bits=16"}},
		{"ipv6", lines(
			"-A -u [2001:db8::1]:53 -s sh -b sh-port -p 10 -M 64",
			"-a -u [2001:db8::1]:53 -r [2001:db8::11]:53 -g -w 2",
			"-a -u [2001:db8::1]:53 -r [2001:db8::12] -g -w 2",
		), []string{"service udp [2001:db8::1]:53 line=1 scheduler=sh hash_port=true fallback=false table_size=0 persistence=10s bits=64",
			"realserver 2001:db8::11 line=2", "realserver 2001:db8::12 line=3"}},
		{"generic flags", "-A -t 198.18.0.100:80 -s mh -b flag-1,flag-2\n", []string{"scheduler=mh hash_port=true fallback=true"}},
		{"port 0 on the real server", "-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.0.11:0\n", []string{"realserver 198.18.0.11"}},
		{"long options", lines(
			"--add-service --tcp-service 198.18.0.100:80 --scheduler=rr",
			"--add-server --tcp-service=198.18.0.100:80 --real-server 198.18.0.11 --gatewaying --weight 7",
		), []string{"scheduler=rr", "weight=7"}},
		{"comments, blanks, CRLF, ipvsadm prefix, -C", "# saved\r\n\r\nipvsadm -C\r\n/sbin/ipvsadm -A -t 198.18.0.100:80 # web\r\n\t-a -t 198.18.0.100:80 -r 198.18.0.11 -g\r\n",
			[]string{"service tcp 198.18.0.100:80 line=4", "realserver 198.18.0.11 line=5"}},
		{"service names as ipvsadm -S prints", "-A -t 198.18.0.100:https\n-a -t 198.18.0.100:https -r 198.18.0.11:https\n",
			[]string{"service tcp 198.18.0.100:443", "realserver 198.18.0.11"}},
		{"zero thresholds", "-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.0.11 -x 0 -y 0\n", []string{"realserver 198.18.0.11"}},
		{"tcp and udp same address", "-A -t 198.18.0.100:53\n-A -u 198.18.0.100:53\n-a -u 198.18.0.100:53 -r 198.18.0.11\n",
			[]string{"service tcp 198.18.0.100:53 line=1", "service udp 198.18.0.100:53 line=2", "  realserver 198.18.0.11 line=3"}},
		{"weight 0", "-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.0.11 -w 0\n", []string{"weight=0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("rules", []byte(tc.in))
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

func TestParseIPVSADMBad(t *testing.T) {
	const A = "-A -t 198.18.0.100:80\n" // line 1
	tests := []badCase{
		// Forwarding methods and features drlb does not have.
		{"masquerading", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -m -w 1\n", 2, 41, "-m", "", "direct routing only (-g)"},
		{"tunneling", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -i\n", 2, 41, "-i", "", "direct routing only (-g)"},
		{"tunnel type", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 --tun-type gue\n", 2, 41, "--tun-type", "", "direct routing only (-g)"},
		// ipvsadm -S writes a tunnel's options after -w; each is its own
		// option, not a second one of the others: the line is refused for
		// tunneling, not for an option "given twice".
		{"gue tunnel as ipvsadm -S writes it", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n", 2, 41, "-i", "", "direct routing only (-g)"},
		{"tunnel options without -i", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1 --tun-type gue --tun-port 6080\n", 2, 49, "--tun-type", "", "direct routing only (-g)"},
		{"gre tunnel csum", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:80 --tun-type gre --tun-csum\n", 2, 41, "--tun-type", "", "direct routing only (-g)"},
		{"fwmark", "-A -f 1 -s rr\n", 1, 4, "-f", "1", "firewall-mark services are not supported"},
		{"IPv6 fwmark", "-A -f 1 -6 -s rr\n", 1, 4, "-f", "1", "firewall-mark services are not supported"}, // as ipvsadm -S writes it
		{"sctp", "-A --sctp-service 198.18.0.100:80\n", 1, 4, "--sctp-service", "198.18.0.100:80", "SCTP services are not supported"},
		{"upper threshold", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -x 100\n", 2, 38, "-x", "100", "thresholds (-x, -y) are not supported"},
		{"lower threshold", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -y 5\n", 2, 38, "-y", "5", "not supported"},
		{"one-packet scheduling", "-A -u 198.18.0.100:53 -o\n", 1, 23, "-o", "", "one-packet scheduling"},
		{"persistence engine", "-A -u 198.18.0.100:5060 -p --pe sip\n", 1, 28, "--pe", "sip", "persistence engines are not supported"},
		// Rules and options.
		{"server before service", "-a -t 198.18.0.100:80 -r 198.18.0.11\n", 1, 7, "-t", "198.18.0.100:80", "no such service: define it with -A"},
		{"server for another port", A + "-a -t 198.18.0.100:81 -r 198.18.0.11\n", 2, 7, "-t", "198.18.0.100:81", "no such service"},
		{"server for another protocol", A + "-a -u 198.18.0.100:80 -r 198.18.0.11\n", 2, 7, "-u", "198.18.0.100:80", "no such service"},
		{"service twice", A + "-A -t 198.18.0.100:80 -s rr\n", 2, 7, "-t", "198.18.0.100:80", "service already defined at line 1"},
		{"real server twice", A + "-a -t 198.18.0.100:80 -r 198.18.0.11\n-a -t 198.18.0.100:80 -r 198.18.0.11:80 -w 2\n",
			3, 26, "-r", "198.18.0.11:80", "duplicate real server: realservers[0] (line 2)"},
		{"port remap", A + "-a -t 198.18.0.100:80 -r 198.18.0.11:8080 -g\n", 2, 26, "-r", "198.18.0.11:8080", "cannot change the port"},
		{"no real server", A + "-a -t 198.18.0.100:80 -g\n", 2, 1, "-a", "", "needs a real server"},
		{"no service address", "-A -s rr\n", 1, 1, "-A", "", "needs a service"},
		{"both -t and -u", "-A -t 198.18.0.100:80 -u 198.18.0.100:80\n", 1, 23, "-u", "198.18.0.100:80", "-t or -u, not both"},
		{"option twice", "-A -t 198.18.0.100:80 -s rr -s wrr\n", 1, 29, "-s", "", "option given twice on one rule (first as -s at column 23)"},
		{"option of the other command", "-A -t 198.18.0.100:80 -w 1\n", 1, 23, "-w", "", "belongs to -a rules, not -A"},
		{"option of the other command 2", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -s rr\n", 2, 38, "-s", "", "belongs to -A rules, not -a"},
		{"missing value", "-A -t\n", 1, 4, "-t", "", "needs a value"},
		{"value on a flag option", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 --gatewaying=yes\n", 2, 38, "--gatewaying", "yes", "takes no value"},
		{"unknown option", "-A -t 198.18.0.100:80 -z\n", 1, 23, "", "-z", "unknown or unsupported ipvsadm option"},
		{"stray word", "-A -t 198.18.0.100:80 rr\n", 1, 23, "", "rr", "unexpected word"},
		{"other command", "-E -t 198.18.0.100:80 -s rr\n", 1, 1, "", "-E", "only -A and -a rules"},
		{"not a rule after rules", A + "hello\n", 2, 1, "", "hello", "a rule starts with -A or -a"},
		{"-C after rules", A + "-C\n", 2, 1, "-C", "", "-C after rules would discard them"},
		{"bare ipvsadm", A + "ipvsadm\n", 2, 1, "", "", "ipvsadm without a rule"},
		// Values.
		{"hostname", "-A -t lb.example.com:http\n", 1, 7, "-t", "lb.example.com:http", "use ipvsadm -Sn"},
		{"unknown port name", "-A -t 198.18.0.100:gopher\n", 1, 7, "-t", "198.18.0.100:gopher", "not a port number"},
		{"port too big", "-A -t 198.18.0.100:65536\n", 1, 7, "-t", "198.18.0.100:65536", "0..65535"},
		{"ipv6 without brackets", "-A -t 2001:db8::1:80\n", 1, 7, "-t", "2001:db8::1:80", "in brackets"},
		{"ipv6 unclosed", "-A -t [2001:db8::1:80\n", 1, 7, "-t", "[2001:db8::1:80", "missing ]"},
		{"ipv6 junk after bracket", "-A -t [2001:db8::1]80\n", 1, 7, "-t", "[2001:db8::1]80", "expected :PORT"},
		{"vip loopback", "-A -t 127.0.0.1:80\n", 1, 7, "-t", "127.0.0.1:80", "loopback"},
		{"vip multicast", "-A -u 239.0.0.1:80\n", 1, 7, "-u", "239.0.0.1:80", "multicast"},
		{"port 0 without -p", "-A -t 198.18.0.100:0\n", 1, 7, "-t", "198.18.0.100:0", "needs persistence"},
		{"port omitted without -p", "-A -t 198.18.0.100\n", 1, 7, "-t", "198.18.0.100", "needs persistence"},
		{"rs family", A + "-a -t 198.18.0.100:80 -r [2001:db8::11]:80\n", 2, 26, "-r", "[2001:db8::11]:80", "address family differs"},
		{"rs is the vip", A + "-a -t 198.18.0.100:80 -r 198.18.0.100\n", 2, 26, "-r", "198.18.0.100", "cannot be the VIP"},
		{"weight negative", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -g -w -1\n", 2, 44, "-w", "-1", "must be 0..65535"},
		{"weight big", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -g -w 65536\n", 2, 44, "-w", "65536", "must be 0..65535"},
		{"weight word", A + "-a -t 198.18.0.100:80 -r 198.18.0.11 -g -w one\n", 2, 44, "-w", "one", "weight must be an integer"},
		{"scheduler unknown", "-A -t 198.18.0.100:80 -s fast\n", 1, 26, "-s", "fast", "unknown scheduler"},
		{"flags for rr", "-A -t 198.18.0.100:80 -s rr -b sh-port\n", 1, 32, "-b", "sh-port", "apply only to sh and mh, not rr"},
		{"generic flag for rr", "-A -t 198.18.0.100:80 -s rr -b flag-1\n", 1, 32, "-b", "flag-1", "apply only to sh and mh, not rr"},
		{"flag-3", "-A -t 198.18.0.100:80 -s sh -b flag-3\n", 1, 32, "-b", "flag-3", "no drlb scheduler uses this flag"},
		{"mh flag on sh", "-A -t 198.18.0.100:80 -s sh -b sh-port,mh-fallback\n", 1, 32, "-b", "mh-fallback", "mh-fallback is a flag of the mh scheduler, this service uses sh"},
		{"persistence zero", "-A -t 198.18.0.100:80 -p 0\n", 1, 26, "-p", "0", "persistence timeout must be 1..2678400 seconds"},
		{"persistence huge", "-A -t 198.18.0.100:80 -p 2678401\n", 1, 26, "-p", "2678401", "1..2678400"},
		{"persistence word", "-A -t 198.18.0.100:80 -p forever\n", 1, 26, "-p", "forever", "1..2678400"},
		{"netmask without -p", "-A -t 198.18.0.100:80 -M 255.255.255.0\n", 1, 26, "-M", "255.255.255.0", "needs persistence"},
		{"netmask bad", "-A -t 198.18.0.100:80 -p -M 255.0.0.255\n", 1, 29, "-M", "255.0.0.255", "not contiguous"},
		{"netmask ipv6 dotted", "-A -t [2001:db8::1]:80 -p -M 255.255.255.0\n", 1, 30, "-M", "255.255.255.0", "prefix length 0..128"},
		// ipvsadm reads an IPv4 -M with inet_aton: 24 is the mask 0.0.0.24.
		{"netmask ipv4 bare number", "-A -t 198.18.0.100:80 -p -M 24\n", 1, 29, "-M", "24",
			"a bare number is the mask 0.0.0.24 to ipvsadm and keepalived (inet_aton), not a prefix length: write the mask, 255.255.255.0"},
		{"netmask ipv4 bare number out of range", "-A -t 198.18.0.100:80 -p -M 4294967040\n", 1, 29, "-M", "4294967040", "write the mask, such as 255.255.255.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, "rules", tc) })
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		in   string
		ipvs bool
	}{
		{"-A -t 1.2.3.4:80\n", true},
		{"  # c\n\n-a -t 1.2.3.4:80\n", true},
		{"--add-service -t 1.2.3.4:80\n", true},
		{"ipvsadm -A -t 1.2.3.4:80\n", true},
		{"\ufeff-A\n", true},
		{"-C\n", true},
		{"---\nservices: []\n", false},
		{"- a\n", false},
		{"-\n", false},
		{"services: []\n", false},
		{"ipvsadm-save: 1\n", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := isIPVSADM([]byte(tc.in)); got != tc.ipvs {
			t.Errorf("isIPVSADM(%q) = %t, want %t", tc.in, got, tc.ipvs)
		}
	}
}

// TestIpvsadmFileBundles: a rule file takes short options run together
// as the command line does (-p300, -w3, -At), and means the same as the
// rules spelled out; an error in a bundle names its column.
func TestIpvsadmFileBundles(t *testing.T) {
	bundled, err := Parse("rules.sh", []byte("ipvsadm -At 198.18.0.100:80 -s rr -p300\nipvsadm -a -t 198.18.0.100:80 -r 198.18.0.11 -g -w3\n"))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Parse("rules", []byte("-A -t 198.18.0.100:80 -s rr -p 300\n-a -t 198.18.0.100:80 -r 198.18.0.11 -g -w 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := SaveIpvsadm(bundled, true), SaveIpvsadm(plain, true); got != want {
		t.Errorf("bundled rules saved as\\n%s\\nwant\\n%s", got, want)
	}
	_, err = Parse("rules", []byte("-A -t 198.18.0.100:80\n-a -t 198.18.0.100:80 -r 198.18.0.11 -w70000\n"))
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Column != 40 || e.Value != "70000" {
		t.Errorf("a bad weight in a bundle: %v (%+v), want line 2 column 40 value 70000", err, e)
	}
}

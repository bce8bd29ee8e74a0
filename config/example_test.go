package config_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/drlb/drlb/config"
)

func ExampleParse() {
	c, err := config.Parse("drlb.yaml", []byte(`
interface: eth0
services:
  - vip: 198.18.0.100
    port: 80
    scheduler: wrr
    realservers:
      - address: 198.18.0.11
        weight: 4
        check: {type: http, path: /healthz}
      - address: 198.18.0.12
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := c.Services[0]
	fmt.Println(s.String(), s.Scheduler, "weights", s.RealServers[0].Weight, s.RealServers[1].Weight)
	fmt.Println("check", s.RealServers[0].Check.Type, s.RealServers[0].Check.URLs[0].Path, s.RealServers[0].Check.Interval)
	fmt.Print(config.FormatIPVSADM(c))
	// Output:
	// tcp 198.18.0.100:80 wrr weights 4 1
	// check http /healthz 2s
	// -A -t 198.18.0.100:80 -s wrr
	// -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 4
	// -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 1
}

func ExampleParse_ipvsadm() {
	rules := `-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.18.0.11:80 -m -w 1
`
	_, err := config.Parse("rules", []byte(rules))
	fmt.Println(err)
	var e *config.Error
	if errors.As(err, &e) {
		fmt.Println(e.Line, e.Field, errors.Is(err, config.ErrInvalid))
	}
	// Output:
	// rules:2:41: -m: drlb does direct routing only (-g): masquerading (-m) and tunneling (-i) are not supported
	// 2 -m true
}

func ExampleEditIpvsadm() {
	c, err := config.Parse("rules", []byte("-A -t 198.18.0.100:80 -s wrr\n-a -t 198.18.0.100:80 -r 198.18.0.11 -w 3\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// One command at a time, exactly as it would be given to ipvsadm.
	for _, cmd := range [][]string{
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.12", "-g", "-w", "2"},
		{"-e", "-t", "198.18.0.100:80", "-r", "198.18.0.11", "-w", "0"},
		{"-a", "-t", "198.18.0.100:80", "-r", "198.18.0.13", "-m"},
		{"-A", "-t", "198.18.0.100:80"},
	} {
		next, err := config.EditIpvsadm(c, cmd)
		if err != nil {
			fmt.Println("refused:", err)
			continue
		}
		c = next
	}
	fmt.Print(config.SaveIpvsadm(c, true))
	// Output:
	// refused: -m: drlb does direct routing only (-g): masquerading (-m) and tunneling (-i) are not supported
	// refused: -t: "198.18.0.100:80": Service already exists
	// -A -t 198.18.0.100:80 -s wrr
	// -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 0
	// -a -t 198.18.0.100:80 -r 198.18.0.12:80 -g -w 2
}

func ExampleSaveIpvsadm() {
	c, err := config.Parse("rules", []byte(`-A -u 198.18.0.101:53 -s rr
-a -u 198.18.0.101:53 -r 198.18.0.12
-a -u 198.18.0.101:53 -r 198.18.0.11
-A -t 198.18.0.100:443 -s sh -b sh-port -p 600 -M 255.255.255.0
-a -t 198.18.0.100:443 -r 198.18.0.11 -w 2
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(config.SaveIpvsadm(c, true)) // ipvsadm -S -n: sorted as ipvsadm sorts
	fmt.Println("--")
	fmt.Print(config.SaveIpvsadm(c, false)) // ipvsadm -S: well-known ports by name
	// Output:
	// -A -t 198.18.0.100:443 -s sh -p 600 -M 255.255.255.0 -b sh-port
	// -a -t 198.18.0.100:443 -r 198.18.0.11:443 -g -w 2
	// -A -u 198.18.0.101:53 -s rr
	// -a -u 198.18.0.101:53 -r 198.18.0.11:53 -g -w 1
	// -a -u 198.18.0.101:53 -r 198.18.0.12:53 -g -w 1
	// --
	// -A -t 198.18.0.100:https -s sh -p 600 -M 255.255.255.0 -b sh-port
	// -a -t 198.18.0.100:https -r 198.18.0.11:https -g -w 2
	// -A -u 198.18.0.101:domain -s rr
	// -a -u 198.18.0.101:domain -r 198.18.0.11:domain -g -w 1
	// -a -u 198.18.0.101:domain -r 198.18.0.12:domain -g -w 1
}

func ExampleParseWithWarnings() {
	conf := `global_defs {
    router_id director1
}
virtual_server 198.18.0.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    protocol TCP
    sorry_server 198.18.0.99 80
    real_server 198.18.0.11 80 {
        weight 3
        inhibit_on_failure
        HTTP_GET {
            url {
                path /healthz
                digest 640205b7b0fc66c1ea91c463fac6334d
            }
            connect_timeout 3
            retry 2
        }
        notify_down /usr/local/bin/page-me.sh
    }
}
`
	c, warnings, err := config.ParseWithWarnings("keepalived.conf", []byte(conf))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range warnings {
		fmt.Println(w)
	}
	s := c.Services[0]
	rs := s.RealServers[0]
	fmt.Println(s.String(), s.Scheduler, "sorry server", s.SorryServer.Address)
	fmt.Println(rs.Address, "weight", rs.Weight, "check", rs.Check.Type, rs.Check.URLs[0].Path, config.FormatStatus(rs.Check.URLs[0].Status),
		"every", rs.Check.Interval, "down after", rs.Check.Retries, "failures", "inhibit", rs.Check.Inhibit)

	_, _, err = config.ParseWithWarnings("keepalived.conf", []byte(strings.Replace(conf, "lb_kind DR", "lb_kind NAT", 1)))
	fmt.Println(err)
	// Output:
	// keepalived.conf:2: warning: keyword "router_id" ignored (a keepalived global setting drlb has no use for)
	// keepalived.conf:21: warning: keyword "notify_down" ignored (notify scripts are not run: drlb logs every change of a real server's state)
	// tcp 198.18.0.100:80 wrr sorry server 198.18.0.99
	// 198.18.0.11 weight 3 check http /healthz 200-299 every 6s down after 3 failures inhibit true
	// keepalived.conf:7:13: lb_kind: "NAT": drlb does direct routing (DR) only: NAT and tunneling (TUN) are not supported
}

package config_test

import (
	"errors"
	"fmt"

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
	fmt.Println("check", s.RealServers[0].Check.Type, s.RealServers[0].Check.Path, s.RealServers[0].Check.Interval)
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

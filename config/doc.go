// Package config reads a drlb director configuration: drlb's own YAML file,
// the text ipvsadm -S / -Sn prints (so an IPVS user can migrate with
// `ipvsadm -Sn > rules`), or a keepalived.conf (its includes, its
// virtual_server and real_server blocks with their health checks, and the
// vrrp_instance holding the VIPs as ha:).
//
// Where the config sits in the packet flow: every frame the director takes
// in is matched against the virtual services of the Config (protocol, VIP,
// port), a scheduler built from Service.Scheduler and Service.SchedOptions
// picks one of its RealServers, and the frame leaves unchanged but for its
// destination MAC (direct routing). So this package decides what "a VIP" and
// "a real server" are; it never touches the network.
//
// Parse returns either a complete, validated *Config with every default
// applied, or exactly one *Error naming the file, line, column, field and
// value that was wrong. Every such error wraps ErrInvalid. What a
// keepalived.conf says that drlb does not do but that would not forward
// differently (notifications, MISC_CHECK, ...) is a Warning naming file and
// line (ParseWithWarnings, LoadWithWarnings); what would forward
// differently (NAT, TUN, fwmark, ...) is an error.
//
// The same ipvsadm reader serves `drlb ctl`: EditIpvsadm applies one
// ipvsadm command line to a Config, and SaveIpvsadm and FormatIPVSADM
// print a Config as ipvsadm -S does.
package config

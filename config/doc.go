// Package config reads a drlb director configuration: drlb's own YAML file or
// the text ipvsadm -S / -Sn prints, so an IPVS user can migrate with
// `ipvsadm -Sn > rules`.
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
// value that was wrong. Every such error wraps ErrInvalid.
package config

package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// keepalived.conf's VRRP half: the vrrp_instance whose virtual_ipaddress
// holds the virtual_server VIPs becomes the ha: block.
//
//	global_defs { vrrp_version 3 }
//	vrrp_instance VI_1 {
//	    interface eth0           -> interface: eth0
//	    virtual_router_id 51     -> ha.vrid
//	    priority 150             -> ha.priority (state MASTER alone is 255: refused)
//	    advert_int 0.1           -> ha.advert_interval: 100ms
//	    nopreempt                -> ha.preempt: false
//	    preempt_delay 5          -> ha.preempt_delay: 5s
//	    skip_check_adv_addr      -> ha.SkipCheckAdvAddr (no YAML key)
//	    virtual_ipaddress { 198.18.0.100 }  -> ha.Addrs: what the adverts carry
//	}
//
// drlb maps one IPv4 VRRPv3 instance: an instance keepalived would run
// as VRRPv2 (its default), over unicast, to another multicast group or
// over IPv6 is refused, naming the file and line (IPv6 VIPs go in the
// IPv4 instance's virtual_ipaddress_excluded, and drlb elects them on an
// IPv6 router of its own, which a keepalived peer does not join: warned). What drlb does
// not do (track scripts, notify scripts, virtual MACs, its own gratuitous
// ARP timing...) is warned about, keyword by keyword. Instances that hold
// none of the VIPs are ignored with one warning each.

// kaVRRPv3 is the only VRRP version drlb speaks.
const kaVRRPv3 = 3

// kaInstance is one vrrp_instance as read.
type kaInstance struct {
	n        *kaNode
	name     string
	addrsKey kaToken // the first virtual_ipaddress keyword (zero: none)
	addrs    []kaVIP // virtual_ipaddress
	excluded []kaVIP // virtual_ipaddress_excluded
}

// holds reports the instance's addresses that are VIPs.
func (in *kaInstance) holds(vips map[netip.Addr]bool) []netip.Addr {
	var out []netip.Addr
	for _, a := range slices.Concat(in.addrs, in.excluded) {
		if vips[a.addr] && !slices.Contains(out, a.addr) {
			out = append(out, a.addr)
		}
	}
	return out
}

// vrrpInstance reads the addresses of a vrrp_instance; the rest is read
// only for the instance that is mapped (vrrpMap).
func (r *kaReader) vrrpInstance(n *kaNode) error {
	if err := needBlock(n); err != nil {
		return err
	}
	in := &kaInstance{n: n}
	if len(n.args) > 0 {
		in.name = n.args[0].text
	}
	for _, k := range n.block {
		var dst *[]kaVIP
		switch k.key.text {
		case "virtual_ipaddress":
			dst = &in.addrs
			if in.addrsKey.text == "" {
				in.addrsKey = k.key
			}
		case "virtual_ipaddress_excluded":
			dst = &in.excluded
		default:
			continue
		}
		if err := needBlock(k); err != nil {
			return err
		}
		for _, e := range k.block {
			text := e.key.text
			if p, err := netip.ParsePrefix(text); err == nil {
				text = p.Addr().String()
			}
			a, err := parseAddr(text)
			if err != nil {
				return kaErr(e.key, k.key.text, e.key.text, "%v", err)
			}
			v := kaVIP{addr: a, tok: e.key}
			// keepalived's <IPADDR>[/<MASK>] [dev <STRING>] [label ...]
			// [scope ...]...: drlb adds no address, so only dev says
			// something to it (vrrpHA).
			for i, t := range e.args {
				if t.text == "dev" && i+1 < len(e.args) {
					v.dev = e.args[i+1]
				}
			}
			*dst = append(*dst, v)
		}
	}
	r.instances = append(r.instances, in)
	return nil
}

// vrrpMap turns the vrrp_instance holding the VIPs into c.HA, once the
// whole file is read.
func (r *kaReader) vrrpMap() error {
	vips := map[netip.Addr]bool{}
	for _, s := range r.c.Services {
		vips[s.VIP] = true
	}
	var mapped *kaInstance
	for _, in := range r.instances {
		held := in.holds(vips)
		if len(held) == 0 {
			r.ignore(in.n, "it holds none of the virtual_server VIPs: drlb does not add addresses to interfaces, and answers ARP for the VIPs always")
			continue
		}
		if mapped != nil {
			return kaErr(in.n.key, "vrrp_instance", in.name, "holds the VIP %s, as vrrp_instance %s at %s:%d does: drlb runs one VRRP instance for all its VIPs",
				held[0], mapped.name, mapped.n.key.file, mapped.n.key.line)
		}
		mapped = in
	}
	if mapped == nil {
		return nil
	}
	return r.vrrpHA(mapped, vips)
}

// vrrpHA reads the mapped instance into c.HA.
func (r *kaReader) vrrpHA(in *kaInstance, vips map[netip.Addr]bool) error {
	n := in.n
	h := &HA{AdvertInterval: DefaultAdvertInterval, Preempt: true, Line: n.key.line}
	r.mark("ha", n.key, "vrrp_instance")
	var (
		state, prio, version, vrid kaOpt[int]
		iface                      kaOpt[string]
		delay                      kaOpt[time.Duration]
		nopreempt                  kaToken
		skipCheck                  kaOpt[bool]
		err                        error
	)
	version = r.vrrpVersion
	skipCheck = r.vrrpSkipCheck
	for _, k := range n.block {
		switch name := k.key.text; name {
		case "virtual_ipaddress", "virtual_ipaddress_excluded":
			// read by vrrpInstance
		case "state":
			var t kaToken
			if t, err = one(k); err == nil {
				// keepalived compares with strcmp: "master" is an
				// "unknown state", taken as BACKUP.
				switch up := strings.ToUpper(t.text); {
				case t.text == "MASTER":
					state = kaOpt[int]{v: 1, set: true, tok: t}
					r.ignore(k, "drlb elects by priority from the start, as keepalived does with preemption (an initial MASTER clears nopreempt and preempt_delay, in keepalived and drlb)")
				case t.text == "BACKUP":
					state = kaOpt[int]{v: 0, set: true, tok: t}
					r.ignore(k, "drlb elects by priority from the start, as keepalived does with preemption: the initial state does not matter")
				case up == "MASTER" || up == "BACKUP":
					state = kaOpt[int]{v: 0, set: true, tok: t}
					r.ignore(k, fmt.Sprintf("keepalived takes MASTER and BACKUP in capitals only: it runs %q as BACKUP, and so does drlb", t.text))
				default:
					return kaErr(t, name, t.text, "must be MASTER or BACKUP")
				}
			}
		case "interface":
			var t kaToken
			if t, err = one(k); err == nil {
				iface = kaOpt[string]{v: t.text, set: true, tok: t}
			}
		case "virtual_router_id":
			vrid, err = kaInt(k, 1, 255)
		case "priority":
			prio, err = kaInt(k, 1, 255)
		case "advert_int":
			var d kaOpt[time.Duration]
			if d, err = kaTimer(k); err == nil {
				h.AdvertInterval = d.v
				r.mark("ha.advert_interval", d.tok, name)
			}
		case "nopreempt", "no_preempt":
			if err = noBlock(k); err == nil {
				nopreempt = k.key
			}
		case "preempt":
			if err = noBlock(k); err == nil {
				nopreempt = kaToken{}
			}
		case "preempt_delay":
			if delay, err = kaTimer(k); err == nil && delay.v > 1000*time.Second {
				return kaErr(delay.tok, name, delay.tok.text, "must be 0..1000 seconds, as keepalived takes it")
			}
		case "version":
			version, err = kaInt(k, 2, 3)
		case "unicast_peer":
			if err = needBlock(k); err == nil && len(k.block) > 0 {
				return kaErr(k.key, name, k.block[0].key.text, "drlb sends VRRP adverts by multicast to 224.0.0.18 only: directors in unicast mode would never hear it (drop unicast_peer on every director)")
			}
			r.ignore(k, "no peers: adverts go by multicast, as keepalived sends them")
		case "mcast_dst_ip":
			var t kaToken
			if t, err = one(k); err == nil && t.text != "224.0.0.18" {
				return kaErr(t, name, t.text, "drlb sends VRRP adverts to 224.0.0.18 only")
			}
		case "unicast_ttl", "unicast_fault_no_peer", "check_unicast_src", "old_unicast_checksum":
			r.ignore(k, "drlb sends adverts by multicast only")
		case "mcast_src_ip", "unicast_src_ip":
			// Without unicast_peer keepalived takes unicast_src_ip as the
			// multicast adverts' source, as mcast_src_ip.
			r.ignore(k, "drlb sends adverts from the interface's own IPv4 address")
		case "track_script", "track_interface", "track_file", "track_process", "track_bfd", "track_src_ip":
			r.ignore(k, "drlb's priority does not follow scripts, interfaces, files or processes: it stays as configured")
		case "dont_track_primary":
			r.ignore(k, "drlb always follows the interface's link, as keepalived does without it: FAULT while the link is down")
		case "authentication":
			r.ignore(k, "VRRPv3 has no authentication (RFC 5798)")
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh", "garp_master_refresh_repeat",
			"garp_lower_prio_delay", "garp_lower_prio_repeat", "garp_extra_if", "garp_extra_if_vmac":
			r.ignore(k, "drlb's own timing: a new master sends 5 gratuitous ARP / unsolicited NA per VIP at once and 5 more 2 s later")
		case "use_vmac", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan":
			r.ignore(k, "drlb answers ARP for the VIPs with its own MAC and moves them by gratuitous ARP")
		case "lvs_sync_daemon":
			r.ignore(k, kaSyncWhy)
		case "virtual_routes", "virtual_rules":
			r.ignore(k, "routes and rules are the host's business, not drlb's")
		case "down_timer_adverts":
			r.ignore(k, "drlb's master-down interval is RFC 5798's: 3 intervals and the skew")
		case "smtp_alert", "notify_priority_changes":
			r.ignore(k, "notifications are not sent: drlb logs every transition with its reason")
		case "skip_check_adv_addr":
			skipCheck, err = kaBool(k)
		case "accept", "no_accept", "strict_mode", "lower_prio_no_advert", "higher_prio_send_advert",
			"promote_secondaries", "native_ipv6", "debug", "kernel_rx_buf_size", "linkbeat_use_polling", "vrf":
			r.ignore(k, "a keepalived VRRP setting drlb has no use for")
		default:
			if strings.HasPrefix(name, "notify") {
				r.ignore(k, "notify scripts are not run: drlb logs every transition with its reason")
				break
			}
			r.unknown(k, "in vrrp_instance", []string{"state", "interface", "virtual_router_id", "priority", "advert_int",
				"nopreempt", "preempt_delay", "version", "virtual_ipaddress", "virtual_ipaddress_excluded", "track_script"})
		}
		if err != nil {
			return err
		}
	}
	// keepalived runs an IPv6 instance as VRRPv3 whatever the version.
	fam := in.addrs
	if len(fam) > 0 && fam[0].addr.Is6() {
		return kaErr(fam[0].tok, "virtual_ipaddress", fam[0].tok.text, "drlb maps one vrrp_instance, an IPv4 one, into ha:, and runs the IPv6 VIPs' election on a virtual router of their own (ff02::12, same VRID and settings): put them in virtual_ipaddress_excluded of the IPv4 instance, between drlb directors (a keepalived peer moves excluded addresses with its IPv4 instance, and would not take part in drlb's IPv6 election)")
	}
	// The version: keepalived's default is 2.
	if version.get(2) != kaVRRPv3 {
		if version.set {
			return kaErr(version.tok, "version", version.tok.text, "drlb speaks VRRPv3 only: write version 3 here or vrrp_version 3 in global_defs (on every director)")
		}
		return kaErr(n.key, "version", "", "keepalived runs this vrrp_instance as VRRPv2, its default: drlb speaks VRRPv3 only: write version 3 here or vrrp_version 3 in global_defs (on every director)")
	}
	if !vrid.set {
		return kaErr(n.key, "virtual_router_id", "", "missing: a vrrp_instance needs a virtual_router_id 1..255")
	}
	h.VRID = vrid.v
	r.mark("ha.vrid", vrid.tok, "virtual_router_id")
	switch {
	case prio.set:
		h.Priority = prio.v
		r.mark("ha.priority", prio.tok, "priority")
	case state.set && state.v == 1:
		return kaErr(state.tok, "state", state.tok.text, "without a priority keepalived gives a MASTER priority 255, VRRP's address owner: in DR no director owns the VIPs: write priority 1..254")
	default:
		h.Priority = 100 // keepalived's default
	}
	// vrrp_parser.c clears both under an initial MASTER ("nopreempt will
	// not work with initial state MASTER - clearing", and the same for
	// preempt delay): keepalived's director preempts at once. Kept, they
	// left drlb's director never preempting, or waiting.
	if state.set && state.v == 1 {
		if nopreempt.text != "" {
			r.warn(Warning{File: nopreempt.file, Line: nopreempt.line, Keyword: nopreempt.text, Msg: "keepalived clears it under state MASTER: the director preempts, as keepalived's does"})
			nopreempt = kaToken{}
		}
		if delay.set {
			r.warn(Warning{File: delay.tok.file, Line: delay.tok.line, Keyword: "preempt_delay", Msg: "keepalived clears it under state MASTER: the director preempts at once, as keepalived's does"})
			delay = kaOpt[time.Duration]{}
		}
	}
	if nopreempt.text != "" {
		h.Preempt = false
		r.mark("ha.preempt", nopreempt, nopreempt.text)
		if delay.set {
			r.warn(Warning{File: delay.tok.file, Line: delay.tok.line, Keyword: "preempt_delay", Msg: "with nopreempt there is no preemption to delay, as keepalived ignores it"})
			delay = kaOpt[time.Duration]{}
		}
	}
	if delay.set {
		h.PreemptDelay = delay.v
		r.mark("ha.preempt_delay", delay.tok, "preempt_delay")
	}
	if skipCheck.set {
		h.SkipCheckAdvAddr = skipCheck.v
		r.mark("ha.skip_check_adv_addr", skipCheck.tok, "skip_check_adv_addr")
	}
	if iface.set {
		r.c.Interface = iface.v
		h.Interface = iface.v
		r.mark("interface", iface.tok, "interface")
		r.mark("ha.interface", iface.tok, "interface")
	}
	// Every VIP moves with the master: one the instance does not hold
	// would be answered by keepalived's host always, by drlb's master only.
	for i, s := range r.c.Services {
		if !slices.ContainsFunc(slices.Concat(in.addrs, in.excluded), func(v kaVIP) bool { return v.addr == s.VIP }) {
			at := r.at["services["+strconv.Itoa(i)+"]"]
			return kaErr(n.key, "vrrp_instance", in.name, "does not hold the VIP %s of the virtual_server at %s: drlb's VRRP master answers ARP for every VIP and a backup for none: add it to virtual_ipaddress (or virtual_ipaddress_excluded)", s.VIP, place(kaToken{file: at.file, line: at.line}, n.key))
		}
	}
	if err := r.vrrpAddrs(in, h); err != nil {
		return err
	}
	// keepalived adds an address on its dev; drlb answers ARP/NDP for
	// the VIPs on its one interface.
	otherDev := func(a kaVIP) {
		if iface.set && a.dev.text != "" && a.dev.text != iface.v {
			r.note(a.dev, "%s dev %s: keepalived adds it on %s, but drlb answers ARP/NDP for its VIPs on the vrrp_instance's interface %s only (and sees only the frames that arrive there)",
				a.addr, a.dev.text, a.dev.text, iface.v)
		}
	}
	for _, a := range in.addrs {
		otherDev(a)
		switch {
		case vips[a.addr]:
		case a.addr.Is4():
			r.note(a.tok, "%s in vrrp_instance %s is not the VIP of a virtual_server: drlb's adverts carry it, as keepalived's do (a keepalived peer drops adverts without it), but drlb adds it to no interface and answers no ARP for it", a.addr, in.name)
		default:
			r.note(a.tok, "%s in vrrp_instance %s is not the VIP of a virtual_server, nor of the instance's family (IPv4): the adverts do not carry it; ignored", a.addr, in.name)
		}
	}
	for _, a := range in.excluded {
		otherDev(a)
		if !vips[a.addr] {
			r.note(a.tok, "%s in vrrp_instance %s is not the VIP of a virtual_server: ignored, drlb does not add addresses to interfaces", a.addr, in.name)
		}
	}
	for _, a := range in.excluded {
		if a.addr.Is6() && vips[a.addr] {
			r.note(a.tok, "%s: drlb elects its IPv6 VIPs on a virtual router of their own (ff02::12, same VRID), where keepalived moves excluded addresses with this IPv4 instance: fine between drlb directors, but beside a keepalived peer both would answer NDP for them; keep keepalived out of the pair, or IPv6 VIPs out of the file", a.addr)
			break
		}
	}
	r.c.HA = h
	return nil
}

// vrrpAddrs sets h.Addrs to what keepalived's adverts for in carry: the
// IPv4 entries of virtual_ipaddress, in order (keepalived drops an entry
// of another family than the instance's, and leaves
// virtual_ipaddress_excluded out of its adverts). A keepalived peer drops
// every advert whose list differs from its own, so drlb must send the
// same list, not the VIPs.
func (r *kaReader) vrrpAddrs(in *kaInstance, h *HA) error {
	var addrs []netip.Addr
	for _, a := range in.addrs {
		if !a.addr.Is4() {
			continue
		}
		if len(addrs) == vrrpMaxAddrs {
			return kaErr(a.tok, "virtual_ipaddress", a.tok.text, "vrrp_instance %s has more than %d IPv4 addresses: a VRRP advert carries at most %d", in.name, vrrpMaxAddrs, vrrpMaxAddrs)
		}
		addrs = append(addrs, a.addr)
	}
	if len(addrs) > 0 {
		h.Addrs = addrs
		r.mark("ha.addrs", in.addrsKey, "virtual_ipaddress")
		return nil
	}
	for i, s := range r.c.Services {
		if s.VIP.Is4() {
			// The IPv4 virtual router runs, and its adverts would be
			// empty: keepalived refuses such an instance ("No VIP
			// specified; at least one is required" for VRRPv3).
			at := r.at["services["+strconv.Itoa(i)+"]"]
			return kaErr(in.n.key, "vrrp_instance", in.name, "has no IPv4 address in virtual_ipaddress (the IPv4 VIP %s of the virtual_server at %s is in virtual_ipaddress_excluded): keepalived refuses a VRRPv3 instance without one, and its adverts carry exactly that list: move the VIPs into virtual_ipaddress", s.VIP, place(kaToken{file: at.file, line: at.line}, in.n.key))
		}
	}
	return nil // IPv6 VIPs alone: no IPv4 adverts
}

// vrrpMaxAddrs is the most addresses a VRRP advert carries (vrrp.MaxAddrs;
// config does not import vrrp).
const vrrpMaxAddrs = 255

// kaSyncWhy is why lvs_sync_daemon is ignored.
const kaSyncWhy = "IPVS's sync daemon is not run: drlb's connection sync is ha: sync: in YAML, which needs a key file (keepalived's sync has none); without it, after a failover sh and mh keep flows on their real server, other schedulers place them afresh"

// kaVRRPVersion reads global_defs' vrrp_version.
func (r *kaReader) kaVRRPVersion(n *kaNode) error {
	v, err := kaInt(n, 2, 3)
	if err != nil {
		return err
	}
	r.vrrpVersion = v
	return nil
}

// String is the ha: block in words, as drlb check prints it.
func (h *HA) String() string {
	if h == nil {
		return ""
	}
	s := "vrid " + strconv.Itoa(h.VRID) + ", priority " + strconv.Itoa(h.Priority) + ", advert_interval " + h.AdvertInterval.String()
	if h.Preempt {
		s += ", preempt"
		if h.PreemptDelay > 0 {
			s += " after " + h.PreemptDelay.String()
		}
	} else {
		s += ", no preempt"
	}
	if h.SkipCheckAdvAddr {
		s += ", skip_check_adv_addr"
	}
	if h.Sync != nil {
		s += fmt.Sprintf(", sync with %d peer", len(h.Sync.Peers))
		if len(h.Sync.Peers) != 1 {
			s += "s"
		}
	}
	return s
}

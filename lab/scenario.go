package lab

// Scenario is one of the DR traps `drlb lab --scenario NAME` provokes in a
// lab of its own, shows with real packets, diagnoses and fixes, each step
// checked.
type Scenario struct {
	// Name is what --scenario takes.
	Name string
	// Title is the scenario's heading.
	Title string
	// Shows is one line for --list-scenarios: the trap and what the run shows.
	Shows string
	// RealServers and Scheduler shape its lab (the --realservers and
	// --scheduler of the walkthrough do not apply).
	RealServers int
	Scheduler   string
	// Directors is how many directors its lab has (testbed.Options.Directors;
	// 0 is one).
	Directors int
	// BGP puts the VIP off the LAN, announced by the directors by BGP to
	// BIRD 2 on the router (testbed.Options.RoutedVIP); the scenario
	// refuses to start without bird.
	BGP bool
}

// scenarios lists every scenario in the order --list-scenarios shows
// them. Each one's run is in its own file, scenario_<name, no dash>_linux.go.
var scenarios = []Scenario{
	{
		Name: "arp-flux", Title: "ARP flux: a real server answers ARP for the VIP",
		Shows:       "rs1 without arp_ignore/arp_announce steals the VIP: the router's cache, requests bypassing the director, drlb doctor naming rs1, drlb realserver up fixing it",
		RealServers: 3, Scheduler: "rr",
	},
	{
		Name: "forwarding-on", Title: "IP forwarding on the director: every packet twice",
		Shows:       "the director's kernel routes its own copy of each VIP frame: the real server gets every packet twice; drlb run refuses, -blackhole-vip fixes it",
		RealServers: 1, Scheduler: "rr",
	},
	{
		Name: "restart", Title: "The director restarts under keep-alive connections",
		Shows:       "with rr every open connection breaks (the new director cannot place it), with mh every one survives on its server",
		RealServers: 3, Scheduler: "rr",
	},
	{
		Name: "mtu", Title: "A real server with a smaller MTU",
		Shows:       "rs1 at MTU 1400 on a 1500 LAN: TCP is saved by the MSS, full-size UDP uploads vanish without an ICMP; drlb doctor names rs1, one MTU fixes it",
		RealServers: 2, Scheduler: "rr",
	},
	{
		Name: "scale-out", Title: "Two directors behind ECMP, announced by BGP; one withdraws",
		Shows:       "two directors announce the VIP to BIRD, the router spreads new connections over both and mh picks the same server on either; one gets SIGTERM, the router drops it within ms and its open connections continue through the other on the same server",
		RealServers: 3, Scheduler: "mh", Directors: 2, BGP: true,
	},
	{
		Name: "failover", Title: "Two directors, one VIP by VRRP: the master is killed",
		Shows:       "the master's VRRP adverts, the router's ARP entry on its MAC, keep-alive connections through it; SIGKILL: the backup's takeover after the master-down interval, its gratuitous ARP, the router's entry moving, the connections going on through the new master on the same servers (mh)",
		RealServers: 3, Scheduler: "mh", Directors: 2,
	},
}

// Scenarios returns every scenario, in order.
func Scenarios() []Scenario { return append([]Scenario(nil), scenarios...) }

// scenarioNamed returns the scenario called name, or nil.
func scenarioNamed(name string) *Scenario {
	for i := range scenarios {
		if scenarios[i].Name == name {
			return &scenarios[i]
		}
	}
	return nil
}

// scenarioNames lists the names, for messages.
func scenarioNames() []string {
	var s []string
	for _, sc := range scenarios {
		s = append(s, sc.Name)
	}
	return s
}

package main

import (
	"context"
	"io"

	"github.com/drlb/drlb/control"
)

const ctlBGPUsage = "usage: drlb ctl [-s SOCKET] bgp [drain | undrain]"

// runCtlBGP is `drlb ctl bgp`: the BGP sessions and what is announced;
// `drain` withdraws every VIP (the router moves the flows to the other
// directors, this one keeps forwarding what still reaches it), `undrain`
// announces them again.
func runCtlBGP(ctx context.Context, socket string, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		snap, err := control.Get(ctx, socket, false)
		if err != nil {
			return err
		}
		if snap.BGP == nil {
			io.WriteString(stdout, "BGP is off: the config has no bgp: block (the VIPs are answered by ARP/NDP)\n")
			return nil
		}
		control.WriteBGP(stdout, snap)
		return nil
	case len(args) == 1 && (args[0] == "drain" || args[0] == "undrain"):
		res, err := control.BGPDrain(ctx, socket, args[0] == "drain")
		return ctlResult(res, err, stdout, stderr)
	}
	return usageError("%s", ctlBGPUsage)
}

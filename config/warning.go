package config

import (
	"strconv"
	"strings"
)

// Warning is something a configuration says that drlb accepts but does not
// act on, or acts on differently than the writer may expect: a
// keepalived.conf keyword drlb ignores (notification settings, VRRP, a
// checker it does not run), an include that matched no file. A warning
// never changes how drlb forwards compared with keepalived + IPVS; what
// would is an *Error.
type Warning struct {
	File string
	Line int
	// Keyword is the keyword the warning is about ("" for none); when
	// set, the warning says the keyword is ignored, and Msg why.
	Keyword string
	Msg     string
}

// String reads like a compiler warning:
//
//	keepalived.conf:4: warning: keyword "router_id" ignored (keepalived's own settings: drlb has no use for it)
func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		b.WriteString(":" + strconv.Itoa(w.Line))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString("warning: ")
	if w.Keyword != "" {
		b.WriteString("keyword " + quoteValue(w.Keyword) + " ignored")
		if w.Msg != "" {
			b.WriteString(" (" + w.Msg + ")")
		}
		return b.String()
	}
	b.WriteString(w.Msg)
	return b.String()
}

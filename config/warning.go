package config

import (
	"cmp"
	"slices"
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

// inLineOrder sorts ws as a compiler lists its warnings: by line within
// each file, files in the order their first warning came (an include's
// among its includer's as they were met). Some warnings are only known
// once the whole file is read (a vrrp_instance that holds no VIP), and
// came after every later line's.
func inLineOrder(ws []Warning) {
	rank := map[string]int{}
	for _, w := range ws {
		if _, ok := rank[w.File]; !ok {
			rank[w.File] = len(rank)
		}
	}
	slices.SortStableFunc(ws, func(a, b Warning) int {
		return cmp.Or(cmp.Compare(rank[a.File], rank[b.File]), cmp.Compare(a.Line, b.Line))
	})
}

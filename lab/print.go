package lab

import (
	"fmt"
	"io"
	"strings"
)

// heading starts a section of the walkthrough.
func heading(w io.Writer, n int, title string) {
	s := fmt.Sprintf("== %d. %s ", n, title)
	fmt.Fprintf(w, "\n%s%s\n\n", s, strings.Repeat("=", max(3, 78-len(s))))
}

// indent prints text with every line indented.
func indent(w io.Writer, prefix, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintln(w, prefix+line)
	}
}

// cmdLine prints a command an operator would type, with a comment.
func cmdLine(w io.Writer, cmd, comment string) {
	if comment == "" {
		fmt.Fprintf(w, "  $ %s\n", cmd)
		return
	}
	fmt.Fprintf(w, "  $ %-50s # %s\n", cmd, comment)
}

package lab_test

import (
	"context"
	"fmt"
	"os"

	"github.com/drlb/drlb/lab"
)

// Run is what `drlb lab` does; the director is the drlb binary itself.
func ExampleRun() {
	exe, _ := os.Executable() // must be drlb: it is run as `drlb run -c CONFIG`
	err := lab.Run(context.Background(), lab.Options{Scheduler: "wrr", Requests: 12, Executable: exe}, os.Stdout)
	if err != nil {
		fmt.Println(err) // without root: needs root (network namespaces): run it with sudo
	}
}

// Command ssi-hold is the holder of a process run for a deputy (package
// hold): small, so that one per process costs little. The agent starts
// it; it is not for people to run.
package main

import (
	"os"

	"github.com/ssi-cluster/ssi/internal/hold"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == hold.Arg:
		hold.Main(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == rexec.ShimArg:
		rexec.Shim() // a tty run's session helper, under the holder
	}
	os.Stderr.WriteString("ssi-hold: started by the ssi agent, not by hand\n")
	os.Exit(2)
}

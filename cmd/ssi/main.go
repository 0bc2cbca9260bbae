// Command ssi is the single binary of the ssi cluster: `ssi agent` is the
// per-node daemon, every other subcommand a client of the local agent.
package main

import (
	"os"

	"github.com/ssi-cluster/ssi/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:])) }

package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"finesse-relay/server/bench"
)

// cmdBench runs the multi-process benchmark (package bench) with this
// binary as the simulator and the relay.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "finesse-relay: bench: cannot find this program's path:", err)
		return exitFail
	}
	return bench.Main(ctx, exe, args, stdout, stderr)
}

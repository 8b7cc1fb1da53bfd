package main

import (
	"context"
	"fmt"
	"io"
)

// cmdBench is replaced by the benchmark harness.
func cmdBench(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "finesse-relay: bench is not built yet")
	return exitFail
}

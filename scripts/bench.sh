#!/usr/bin/env bash
# Measures the relay and prints the tables the README quotes:
#
#   1. `finesse-relay bench` (the simulator and the relay as two processes,
#      driven from a third; every scenario, the relay process measured alone;
#      JSON in $OUT/bench.json);
#   2. the Go benchmarks of the relay path in ./server/bench (-count 5, the
#      same processes), summarised with benchstat.
#
# Usage: scripts/bench.sh [flags for `finesse-relay bench`]
#   e.g. scripts/bench.sh --scenarios steady,failover
#
# Environment:
#   COUNT=5          go test -count
#   BENCHTIME=1s     go test -benchtime
#   OUT=dir          where raw results go (default: a new temporary directory)
#   SKIP_CLI=1       skip `finesse-relay bench`
#   SKIP_GO=1        skip the Go benchmarks
#   BENCHSTAT=path   a benchstat binary; otherwise the one on PATH, otherwise
#                    golang.org/x/perf/cmd/benchstat at the version pinned
#                    below is installed into $OUT/bin (Go module proxy)
#
# The machine's load is printed first: on a shared machine the figures are
# upper bounds for latency and lower bounds for throughput.
set -euo pipefail

cd "$(dirname "$0")/.."

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-1s}
OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/finesse-relay-bench.XXXXXX")}
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da # golang.org/x/perf has no tags
mkdir -p "$OUT"

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) $(go version | cut -d' ' -f3-), $(nproc 2>/dev/null || echo '?') CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "== raw results in $OUT"

if [[ -z "${SKIP_CLI:-}" ]]; then
	echo
	echo "== finesse-relay bench $*"
	go build -o "$OUT/finesse-relay" ./server
	"$OUT/finesse-relay" bench --out "$OUT/bench.json" "$@" | tee "$OUT/bench.txt"
fi

if [[ -z "${SKIP_GO:-}" ]]; then
	echo
	echo "== go test -run '^\$' -bench . -benchtime $BENCHTIME -count $COUNT ./server/bench/"
	go test -run '^$' -bench . -benchtime "$BENCHTIME" -count "$COUNT" ./server/bench/ | tee "$OUT/gobench.txt"

	bs=${BENCHSTAT:-$(command -v benchstat || true)}
	if [[ -z "$bs" ]]; then
		if GOBIN="$OUT/bin" go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION" 2>"$OUT/benchstat-install.log"; then
			bs="$OUT/bin/benchstat"
		else
			echo "benchstat could not be installed (see $OUT/benchstat-install.log); the raw results are above" >&2
			exit 0
		fi
	fi
	echo
	echo "== relay event: PUT → tab (sec/op), → direct client (direct-ns/op), hop (benchstat)"
	"$bs" -filter '.name:RelayEvent' "$OUT/gobench.txt"
	echo
	echo "== fan-out by number of tabs (benchstat, base = tabs=1)"
	"$bs" -filter '.name:FanOut' -col /tabs "$OUT/gobench.txt"
fi

#!/usr/bin/env bash
# Runs every Go fuzzer of the module for a short time each.
# Fuzzers are discovered, not listed: every `func FuzzXxx(f *testing.F)` in
# a *_test.go file is run, so a new fuzzer is picked up without editing
# this script. Seed corpora live in each package's testdata/fuzz/FuzzXxx/
# (go test also runs them, as plain tests, in `go test ./...`); an input
# that fails is written there by go test, ready to commit as a regression.
#
#   scripts/fuzz.sh                  every fuzzer, FUZZTIME each (default 4s)
#   FUZZTIME=1m scripts/fuzz.sh      longer
#   scripts/fuzz.sh FuzzParseBody    only the fuzzers whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-4s}"
filter="${1:-.}"
t0=$SECONDS

# "dir name" pairs, one per fuzzer, sorted for a stable order.
mapfile -t fuzzers < <(
  find . -name '*_test.go' -not -path '*/node_modules/*' -not -path './.git/*' -print0 |
    xargs -0 grep -HoE '^func Fuzz[A-Za-z0-9_]+\(' |
    sed -E 's#^\./##; s#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($#\1 \2#; s#^[^/ ]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($#. \1#' |
    grep -E " .*${filter}" | sort -u
)
if [ ${#fuzzers[@]} -eq 0 ]; then echo "fuzz.sh: no fuzzer matches '$filter'"; exit 1; fi
echo "fuzz.sh: ${#fuzzers[@]} fuzzers, $FUZZTIME each"
for entry in "${fuzzers[@]}"; do
  dir=${entry% *}; name=${entry#* }
  s=$SECONDS
  corpus="./$dir/testdata/fuzz/$name"
  before=$( { find "$corpus" -type f 2>/dev/null || true; } | wc -l)
  ok=1
  for attempt in 1 2; do
    if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1); then ok=1; break; fi
    ok=0
    # Go's fuzzing engine sometimes ends with "context deadline exceeded"
    # when a worker does not answer by the deadline, without any failing
    # input. A real finding always writes its input to the corpus; only an
    # engine timeout with nothing written is tried once more.
    after=$( { find "$corpus" -type f 2>/dev/null || true; } | wc -l)
    if [ "$attempt" = 1 ] && [ "$after" = "$before" ] && grep -q 'context deadline exceeded' <<<"$out"; then
      echo "  $name: the fuzzing engine timed out with no failing input; once more"
      continue
    fi
    break
  done
  if [ "$ok" = 0 ]; then
    echo "$out"
    echo "FAIL $name (./$dir): the failing input is in ./$dir/testdata/fuzz/$name/; reproduce with go test -run '$name' ./$dir"
    exit 1
  fi
  printf '  %-28s %-24s %3ds\n' "$name" "./$dir" $((SECONDS - s))
done
echo "fuzz.sh: all ${#fuzzers[@]} fuzzers passed in $((SECONDS - t0)) s"

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
  if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "./$dir" 2>&1); then
    echo "$out"
    echo "FAIL $name (./$dir): the failing input is in ./$dir/testdata/fuzz/$name/; reproduce with go test -run '$name' ./$dir"
    exit 1
  fi
  printf '  %-28s %-24s %3ds\n' "$name" "./$dir" $((SECONDS - s))
done
echo "fuzz.sh: all ${#fuzzers[@]} fuzzers passed in $((SECONDS - t0)) s"

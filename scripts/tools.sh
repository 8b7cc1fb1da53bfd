#!/usr/bin/env bash
# Go-built release tools, compiled once per version into a cache and reused:
#   scripts/tools.sh nfpm        prints the path of nfpm v2.45.2 (building it if needed)
#   scripts/tools.sh goreleaser  prints the path of goreleaser v2.15.1
# Cache: ${FINESSE_RELAY_TOOLS:-$HOME/.cache/finesse-relay-tools}/<tool>-<version>/.
# goreleaser takes minutes to compile (measured in README "Install on Linux");
# the cache makes every later run start at once.
set -euo pipefail
cache="${FINESSE_RELAY_TOOLS:-$HOME/.cache/finesse-relay-tools}"
case "${1:-}" in
  nfpm)       mod=github.com/goreleaser/nfpm/v2/cmd/nfpm; ver=v2.45.2; bin=nfpm ;;
  goreleaser) mod=github.com/goreleaser/goreleaser/v2;    ver=v2.15.1; bin=goreleaser ;;
  *) echo "usage: $0 nfpm|goreleaser" >&2; exit 2 ;;
esac
dir="$cache/$1-$ver"
mkdir -p "$cache"
# One build at a time: scripts/test.sh starts the goreleaser build early in
# the background, and release-test.sh waits here for it.
exec 9>"$dir.lock"
flock 9
if [ ! -x "$dir/$bin" ]; then
  mkdir -p "$dir"
  start=$SECONDS
  echo "building $1 $ver into $dir (once)..." >&2
  GOBIN="$dir" GOFLAGS=-buildvcs=false go install "$mod@$ver" >&2
  echo "built $1 $ver in $((SECONDS - start)) s" >&2
fi
echo "$dir/$bin"

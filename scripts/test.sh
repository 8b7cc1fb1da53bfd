#!/usr/bin/env bash
# The one test entry point (CI runs this and nothing else).
# Installs what the tests need when missing (Debian packages, npm packages),
# then runs: gofmt check, go vet, staticcheck, go test -race ./... (with the
# real Prosody and ejabberd peers up, so the integration tests run), the protocol test in
# Node, and the browser tests in headless Chromium.
#
#   scripts/test.sh            everything
#   SKIP_BROWSER=1 scripts/test.sh   everything but the browser suite (local use)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STATICCHECK_VERSION=v0.8.2
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
t0=$SECONDS

# ---- 1. packages ----
step "packages"
need=()
command -v prosody >/dev/null || need+=(prosody)
[ -f /usr/lib/prosody/modules/mod_auth_dovecot/auth_dovecot/mod_auth_dovecot.lua ] || need+=(prosody-modules)
command -v dovecot >/dev/null || need+=(dovecot-core)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Keep the packages' postinst from starting system prosody/dovecot/ejabberd/redis daemons.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
else
  echo "all present"
fi
scripts/ops-packages.sh  # promtool (prometheus), systemd-analyze (systemd)
# goreleaser takes minutes to compile the first time: build it in the
# background, at low priority, while the rest runs (release-test.sh waits
# for it; later runs find it cached).
mkdir -p test-artifacts
(nice -n 15 scripts/tools.sh goreleaser >/dev/null 2>test-artifacts/goreleaser-build.log || true) &
tools_pid=$!
trap 'kill $tools_pid 2>/dev/null || true' EXIT

# ---- 2. static checks ----
step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
echo ok
step "go vet"
go vet ./...
step "windows: go vet + go build (cross)"; scripts/windows-build.sh
step "staticcheck $STATICCHECK_VERSION"
go run "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" ./...
echo ok
step "security: gosec, govulncheck"; scripts/security.sh
step "go mod tidy (no diff)"
cp go.mod /tmp/go.mod.before; cp go.sum /tmp/go.sum.before
go mod tidy
if ! diff -q go.mod /tmp/go.mod.before >/dev/null || ! diff -q go.sum /tmp/go.sum.before >/dev/null; then
  cp /tmp/go.mod.before go.mod; cp /tmp/go.sum.before go.sum
  echo "go.mod/go.sum are not tidy: run go mod tidy and commit"; exit 1
fi
echo ok

step "Dockerfile build-stage command, outside Docker"
build_cmd=$(sed -n 's/^RUN \(CGO_ENABLED=0 go build .*\)$/\1/p' Dockerfile)
[ -n "$build_cmd" ] || { echo "no go build RUN line found in Dockerfile"; exit 1; }
mkdir -p test-artifacts
(VERSION=ci; eval "${build_cmd//\/out\//$ROOT/test-artifacts/docker-}")
if ldd test-artifacts/docker-finesse-relay >/dev/null 2>&1; then echo "binary is not static"; exit 1; fi
test-artifacts/docker-finesse-relay version
rm -f test-artifacts/docker-finesse-relay

# ---- 3. the real XMPP peers (Prosody + Dovecot + fake IdS; ejabberd + extauth + fake IdS) ----
step "XMPP peers: Prosody and ejabberd"
export PEER_DIR="${PEER_DIR:-/tmp/finesse-relay-peer}" EJABBERD_DIR="${EJABBERD_DIR:-/tmp/finesse-relay-ejabberd}"
scripts/peer/stop.sh >/dev/null 2>&1 || true
scripts/peer/ejabberd-stop.sh >/dev/null 2>&1 || true
trap 'kill $tools_pid 2>/dev/null || true; scripts/peer/stop.sh >/dev/null 2>&1 || true; scripts/peer/ejabberd-stop.sh >/dev/null 2>&1 || true; scripts/redis-stop.sh >/dev/null 2>&1 || true' EXIT
scripts/peer/start.sh >/dev/null
scripts/peer/ejabberd-start.sh >/dev/null
export FINESSE_PEER_ENV="$PEER_DIR/env" FINESSE_EJABBERD_ENV="$EJABBERD_DIR/env"
echo "up: $FINESSE_PEER_ENV $FINESSE_EJABBERD_ENV"
scripts/redis-stop.sh >/dev/null 2>&1 || true; FINESSE_REDIS_URL=$(scripts/redis-start.sh); export FINESSE_REDIS_URL; echo "redis: $FINESSE_REDIS_URL"

# ---- 4. Go tests (unit, fuzz seeds, integration against the peer) ----
step "go test -race ./..."
export CI="${CI:-}"
go test -race -count=1 -timeout 15m ./...
step "finesse-relay bench --quick (simulator and relay as processes)"; go run ./server bench --quick --out "$ROOT/test-artifacts/bench-quick.json"
step "fuzzing (every fuzzer, 4 s each)"; scripts/fuzz.sh
step "packages: promtool rules, .deb install/upgrade/purge, .rpm"; scripts/package-test.sh
step "goreleaser check + snapshot"; scripts/release-test.sh

# ---- 5. Node: protocol test from the README contract, JS client unit tests, browser tests ----
if [ -d web/test ]; then
  step "npm packages (web/test)"
  (cd web/test && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi)
  step "node tests (protocol contract, JS client)"
  (cd web/test && node --import ./lib/static-client.mjs --test unit/)
  step "typed JS client (tsc --noEmit)"; scripts/client-types-test.sh
  if [ -z "${SKIP_BROWSER:-}" ]; then
    step "browser tests (headless Chromium)"
    go build -o "$ROOT/test-artifacts/finesse-relay" ./server
    (cd web/test && RELAY_BIN="$ROOT/test-artifacts/finesse-relay" ARTIFACTS="$ROOT/test-artifacts" node --test browser/)
  fi
fi

step "all tests passed in $((SECONDS - t0)) s"

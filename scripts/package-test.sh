#!/usr/bin/env bash
# Packaging and monitoring checks (called from scripts/test.sh after the Go tests):
#  1. promtool check rules on configs/prometheus/alerts.yml
#  2. the .deb: build (nfpm), dpkg -i, check files/user/permissions and that nothing
#     was started, systemd-analyze verify on the installed unit, run the installed
#     binary as the service user against the simulator (the installed binary's
#     own "demo" provides it) until /testbackend and /readyz answer, upgrade to a
#     second build (the edited relay.env must be kept), run it again, dpkg --purge
#  3. the .rpm: build only (no rpm database here)
# Needs root for dpkg (fails under CI=1 without it, skips otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
t0=$SECONDS
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
need_or_skip() { # tool, what it is for
  command -v "$1" >/dev/null && return 0
  [ -n "${CI:-}" ] && fail "$1 is missing ($2); run scripts/ops-packages.sh"
  echo "package-test: $1 missing, skipping $2 (scripts/ops-packages.sh installs it)"; return 1
}

# ---- 1. alert rules ----
if need_or_skip promtool "promtool check rules"; then
  promtool check rules configs/prometheus/alerts.yml
fi

# ---- 2. deb ----
work=$(mktemp -d /tmp/finesse-relay-pkg.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${installed:-}" ] && dpkg -s finesse-relay >/dev/null 2>&1; then dpkg --purge finesse-relay >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
NFPM=$(scripts/tools.sh nfpm)
build_pkg() { # version, packager, target
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$1" -o "$work/finesse-relay-$1" ./server
  VERSION=$1 ARCH=amd64 BINARY="$work/finesse-relay-$1" "$NFPM" pkg -f packaging/nfpm.yaml -p "$2" -t "$3" >"$work/nfpm.log" 2>&1 ||
    { cat "$work/nfpm.log"; fail "nfpm pkg -p $2"; }
  [ -s "$3" ] || fail "nfpm produced no $3"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # url, expected body substring, timeout s
  local end=$((SECONDS + $3)) body
  while [ $SECONDS -lt $end ]; do
    if body=$(curl -fsS --max-time 2 "$1" 2>/dev/null) && [[ "$body" == *"$2"* ]]; then return 0; fi
    sleep 0.2
  done
  fail "$1 did not answer \"$2\" within $3 s"
}
run_relay() { # version: start the installed binary as the service would, check it, stop it
  local log="$work/relay-$1.log"
  (cd /var/lib/finesse-relay && exec setpriv --reuid finesse-relay --regid finesse-relay --init-groups \
    /usr/bin/finesse-relay serve --config /etc/finesse-relay/relay.env) >"$log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_http "http://127.0.0.1:$relay_port/testbackend" "system is working fine" 20 || { cat "$log"; exit 1; }
  wait_http "http://127.0.0.1:$relay_port/readyz" "ready" 5
  [ "$(ps -o user= -p "$pid" | tr -d ' ')" = finesse-relay ] || fail "the relay does not run as finesse-relay"
  kill -TERM "$pid"
  local code=0; wait "$pid" || code=$?
  [ $code -eq 0 ] || { cat "$log"; fail "relay $1 exited $code after SIGTERM, want 0"; }
  grep -q '"shutting down"' "$log" || fail "no graceful shutdown in the log of relay $1"
  echo "  installed relay $1 served /testbackend and /readyz as finesse-relay and stopped gracefully"
}

if [ "$(id -u)" != 0 ]; then
  [ -n "${CI:-}" ] && fail "the .deb install test needs root"
  echo "package-test: not root, skipping the .deb install test"
elif need_or_skip dpkg "the .deb install test"; then
  dpkg -s finesse-relay >/dev/null 2>&1 && fail "a finesse-relay package is already installed here; remove it first (dpkg --purge finesse-relay)"
  s=$SECONDS
  build_pkg 0.0.1-test.1 deb "$work/v1.deb"
  build_pkg 0.0.2-test.1 deb "$work/v2.deb"
  echo "  built two .deb in $((SECONDS - s)) s"

  DEBIAN_FRONTEND=noninteractive dpkg -i "$work/v1.deb" </dev/null >"$work/dpkg-install.log" 2>&1 || { cat "$work/dpkg-install.log"; fail "dpkg -i"; }
  installed=1
  [ "$(/usr/bin/finesse-relay version)" = "finesse-relay 0.0.1-test.1" ] || fail "installed version: $(/usr/bin/finesse-relay version)"
  getent passwd finesse-relay >/dev/null || fail "no finesse-relay user"
  [ "$(stat -c '%U:%G %a' /var/lib/finesse-relay)" = "finesse-relay:finesse-relay 750" ] || fail "/var/lib/finesse-relay: $(stat -c '%U:%G %a' /var/lib/finesse-relay)"
  [ "$(stat -c '%U:%G %a' /etc/finesse-relay/relay.env)" = "root:finesse-relay 640" ] || fail "relay.env: $(stat -c '%U:%G %a' /etc/finesse-relay/relay.env)"
  cmp -s configs/relay.env.example /etc/finesse-relay/relay.env || fail "relay.env is not relay.env.example"
  grep -q '^/etc/finesse-relay/relay.env$' /var/lib/dpkg/info/finesse-relay.conffiles || fail "relay.env is not a conffile"
  pgrep -u finesse-relay >/dev/null && fail "the install started something with an unedited config"
  grep -q 'edit /etc/finesse-relay/relay.env' "$work/dpkg-install.log" || fail "the install does not tell the operator to edit relay.env"
  if need_or_skip systemd-analyze "verify of the installed unit"; then
    out=$(systemd-analyze verify --man=no /usr/lib/systemd/system/finesse-relay.service 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    echo "  systemd-analyze verify: installed unit clean"
  fi

  # The simulator: the installed binary's demo (Finesse A/B + IdS on loopback).
  demo_port=$(free_port)
  /usr/bin/finesse-relay demo --listen "127.0.0.1:$demo_port" --agents 2 --robots=false --log-level warn >"$work/demo.out" 2>"$work/demo.err" &
  pids+=($!)
  for _ in $(seq 100); do grep -q 'Finesse side A' "$work/demo.out" && break; sleep 0.1; done
  side_a=$(sed -n 's/.*Finesse side A \([0-9.]*\):\([0-9]*\),.*/\2/p' "$work/demo.out")
  [ -n "$side_a" ] || { cat "$work/demo.out" "$work/demo.err"; fail "the simulator did not start"; }

  # The operator edits relay.env: the simulated side A, a free port.
  relay_port=$(free_port)
  cat >/etc/finesse-relay/relay.env <<CONF
# edited by scripts/package-test.sh
LISTEN_HOST=127.0.0.1
server.port=$relay_port
FINESSE_A_HOST=127.0.0.1
FINESSE_A_HTTPS_PORT=$side_a
FINESSE_A_XMPP_TRANSPORT=websocket
FINESSE_A_XMPP_PORT=$side_a
# the simulator's certificate is self-signed (lab only)
INSECURE_SKIP_VERIFY=true
STORE=file:/var/lib/finesse-relay/finesse-relay.db
LOG_FORMAT=json
CONF
  edited=$(sha256sum </etc/finesse-relay/relay.env)
  run_relay 0.0.1-test.1

  DEBIAN_FRONTEND=noninteractive dpkg -i "$work/v2.deb" </dev/null >"$work/dpkg-upgrade.log" 2>&1 || { cat "$work/dpkg-upgrade.log"; fail "dpkg -i (upgrade)"; }
  [ "$(/usr/bin/finesse-relay version)" = "finesse-relay 0.0.2-test.1" ] || fail "upgraded version: $(/usr/bin/finesse-relay version)"
  [ "$(sha256sum </etc/finesse-relay/relay.env)" = "$edited" ] || fail "the upgrade changed the edited relay.env"
  echo "  upgrade 0.0.1 -> 0.0.2 kept the edited relay.env"
  run_relay 0.0.2-test.1

  dpkg --purge finesse-relay >"$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log"; fail "dpkg --purge"; }
  installed=""
  for p in /usr/bin/finesse-relay /etc/finesse-relay /var/lib/finesse-relay /usr/lib/systemd/system/finesse-relay.service; do
    [ ! -e "$p" ] || fail "$p is left after purge"
  done
  getent passwd finesse-relay >/dev/null && fail "the finesse-relay user is left after purge"
  echo "  purge removed the binary, unit, config, state and user"
fi

# ---- 3. rpm (built, not installed) ----
s=$SECONDS
build_pkg 0.0.2-test.1 rpm "$work/finesse-relay.rpm"
echo "  built the .rpm ($(stat -c %s "$work/finesse-relay.rpm") bytes) in $((SECONDS - s)) s"
if command -v rpm >/dev/null; then
  rpm -qpl "$work/finesse-relay.rpm" | grep -qx /usr/bin/finesse-relay || fail "the .rpm lacks /usr/bin/finesse-relay"
fi
echo "package-test: ok in $((SECONDS - t0)) s"

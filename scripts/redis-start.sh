#!/usr/bin/env bash
# Starts a private, throwaway redis-server for the tests and prints its URL
# (redis://127.0.0.1:PORT/0) on stdout, for FINESSE_REDIS_URL:
#
#   export FINESSE_REDIS_URL=$(scripts/redis-start.sh)
#
# REDIS_DIR (default /tmp/finesse-relay-redis) holds its pidfile and log;
# REDIS_PORT defaults to 16379. No persistence (--save '' --appendonly no),
# loopback only, daemonized. Installs Debian's redis-server when missing
# (with a policy-rc.d so the package does not start the system service).
# scripts/redis-stop.sh stops it.
set -euo pipefail
REDIS_DIR="${REDIS_DIR:-/tmp/finesse-relay-redis}"
REDIS_PORT="${REDIS_PORT:-16379}"

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >&2
  [ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

mkdir -p "$REDIS_DIR"
chmod 700 "$REDIS_DIR"
if [ -f "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then
  echo "redis-server already running (pid $(cat "$REDIS_DIR/redis.pid")): run scripts/redis-stop.sh first" >&2
  exit 1
fi
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
  --dir "$REDIS_DIR" --save '' --appendonly no \
  --maxmemory-policy noeviction \
  --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log"

for _ in $(seq 1 50); do
  if redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    echo "redis://127.0.0.1:$REDIS_PORT/0"
    exit 0
  fi
  sleep 0.1
done
echo "redis-server did not answer on 127.0.0.1:$REDIS_PORT within 5 s; log:" >&2
tail -20 "$REDIS_DIR/redis.log" >&2 || true
exit 1

#!/usr/bin/env bash
# Stops the redis-server scripts/redis-start.sh started (by its pidfile in
# REDIS_DIR, default /tmp/finesse-relay-redis). Nothing running is fine.
set -uo pipefail
REDIS_DIR="${REDIS_DIR:-/tmp/finesse-relay-redis}"
pidfile="$REDIS_DIR/redis.pid"
[ -f "$pidfile" ] || exit 0
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
  kill -TERM "$pid"
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
fi
rm -f "$pidfile"

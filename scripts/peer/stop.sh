#!/usr/bin/env bash
# Stop what scripts/peer/start.sh started (by the PIDs it recorded) and remove
# the run dir. KEEP=1 keeps the run dir (logs) for inspection.
set -u
PEER_DIR="${PEER_DIR:-/tmp/finesse-relay-peer}"
[ -d "$PEER_DIR" ] || { echo "[finesse-peer] nothing in $PEER_DIR" >&2; exit 0; }
[ -f "$PEER_DIR/.finesse-peer" ] || { echo "[finesse-peer] $PEER_DIR is not a peer run dir" >&2; exit 1; }
for name in prosody dovecot fakeids; do
  f="$PEER_DIR/$name.pid"
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "[finesse-peer] stopped $name (pid $pid)" >&2
  fi
  rm -f "$f"
done
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$PEER_DIR"; fi
exit 0

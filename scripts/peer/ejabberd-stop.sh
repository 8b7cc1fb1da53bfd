#!/usr/bin/env bash
# Stop what scripts/peer/ejabberd-start.sh started (by the PIDs it recorded)
# and remove the run dir. KEEP=1 keeps the run dir (logs) for inspection.
set -u
DIR="${EJABBERD_DIR:-/tmp/finesse-relay-ejabberd}"
[ -d "$DIR" ] || { echo "[finesse-ejabberd] nothing in $DIR" >&2; exit 0; }
[ -f "$DIR/.finesse-peer" ] || { echo "[finesse-ejabberd] $DIR is not a peer run dir" >&2; exit 1; }
for name in ejabberd fakeids; do
  f="$DIR/$name.pid"
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    # ejabberd.pid is runuser (as root) or erl itself; runuser passes the
    # signal on to erl, which stops on SIGTERM.
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { pkill -9 -P "$pid" 2>/dev/null; kill -9 "$pid"; }
    echo "[finesse-ejabberd] stopped $name (pid $pid)" >&2
  fi
  rm -f "$f"
done
if [ "${KEEP:-0}" != 1 ]; then rm -rf "$DIR"; fi
exit 0

#!/usr/bin/env bash
# Start the second test peer: a loopback-only ejabberd (Debian's package)
# configured like a strict Finesse Notification Service (nodes created by the
# admin only, subscriptions only for one's own JID, last item replayed on
# subscribe and on presence), with its own fake IdS. Not the system service:
# everything lives in $EJABBERD_DIR, runs as the unprivileged 'ejabberd'
# user when started as root (else as the caller), and is stopped by
# scripts/peer/ejabberd-stop.sh (by PID). No Erlang distribution (no epmd,
# no cookie): the node is stand-alone.
#
# Installs ejabberd and openssl with apt when missing (the package's own
# daemon is kept from starting).
#
# Environment (all optional):
#   EJABBERD_DIR    run dir (default /tmp/finesse-relay-ejabberd); the env file is $EJABBERD_DIR/env
#   FINESSE_DOMAIN  XMPP domain (default finesse.local); pubsub is pubsub.$FINESSE_DOMAIN
#   EJABBERD_C2S_PORT 25222 | EJABBERD_C2S_TLS_PORT 25223 | EJABBERD_HTTP_PORT 27071
#   EJABBERD_HTTPS_PORT 27443 | EJABBERD_IDS_PORT 28080
#   EJABBERD_IDS_URL token introspection URL; if unset, scripts/peer/fakeids is
#                   built and started on 127.0.0.1:$EJABBERD_IDS_PORT
#   TOKENS, USERS, ADMIN_PASS  as for scripts/peer/start.sh
#   EJABBERD_LOGLEVEL  ejabberd log level (default warning)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TMPL="$ROOT/configs/peer/ejabberd"
DIR="${EJABBERD_DIR:-/tmp/finesse-relay-ejabberd}"
FINESSE_DOMAIN="${FINESSE_DOMAIN:-finesse.local}"
C2S_PORT="${EJABBERD_C2S_PORT:-25222}"; C2S_TLS_PORT="${EJABBERD_C2S_TLS_PORT:-25223}"
HTTP_PORT="${EJABBERD_HTTP_PORT:-27071}"; HTTPS_PORT="${EJABBERD_HTTPS_PORT:-27443}"
IDS_PORT="${EJABBERD_IDS_PORT:-28080}"; IDS_URL="${EJABBERD_IDS_URL:-}"
TOKENS="${TOKENS:-tok-1001:1001 tok-1002:1002}"
USERS="${USERS:-1001:pass1001 1002:pass1002 1003:pass1003}"
ADMIN_PASS="${ADMIN_PASS:-adminpass}"
LOGLEVEL="${EJABBERD_LOGLEVEL:-warning}"
t0=$(date +%s%N)
ms() { echo $(( ($(date +%s%N) - t0) / 1000000 )); }

log() { echo "[finesse-ejabberd] $*" >&2; }

# ---- 1. refuse to double-start ----
for name in ejabberd fakeids; do
  f="$DIR/$name.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    log "already running in $DIR ($name pid $(cat "$f")); run scripts/peer/ejabberd-stop.sh first"; exit 1
  fi
done
if [ -e "$DIR" ] && [ ! -f "$DIR/.finesse-peer" ]; then
  log "$DIR exists and is not a peer run dir; refusing to delete it"; exit 1
fi
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
busy=()
for p in "$C2S_PORT" "$C2S_TLS_PORT" "$HTTP_PORT" "$HTTPS_PORT"; do port_busy "$p" && busy+=("$p"); done
[ -z "$IDS_URL" ] && port_busy "$IDS_PORT" && busy+=("$IDS_PORT")
if [ ${#busy[@]} -gt 0 ]; then
  log "port(s) ${busy[*]} already in use on 127.0.0.1; choose others with EJABBERD_C2S_PORT, EJABBERD_C2S_TLS_PORT, EJABBERD_HTTP_PORT, EJABBERD_HTTPS_PORT, EJABBERD_IDS_PORT"; exit 1
fi

# ---- 2. packages (Debian) ----
need=()
[ -x /usr/sbin/ejabberdctl ] || need+=(ejabberd)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Keep the package's postinst from starting the system ejabberd.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi
ERL_LIBS_DIR=$(dirname "$(dirname "$(dpkg -L ejabberd | grep -m1 '/ebin/ejabberd.app$')")")
ERL_LIBS_DIR=$(dirname "$ERL_LIBS_DIR")

# ---- 3. run dir, owned by the user ejabberd runs as ----
rm -rf "$DIR"
mkdir -p "$DIR"/{bin,certs,db,logs}
touch "$DIR/.finesse-peer"
RUN="$(cd "$DIR" && pwd)"
AS=()
if [ "$(id -u)" = 0 ]; then
  id ejabberd >/dev/null 2>&1 || { log "no 'ejabberd' user (the Debian package creates it)"; exit 1; }
  AS=(runuser -u ejabberd --)
fi

# ---- 4. self-signed certificate (the "Finesse Tomcat certificate") ----
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$FINESSE_DOMAIN" \
  -addext "subjectAltName=DNS:$FINESSE_DOMAIN,DNS:pubsub.$FINESSE_DOMAIN,DNS:localhost,IP:127.0.0.1" \
  -keyout "$RUN/certs/$FINESSE_DOMAIN.key" -out "$RUN/certs/$FINESSE_DOMAIN.crt" >/dev/null 2>&1

wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# ---- 5. binaries: the external auth program and (unless EJABBERD_IDS_URL) the fake IdS ----
command -v go >/dev/null || { log "the Go toolchain is needed to build scripts/peer/extauth"; exit 1; }
# One go build for both (they compile in parallel).
( cd "$ROOT" && go build -o "$RUN/bin/" ./scripts/peer/extauth ./scripts/peer/fakeids )
t_built=$(ms)
IDS_BASE_URL=""
if [ -z "$IDS_URL" ]; then
  : > "$RUN/tokens.txt"
  for t in $TOKENS; do echo "${t%%:*} ${t#*:}" >> "$RUN/tokens.txt"; done
  chmod 600 "$RUN/tokens.txt"
  IDS_BASE_URL="http://127.0.0.1:$IDS_PORT"
  IDS_URL="$IDS_BASE_URL/introspect"
  nohup "$RUN/bin/fakeids" -listen "127.0.0.1:$IDS_PORT" -tokens "$RUN/tokens.txt" > "$RUN/fakeids.log" 2>&1 &
  echo $! > "$RUN/fakeids.pid"
fi

# ---- 6. config and users ----
sed -e "s#@RUN@#$RUN#g" -e "s#@DOMAIN@#$FINESSE_DOMAIN#g" -e "s#@C2S_PORT@#$C2S_PORT#g" \
    -e "s#@C2S_TLS_PORT@#$C2S_TLS_PORT#g" -e "s#@HTTP_PORT@#$HTTP_PORT#g" -e "s#@HTTPS_PORT@#$HTTPS_PORT#g" \
    -e "s#@IDS_URL@#$IDS_URL#g" -e "s#@LOGLEVEL@#$LOGLEVEL#g" "$TMPL/ejabberd.yml.tmpl" > "$RUN/ejabberd.yml"
{ echo "admin $ADMIN_PASS"; for u in $USERS; do echo "${u%%:*} ${u#*:}"; done; } > "$RUN/passwd"
chmod 600 "$RUN/passwd" "$RUN/certs/$FINESSE_DOMAIN.key"
if [ ${#AS[@]} -gt 0 ]; then chown -R ejabberd: "$RUN"; chmod 755 "$RUN"; chown root: "$RUN/.finesse-peer"; fi
chmod 644 "$RUN/certs/$FINESSE_DOMAIN.crt"

# ---- 7. ejabberd in the foreground (no distribution: no epmd, no cookie) ----
# shellcheck disable=SC2016
nohup "${AS[@]}" env -i PATH=/usr/bin:/bin HOME="$RUN" \
  ERL_LIBS="$ERL_LIBS_DIR" EJABBERD_CONFIG_PATH="$RUN/ejabberd.yml" EJABBERD_LOG_PATH="$RUN/logs/ejabberd.log" \
  ERL_CRASH_DUMP="$RUN/logs/erl_crash.dump" ERL_CRASH_DUMP_BYTES=0 CONTRIB_MODULES_PATH="$RUN/contrib" \
  erl -noinput -noshell +K true -mnesia dir "\"$RUN/db\"" -s ejabberd > "$RUN/ejabberd.stdout" 2>&1 &
echo $! > "$RUN/ejabberd.pid"
t_erl=$(ms)
[ -n "$IDS_BASE_URL" ] && { wait_port "$IDS_PORT" || { log "fake IdS did not start:"; cat "$RUN/fakeids.log" >&2; exit 1; }; }
for p in "$C2S_PORT" "$C2S_TLS_PORT" "$HTTP_PORT" "$HTTPS_PORT"; do
  wait_port "$p" || { log "port $p not listening; see $RUN/logs"; tail -30 "$RUN/logs/"*.log "$RUN/ejabberd.stdout" >&2 || true; exit 1; }
done

cat > "$RUN/env" <<ENV
export FINESSE_SERVER=ejabberd
export PEER_DIR=$RUN
export FINESSE_DOMAIN=$FINESSE_DOMAIN
export FINESSE_PUBSUB=pubsub.$FINESSE_DOMAIN
export XMPP_ADDR=127.0.0.1:$C2S_PORT
export XMPP_TLS_ADDR=127.0.0.1:$C2S_TLS_PORT
export BOSH_URL=http://127.0.0.1:$HTTP_PORT/http-bind
export BOSH_TLS_URL=https://127.0.0.1:$HTTPS_PORT/http-bind
export WS_URL=ws://127.0.0.1:$HTTP_PORT/ws
export WSS_URL=wss://127.0.0.1:$HTTPS_PORT/ws
export IDS_URL=$IDS_URL
export IDS_BASE_URL=$IDS_BASE_URL
export FINESSE_ADMIN_JID=admin@$FINESSE_DOMAIN
export FINESSE_ADMIN_PASS=$ADMIN_PASS
export FINESSE_CA_CERT=$RUN/certs/$FINESSE_DOMAIN.crt
export PEER_USERS="$USERS"
export PEER_TOKENS="$TOKENS"
export PEER_STRICT_PUBSUB=1
ENV
cat "$RUN/env"
log "up in $(ms) ms (binaries built at $t_built ms, ejabberd started at $t_erl ms): ejabberd pid $(cat "$RUN/ejabberd.pid")$( [ -f "$RUN/fakeids.pid" ] && echo ", fakeids pid $(cat "$RUN/fakeids.pid")")"
log "env file: $RUN/env (FINESSE_EJABBERD_ENV=$RUN/env go test ./xmpp/)"

#!/usr/bin/env bash
# Start the test peer: a loopback-only Prosody (+ Dovecot as its password
# checker, + a fake IdS) that stands in for the Cisco Finesse Notification
# Service. Not the system services: everything lives in $PEER_DIR and is
# stopped by scripts/peer/stop.sh (by PID).
#
# Installs prosody, prosody-modules, dovecot-core and openssl with apt when
# missing (the packages' own daemons are kept from starting).
#
# Environment (all optional):
#   PEER_DIR        run dir (default /tmp/finesse-relay-peer); the env file is $PEER_DIR/env
#   FINESSE_DOMAIN  XMPP domain (default finesse.local); pubsub is pubsub.$FINESSE_DOMAIN
#   C2S_PORT 15222 | C2S_TLS_PORT 15223 | HTTP_PORT 17071 | HTTPS_PORT 17443 | IDS_PORT 18080
#   IDS_URL         token introspection URL; if unset, scripts/peer/fakeids is
#                   built and started on 127.0.0.1:$IDS_PORT
#   TOKENS          "token:loginId ..." accepted by the fake IdS (default "tok-1001:1001 tok-1002:1002")
#   USERS           "loginId:password ..." static (non-SSO) logins (default "1001:pass1001 1002:pass1002 1003:pass1003")
#   ADMIN_PASS      password of admin@$FINESSE_DOMAIN, the publisher and server admin (default adminpass)
#   AUTH_FAILURE_DELAY  Dovecot delay on a failed login (default 0)
#   LOGLEVEL        Prosody log level (default info)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TMPL="$ROOT/configs/peer"
PEER_DIR="${PEER_DIR:-/tmp/finesse-relay-peer}"
FINESSE_DOMAIN="${FINESSE_DOMAIN:-finesse.local}"
C2S_PORT="${C2S_PORT:-15222}"; C2S_TLS_PORT="${C2S_TLS_PORT:-15223}"
HTTP_PORT="${HTTP_PORT:-17071}"; HTTPS_PORT="${HTTPS_PORT:-17443}"; IDS_PORT="${IDS_PORT:-18080}"
TOKENS="${TOKENS:-tok-1001:1001 tok-1002:1002}"
USERS="${USERS:-1001:pass1001 1002:pass1002 1003:pass1003}"
ADMIN_PASS="${ADMIN_PASS:-adminpass}"
AUTH_FAILURE_DELAY="${AUTH_FAILURE_DELAY:-0}"
LOGLEVEL="${LOGLEVEL:-info}"

log() { echo "[finesse-peer] $*" >&2; }

# ---- 1. refuse to double-start ----
for name in prosody dovecot fakeids; do
  f="$PEER_DIR/$name.pid"
  if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
    log "already running in $PEER_DIR ($name pid $(cat "$f")); run scripts/peer/stop.sh first"; exit 1
  fi
done
if [ -e "$PEER_DIR" ] && [ ! -f "$PEER_DIR/.finesse-peer" ]; then
  log "$PEER_DIR exists and is not a peer run dir; refusing to delete it"; exit 1
fi

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
busy=()
for p in "$C2S_PORT" "$C2S_TLS_PORT" "$HTTP_PORT" "$HTTPS_PORT"; do port_busy "$p" && busy+=("$p"); done
[ -z "${IDS_URL:-}" ] && port_busy "$IDS_PORT" && busy+=("$IDS_PORT")
if [ ${#busy[@]} -gt 0 ]; then
  log "port(s) ${busy[*]} already in use on 127.0.0.1 (another peer?); choose others with C2S_PORT, C2S_TLS_PORT, HTTP_PORT, HTTPS_PORT, IDS_PORT"; exit 1
fi

# ---- 2. packages (Debian) ----
need=()
command -v prosody >/dev/null || need+=(prosody)
[ -f /usr/lib/prosody/modules/mod_auth_dovecot/auth_dovecot/mod_auth_dovecot.lua ] || need+=(prosody-modules)
command -v dovecot >/dev/null || need+=(dovecot-core)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  # Keep the packages' postinst from starting the system prosody/dovecot
  # (they would listen on every interface).
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  [ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
fi

# ---- 3. run dir ----
rm -rf "$PEER_DIR"
mkdir -p "$PEER_DIR"/{bin,certs,data,dovecot/base,dovecot/state}
touch "$PEER_DIR/.finesse-peer"
chmod 755 "$PEER_DIR" "$PEER_DIR/dovecot"   # dovecot's auth process runs as user 'dovecot'
RUN="$(cd "$PEER_DIR" && pwd)"

# ---- 4. self-signed certificate (the "Finesse Tomcat certificate") ----
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$FINESSE_DOMAIN" \
  -addext "subjectAltName=DNS:$FINESSE_DOMAIN,DNS:pubsub.$FINESSE_DOMAIN,DNS:localhost,IP:127.0.0.1" \
  -keyout "$RUN/certs/$FINESSE_DOMAIN.key" -out "$RUN/certs/$FINESSE_DOMAIN.crt" >/dev/null 2>&1
chmod 644 "$RUN/certs/"*

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# ---- 5. fake IdS (unless IDS_URL given) ----
IDS_BASE_URL=""
if [ -z "${IDS_URL:-}" ]; then
  command -v go >/dev/null || { log "the Go toolchain is needed to build scripts/peer/fakeids"; exit 1; }
  ( cd "$ROOT" && go build -o "$RUN/bin/fakeids" ./scripts/peer/fakeids )
  : > "$RUN/tokens.txt"
  for t in $TOKENS; do echo "${t%%:*} ${t#*:}" >> "$RUN/tokens.txt"; done
  chmod 600 "$RUN/tokens.txt"
  IDS_BASE_URL="http://127.0.0.1:$IDS_PORT"
  IDS_URL="$IDS_BASE_URL/introspect"
  nohup "$RUN/bin/fakeids" -listen "127.0.0.1:$IDS_PORT" -tokens "$RUN/tokens.txt" \
    > "$RUN/fakeids.log" 2>&1 &
  echo $! > "$RUN/fakeids.pid"
  wait_port "$IDS_PORT" || { log "fake IdS did not start:"; cat "$RUN/fakeids.log" >&2; exit 1; }
fi

# ---- 6. render configs ----
render() {
  sed -e "s#@RUN@#$RUN#g" -e "s#@DOMAIN@#$FINESSE_DOMAIN#g" -e "s#@C2S_PORT@#$C2S_PORT#g" \
      -e "s#@C2S_TLS_PORT@#$C2S_TLS_PORT#g" -e "s#@HTTP_PORT@#$HTTP_PORT#g" -e "s#@HTTPS_PORT@#$HTTPS_PORT#g" \
      -e "s#@IDS_URL@#$IDS_URL#g" -e "s#@LOGLEVEL@#$LOGLEVEL#g" \
      -e "s#@AUTH_FAILURE_DELAY@#$AUTH_FAILURE_DELAY#g" -e "s#@DOVECOT_DEBUG@#no#g" "$1" > "$2"
}
render "$TMPL/prosody.cfg.lua.tmpl" "$RUN/prosody.cfg.lua"
render "$TMPL/dovecot.conf.tmpl" "$RUN/dovecot/dovecot.conf"
render "$TMPL/dovecot-oauth2.conf.ext.tmpl" "$RUN/dovecot/oauth2.conf.ext"
{ echo "admin:{PLAIN}$ADMIN_PASS"; for u in $USERS; do echo "${u%%:*}:{PLAIN}${u#*:}"; done; } > "$RUN/dovecot/users.passwd"
chmod 644 "$RUN/dovecot/"*.conf* "$RUN/dovecot/users.passwd"

# ---- 7. dovecot (auth only) and prosody, foreground processes in the background ----
nohup dovecot -F -c "$RUN/dovecot/dovecot.conf" > "$RUN/dovecot.stdout" 2>&1 &
echo $! > "$RUN/dovecot.pid"
for _ in $(seq 50); do [ -S "$RUN/dovecot/auth-client" ] && break; sleep 0.1; done
[ -S "$RUN/dovecot/auth-client" ] || { log "dovecot did not start:"; cat "$RUN/dovecot.stdout" "$RUN/dovecot.log" >&2 || true; exit 1; }

nohup prosody --config "$RUN/prosody.cfg.lua" -F > "$RUN/prosody.stdout" 2>&1 &
echo $! > "$RUN/prosody.pid"
for p in "$C2S_PORT" "$C2S_TLS_PORT" "$HTTP_PORT" "$HTTPS_PORT"; do
  wait_port "$p" || { log "port $p not listening; see $RUN/prosody.log"; tail -20 "$RUN/prosody.log" >&2 || true; exit 1; }
done

cat > "$RUN/env" <<EOF
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
EOF
cat "$RUN/env"
log "up: prosody pid $(cat "$RUN/prosody.pid"), dovecot pid $(cat "$RUN/dovecot.pid")$( [ -f "$RUN/fakeids.pid" ] && echo ", fakeids pid $(cat "$RUN/fakeids.pid")")"
log "env file: $RUN/env (FINESSE_PEER_ENV=$RUN/env go test ./xmpp/)"

#!/bin/sh
# finesse-relay postinstall (deb: configure [old-version]; rpm: $1 = 1 install, 2 upgrade).
#
# The rule: an install never starts the service unless /etc/finesse-relay/relay.env
# already names a Finesse server (an active FINESSE_A_HOST= line: the operator
# edited it, or config management put it there first). An upgrade restarts the
# service only if it was running. Without systemd (containers) nothing is started.
set -e
conf=/etc/finesse-relay/relay.env

upgrade=""
case "$1" in
  configure) [ -n "$2" ] && upgrade=1 ;;
  2) upgrade=1 ;;
esac

install -d -m 0750 -o finesse-relay -g finesse-relay /var/lib/finesse-relay
# The config holds secrets (client_secret, keystore password): root writes it,
# the service's group reads it.
chgrp finesse-relay /etc/finesse-relay
chmod 0750 /etc/finesse-relay
if [ -f "$conf" ] && [ -z "$upgrade" ]; then
  chgrp finesse-relay "$conf"
  chmod 0640 "$conf"
fi

configured() {
  grep -Eiq '^[[:space:]]*(export[[:space:]]+)?FINESSE_A_HOST[[:space:]]*=[[:space:]]*[^[:space:]#]' "$conf" 2>/dev/null
}

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  if [ -n "$upgrade" ]; then
    systemctl try-restart finesse-relay.service >/dev/null 2>&1 || true
  elif configured; then
    systemctl enable --now finesse-relay.service >/dev/null 2>&1 || true
  else
    echo "finesse-relay: edit $conf (IDS_URL, client_id, FINESSE_A_HOST, ...), then: systemctl enable --now finesse-relay"
  fi
elif [ -z "$upgrade" ] && ! configured; then
  echo "finesse-relay: edit $conf, then start: /usr/bin/finesse-relay serve --config $conf"
fi
exit 0

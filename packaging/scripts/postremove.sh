#!/bin/sh
# finesse-relay postremove (deb: remove|purge|upgrade|...; rpm: $1 = 0 erase, 1 upgrade).
# purge (deb) also deletes the state (file store, sealing key) and the user;
# remove and rpm erase keep them, as packages do for data.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  rm -rf /var/lib/finesse-relay
  rm -f /etc/finesse-relay/relay.env.dpkg-old /etc/finesse-relay/relay.env.dpkg-dist
  rmdir /etc/finesse-relay 2>/dev/null || true
  if getent passwd finesse-relay >/dev/null 2>&1; then
    userdel finesse-relay >/dev/null 2>&1 || true
  fi
  if getent group finesse-relay >/dev/null 2>&1; then
    groupdel finesse-relay >/dev/null 2>&1 || true
  fi
fi
exit 0

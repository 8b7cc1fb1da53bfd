#!/bin/sh
# finesse-relay preinstall (deb: install|upgrade; rpm: $1 = 1 install, 2 upgrade).
# Creates the system user and group the service runs as.
set -e
if ! getent group finesse-relay >/dev/null 2>&1; then
  groupadd --system finesse-relay
fi
if ! getent passwd finesse-relay >/dev/null 2>&1; then
  nologin=/usr/sbin/nologin
  [ -x "$nologin" ] || nologin=/sbin/nologin
  useradd --system --gid finesse-relay --home-dir /var/lib/finesse-relay --no-create-home \
    --shell "$nologin" --comment "Finesse Relay" finesse-relay
fi
exit 0

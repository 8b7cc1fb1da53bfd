#!/bin/sh
# finesse-relay preremove (deb: remove|upgrade|deconfigure|failed-upgrade; rpm: $1 = 0 erase, 1 upgrade).
# Stops and disables the service when the package goes away (not on upgrade).
set -e
case "$1" in
  remove|0)
    if [ -d /run/systemd/system ]; then
      systemctl disable --now finesse-relay.service >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0

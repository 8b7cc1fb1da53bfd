#!/usr/bin/env bash
# Debian packages the packaging and monitoring checks need (called from
# scripts/test.sh's package step): promtool (package prometheus, whose daemon
# must not start), systemd-analyze (systemd), dpkg (always there on Debian).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
[ ${#need[@]} -eq 0 ] && { echo "packaging tools present"; exit 0; }
echo "installing: ${need[*]}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then # keep postinst scripts from starting daemons
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d; made_policy=1
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ -n "$made_policy" ] && $SUDO rm -f /usr/sbin/policy-rc.d
exit 0

#!/usr/bin/env bash
# Removes the gateway service and program. Data (/var/lib/gateway) and configuration
# (/etc/gateway) stay unless --purge is given. DESTDIR works as for install.sh.
set -euo pipefail
purge=0
[ "${1:-}" = "--purge" ] && purge=1
root="${DESTDIR:-}"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
  systemctl disable --now gateway.service 2>/dev/null || true
fi
rm -f "$root/etc/systemd/system/gateway.service"
rm -rf "$root/opt/gateway"
if ((purge)); then
  rm -rf "$root/var/lib/gateway" "$root/etc/gateway"
  [ -z "$root" ] && { userdel gateway 2>/dev/null || true; }
  echo "uninstall.sh: removed program, data and configuration"
else
  echo "uninstall.sh: removed program; kept $root/var/lib/gateway and $root/etc/gateway (use --purge to remove them)"
fi
[ -z "$root" ] && [ -d /run/systemd/system ] && systemctl daemon-reload
exit 0

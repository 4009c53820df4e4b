#!/usr/bin/env bash
# Installs the gateway as a systemd service:
#   /opt/gateway/                    self-contained build (no .NET needed on the board)
#   /etc/gateway/gateway.json        default configuration, never overwritten
#   /var/lib/gateway/                data
#   /etc/systemd/system/gateway.service, enabled and started
#
#   systemd/install.sh [--rid linux-arm64|linux-x64] [--from DIR]
#     --rid   runtime to publish for (default: this machine's)
#     --from  install an already published build instead of publishing one
# DESTDIR=/some/root systemd/install.sh lays the files out under that root only: no user,
# no systemctl.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
rid=""
from=""
while (($#)); do
  case "$1" in
    --rid) rid="$2"; shift 2 ;;
    --from) from="$2"; shift 2 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$rid" ]; then
  case "$(uname -m)" in
    aarch64|arm64) rid=linux-arm64 ;;
    x86_64) rid=linux-x64 ;;
    *) echo "install.sh: unsupported machine $(uname -m); pass --rid" >&2; exit 2 ;;
  esac
fi

root="${DESTDIR:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ -z "$from" ]; then
  # The build is native AOT: the .NET SDK compiles it, clang links it against zlib.
  if ! command -v clang >/dev/null 2>&1 || [ ! -e /usr/include/zlib.h ]; then
    echo "install.sh: publishing needs clang and zlib1g-dev (apt-get install clang zlib1g-dev), or pass --from a published build" >&2
    exit 1
  fi
  echo "install.sh: publishing for $rid"
  dotnet publish "$repo/firmware-host/Gateway.Host" -c Release -p:PublishProfile="$rid" -o "$work/publish" --nologo -v q
  from="$work/publish"
fi
[ -x "$from/gateway" ] || { echo "install.sh: $from/gateway is not an executable build" >&2; exit 1; }

install -d -m 0755 "$root/opt/gateway"
rm -rf "${root:?}/opt/gateway/"* 2>/dev/null || rm -rf "$root/opt/gateway/"*
cp -a "$from/." "$root/opt/gateway/"
install -d -m 0750 "$root/etc/gateway"
if [ -e "$root/etc/gateway/gateway.json" ]; then
  echo "install.sh: keeping existing $root/etc/gateway/gateway.json"
else
  install -m 0640 "$here/gateway.json" "$root/etc/gateway/gateway.json"
fi
install -d -m 0750 "$root/var/lib/gateway"
install -D -m 0644 "$here/gateway.service" "$root/etc/systemd/system/gateway.service"

if [ -n "$root" ]; then
  echo "install.sh: laid out under $root"
  exit 0
fi

getent group gpio >/dev/null || groupadd --system gpio
getent passwd gateway >/dev/null || useradd --system --user-group --home-dir /var/lib/gateway --shell /usr/sbin/nologin gateway
chown -R gateway:gateway /var/lib/gateway
chgrp -R gateway /etc/gateway
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now gateway.service
  echo "install.sh: gateway installed and started (systemctl status gateway)"
else
  echo "install.sh: installed; systemd is not running here, start it with: systemctl enable --now gateway"
fi

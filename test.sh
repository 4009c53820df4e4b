#!/usr/bin/env bash
# Runs every test: unit, integration (whole host on loopback) and interop (mosquitto clients,
# paho). Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 || missing+=(python3-paho-mqtt)
/usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || missing+=(python3-prometheus-client)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
# The arm64 build is smoke-tested under user-mode emulation.
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
[ -e /lib/ld-linux-aarch64.so.1 ] || missing+=(libc6:arm64)
[ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || missing+=(libstdc++6:arm64 libgcc-s1:arm64)
# The publish profiles build native AOT, which links with clang; on x64 the arm64 one
# cross-links with the arm64 binutils, gcc runtime and libraries.
command -v clang >/dev/null 2>&1 || missing+=(clang)
[ -e /usr/include/zlib.h ] || missing+=(zlib1g-dev)
if [ "$(uname -m)" = x86_64 ]; then
  command -v aarch64-linux-gnu-ld.bfd >/dev/null 2>&1 || missing+=(binutils-aarch64-linux-gnu)
  [ -d /usr/lib/gcc-cross/aarch64-linux-gnu ] || missing+=(gcc-aarch64-linux-gnu)
  [ -e /usr/lib/aarch64-linux-gnu/crt1.o ] || missing+=(libc6-dev:arm64)
  [ -e /usr/lib/aarch64-linux-gnu/libz.so ] || missing+=(zlib1g-dev:arm64)
fi
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [[ " ${missing[*]} " == *":arm64"* ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore Gateway.sln --locked-mode
dotnet build Gateway.sln -c Release --no-restore
dotnet format Gateway.sln --verify-no-changes --no-restore
log=$(mktemp)
shipped=$(mktemp -d)
trap 'rm -rf "$log" "$shipped"' EXIT
# The tests that start the gateway as a process run the build that ships (native AOT, this
# machine's profile); the rest run in-process on the JIT build.
case "$(uname -m)" in aarch64|arm64) rid=linux-arm64 ;; *) rid=linux-x64 ;; esac
dotnet publish firmware-host/Gateway.Host -p:PublishProfile="$rid" -o "$shipped" --nologo -v q
export GATEWAY_EXECUTABLE="$shipped/gateway"
set +e
dotnet test Gateway.sln -c Release --no-build --logger "console;verbosity=minimal" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line over all test projects.
awk '/^(Passed|Failed)!/ {
       for (i = 1; i <= NF; i++) {
         if ($i == "Failed:")  failed += $(i+1)
         if ($i == "Passed:")  passed += $(i+1)
         if ($i == "Skipped:") skipped += $(i+1)
       }
     }
     END { printf "%d passed, %d failed, %d skipped\n", passed, failed, skipped }' "$log" | tr -d ','  | sed 's/ passed / passed, /; s/ failed / failed, /'
exit "$status"

#!/usr/bin/env bash
# Runs every test: unit, integration (whole host on loopback) and interop (mosquitto clients,
# paho). Installs the Debian packages the tests need when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_sub >/dev/null 2>&1 || missing+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt' >/dev/null 2>&1 || missing+=(python3-paho-mqtt)
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore Gateway.sln --locked-mode
dotnet build Gateway.sln -c Release --no-restore
dotnet format Gateway.sln --verify-no-changes --no-restore
log=$(mktemp)
trap 'rm -f "$log"' EXIT
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

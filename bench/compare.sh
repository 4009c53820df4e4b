#!/usr/bin/env bash
# Side-by-side: the gateway and mosquitto on this machine, same load tool, same load.
#   bench/compare.sh [messages-per-publisher] [publishers] [subscribers] [payload-bytes]
# Prints one JSON line per broker and QoS, then the gateway's start-up time and RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-250000}
publishers=${2:-4}
subscribers=${3:-1}
size=${4:-64}

command -v mosquitto >/dev/null || { echo "compare.sh: needs mosquitto (apt-get install mosquitto)" >&2; exit 1; }
dotnet build bench/Gateway.LoadTool -c Release --nologo -v q >/dev/null
dotnet build firmware-host/Gateway.Host -c Release --nologo -v q >/dev/null
load=bench/Gateway.LoadTool/bin/Release/net10.0/mqtt-load
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(free_port); gport=$(free_port); hport=$(free_port)

# mosquitto 2 with its defaults, except that its per-client queue may hold the whole run
# (the default 1000 would drop messages and flatter its rate).
cat > "$work/mosquitto.conf" <<CONF
listener $mport 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 10000000
CONF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
mpid=$!

start=$(date +%s%N)
dotnet firmware-host/Gateway.Host/bin/Release/net10.0/gateway.dll --Mqtt:Port="$gport" --Mqtt:BindAddress=127.0.0.1 \
  --Http:Port="$hport" --Http:BindAddress=127.0.0.1 --Storage:DataDirectory="$work/data" >"$work/gateway.log" 2>&1 &
gpid=$!
trap 'kill $mpid $gpid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$gport") 2>/dev/null; do sleep 0.01; done
ready=$(date +%s%N)
until (exec 3<>"/dev/tcp/127.0.0.1/$mport") 2>/dev/null; do sleep 0.01; done
sleep 2
idle_rss=$(ps -o rss= -p "$gpid")

for qos in 0 1; do
  for broker in mosquitto gateway; do
    port=$mport; [ "$broker" = gateway ] && port=$gport
    "$load" --port "$port" --qos "$qos" --publishers "$publishers" --subscribers "$subscribers" \
      --size "$size" --messages "$messages" --label "$broker"
  done
done
loaded_rss=$(ps -o rss= -p "$gpid")
printf '{"gateway_startup_ms":%d,"gateway_idle_rss_mb":%.1f,"gateway_rss_after_load_mb":%.1f}\n' \
  $(( (ready - start) / 1000000 )) "$(echo "$idle_rss / 1024" | bc -l)" "$(echo "$loaded_rss / 1024" | bc -l)"

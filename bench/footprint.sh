#!/usr/bin/env bash
# Publish variants of the linux-x64 build and what each costs: size on disk, start-up time to
# accepting MQTT connections (median of 5) and idle RSS. Then the small-board envelope on one
# CPU (taskset), idle and under the benchmark load (4 publishers -> 1 subscriber, QoS 1, 64 B):
# the shipped build (native AOT) and the ReadyToRun build for comparison. Every variant has the
# build's 256 MB GC heap cap and workstation non-concurrent GC.
#   bench/footprint.sh [messages-per-publisher]
set -euo pipefail
cd "$(dirname "$0")/.."
messages=${1:-250000}
work=$(mktemp -d)
# The variants' restores rewrite the lock files (the JIT variants drop the AOT compiler's
# packages): put the lock files back as they were when done.
tar cf "$work/locks.tar" $(find . -name packages.lock.json -not -path '*/bin/*' -not -path '*/obj/*')
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; tar xf "$work/locks.tar"; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dotnet build bench/Gateway.LoadTool -c Release --nologo -v q >/dev/null
load=bench/Gateway.LoadTool/bin/Release/net10.0/mqtt-load

publish() { # name, extra properties...
  local name=$1; shift
  dotnet publish firmware-host/Gateway.Host -c Release -r linux-x64 --self-contained -o "$work/$name" --nologo -v q \
    -p:TreatWarningsAsErrors=false "$@" >/dev/null 2>&1 || { echo "{\"variant\":\"$name\",\"error\":\"publish failed\"}"; return 1; }
}

start() { # dir, [prefix...]; sets $ms (start-up time) and $pid (the running gateway)
  local dir=$1; shift
  port=$(free_port)
  local t0; t0=$(date +%s%N)
  (cd "$work" && exec "$@" "$dir/gateway" --Mqtt:Port="$port" --Mqtt:BindAddress=127.0.0.1 --Http:Port=0 \
     --Http:BindAddress=127.0.0.1 --Storage:DataDirectory="$work/data-$RANDOM" >"$work/log" 2>&1) &
  pid=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.005; done
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

measure() { # name
  local name=$1 times=() rss
  for _ in 1 2 3 4 5; do
    start "$work/$name" env
    times+=("$ms")
    sleep 1; rss=$(ps -o rss= -p "$pid"); kill "$pid"; wait "$pid" 2>/dev/null || true
  done
  local median; median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
  printf '{"variant":"%s","size_mb":%s,"startup_ms_median":%s,"idle_rss_mb":%.1f}\n' \
    "$name" "$(du -sm "$work/$name" | cut -f1)" "$median" "$(echo "$rss / 1024" | bc -l)"
}

publish native-aot && measure native-aot # the shipped build (PublishAot in the project); linking needs clang, zlib1g-dev
publish self-contained -p:PublishAot=false && measure self-contained
publish readytorun -p:PublishAot=false -p:PublishReadyToRun=true && measure readytorun
publish single-file-readytorun -p:PublishAot=false -p:PublishReadyToRun=true -p:PublishSingleFile=true && measure single-file-readytorun
publish trimmed -p:PublishAot=false -p:PublishTrimmed=true -p:PublishReadyToRun=true && measure trimmed || true

envelope() { # name
  start "$work/$1" taskset -c 0
  sleep 2
  idle=$(ps -o rss= -p "$pid")
  "$load" --port "$port" --qos 1 --messages "$messages" --label "$1-1cpu-256mb"
  loaded=$(ps -o rss= -p "$pid")
  printf '{"envelope":"%s, 1 CPU, 256 MB heap cap","idle_rss_mb":%.1f,"rss_after_load_mb":%.1f}\n' "$1" "$(echo "$idle / 1024" | bc -l)" "$(echo "$loaded / 1024" | bc -l)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
envelope native-aot
envelope readytorun

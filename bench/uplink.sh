#!/usr/bin/env bash
# Store and forward, measured: sensors → gateway uplink → mosquitto ("the cloud") against
# sensors → mosquitto bridge → mosquitto, same machine, same load tool, QoS 1, 256-byte payloads.
#
#   bench/uplink.sh [ceiling] [throughput] [outage] [inflight] [backlog]      (default: all five)
#
# ceiling     no forwarder: the load tool publishes straight to the cloud, which delivers to the
#             same subscriber. 4 and 50 publishers × 64 in flight as in throughput ("direct"), and
#             one publisher × 512 in flight through the link ("direct-1x512-via-link": one
#             connection with the uplink's window on the drain's path). What the cloud and the
#             load tool reach on this machine with nothing in between: every forwarded message
#             costs the cloud and the subscriber the same work on the same cores, so forward
#             and drain rates here stay near it (a forwarder that feeds the cloud more cheaply
#             than the load tool's connections gets a little above it; the cloud's CPU per
#             message, printed on each line, says by how much it can).
# throughput  4 and 50 publishers, rate delivered at the cloud subscriber, and the cloud's CPU time
#             per message delivered (ceiling prints it too). Each broker is started
#             fresh and first forwards 100,000 messages (printed with the label suffix "-cold":
#             for the gateway these include the runtime's recompiling of its hot code), then the
#             200,000 that are the steady-state measurement.
# outage      2,000 msg/s; the link goes down for 60 s (bench/link.py refuses and resets
#             connections); then: how long after the link accepts connections again the first
#             backlog message reaches the cloud, the rate the backlog drains at, and the cloud's
#             CPU time per message and share of a core while it drains. The bridge
#             speaks MQTT 3.1.1 (its default), the gateway MQTT 5, then 3.1.1, then MQTT 5 to
#             the cloud that grants 512 in flight (see below).
# inflight    bridge and gateway with MQTT 5, through a link that reads the packets: the Receive
#             Maximum the cloud granted and the most publishes each had unconfirmed.
# backlog     gateway only: 1,000,000 messages buffered with the link down; RSS idle and with the
#             backlog on disk, a restart with it (start-up time, RSS), then the drain of all of it
#             once the link returns.
# cpu         (only when named) PAIRS (default 8) interleaved runs of the bridge and the gateway,
#             both MQTT 3.1.1, 4 and 50 publishers, each broker started fresh: 100,000 messages of
#             warm-up, then 200,000 measured; adds to the load tool's line the CPU time (user +
#             system, from /proc) per forwarded message of the broker under test and of the cloud,
#             and how busy the whole machine was. Ends with the gateway/bridge rate ratio per pair.
# The gateway is the shipped build (the linux-x64 publish profile: self-contained native AOT,
# with the runtime settings built in: 256 MB heap limit, workstation non-concurrent GC). Its uplink
# speaks MQTT 5 (its default) unless a part says otherwise; throughput also runs it with MQTT
# 3.1.1, the protocol the bridge speaks by default, and the bridge with MQTT 5. mosquitto
# grants an MQTT 5 client a Receive Maximum of 20 (its max_inflight_messages): the uplink keeps
# to it, mosquitto 2.0.11's bridge does not (the inflight part counts both). With 3.1.1 the
# uplink's own window (Uplinks:*:MaxInFlight, 512) applies. throughput also runs the gateway
# with MQTT 5 against a second cloud that grants 512 ("gateway-mqtt5-grant512"), which is like
# for like with the bridge's MQTT 5.
# Every line of output is JSON; lost/duplicates/out_of_order come from the subscriber's count.
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(ceiling throughput outage inflight backlog)

command -v mosquitto >/dev/null || { echo "uplink.sh: needs mosquitto (apt-get install mosquitto)" >&2; exit 1; }
dotnet build bench/Gateway.LoadTool -c Release --nologo -v q >/dev/null
load=bench/Gateway.LoadTool/bin/Release/net10.0/mqtt-load
work=$(mktemp -d)
dotnet publish firmware-host/Gateway.Host -p:PublishProfile=linux-x64 -o "$work/gateway" --nologo -v q >/dev/null
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # $1 = port, $2 = pid of the process that is to listen on it, $3 = its log
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    kill -0 "$2" 2>/dev/null || { echo "uplink.sh: the process logging to $3 exited before listening on port $1; its log ends:" >&2; tail -20 "$3" >&2; exit 1; }
    sleep 0.05
  done
}
rss_mb() { echo "scale=1; $(ps -o rss= -p "$1") / 1024" | bc; }
peak_rss_mb() { echo "scale=1; $(awk '/^VmHWM/ {print $2}' "/proc/$1/status") / 1024" | bc; }

# The cloud: mosquitto with defaults, except that its queue to our subscriber may hold a whole run.
cport=$(free_port)
cat > "$work/cloud.conf" <<CONF
listener $cport 127.0.0.1
allow_anonymous true
max_queued_messages 10000000
CONF
mosquitto -c "$work/cloud.conf" >"$work/cloud.log" 2>&1 & cloud_pid=$!; pids+=($cloud_pid)
wait_port "$cport" $! "$work/cloud.log"

# A second cloud that grants MQTT 5 clients 512 in flight (the uplink's own window) instead of
# 20: the gateway's MQTT 5 rate when the grant does not bind it, like for like with the bridge.
gport=$(free_port)
{ sed "s/^listener .*/listener $gport 127.0.0.1/" "$work/cloud.conf"; echo "max_inflight_messages 512"; } >"$work/cloud512.conf"
mosquitto -c "$work/cloud512.conf" >"$work/cloud512.log" 2>&1 & cloud512_pid=$!; pids+=($cloud512_pid)
wait_port "$gport" $! "$work/cloud512.log"

# The uplink's internet connection, which the outage cuts; one to each cloud.
lport=$(free_port)
python3 bench/link.py "$lport" "$cport" >"$work/link.log" & link=$!; pids+=($link)
wait_port "$lport" $link "$work/link.log"
glport=$(free_port)
python3 bench/link.py "$glport" "$gport" >"$work/glink.log" & glink=$!; pids+=($glink)
wait_port "$glport" $glink "$work/glink.log"

start_gateway() { # $1 = port the uplink connects to; $2 = keep = reuse the data directory; $3 = protocol; sets bridge_pid, port
  port=$(free_port); local hport; hport=$(free_port); [ "${2:-}" = keep ] || rm -rf "$work/data"
  "$work/gateway/gateway" --Uplinks:cloud:ProtocolVersion="${3:-5}" \
    --Mqtt:Port="$port" --Mqtt:BindAddress=127.0.0.1 --Http:Port="$hport" --Http:BindAddress=127.0.0.1 \
    --Storage:DataDirectory="$work/data" \
    --Uplinks:cloud:Endpoints:0="mqtt://127.0.0.1:$1" --Uplinks:cloud:ClientId=bench-gateway \
    --Uplinks:cloud:Forward:0:Filter='load/#' --Uplinks:cloud:Forward:0:Prefix=site1/ --Uplinks:cloud:Forward:0:Qos=1 \
    >"$work/gateway.log" 2>&1 &
  bridge_pid=$!; pids+=($bridge_pid); wait_port "$port" "$bridge_pid" "$work/gateway.log"
}

start_bridge() { # $1 = port the bridge connects to; $2 = protocol (mqttv311, mqttv50); sets bridge_pid, port
  port=$(free_port); rm -rf "$work/bridge"; mkdir -p "$work/bridge"
  # mosquitto's bridge with its defaults: persistence on (snapshot every 30 min), queue sized
  # like the cloud's so it does not drop during the outage (its default of 1,000 would).
  cat > "$work/bridge.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $work/bridge/
max_queued_messages 10000000
connection cloud
address 127.0.0.1:$1
clientid bench-bridge
bridge_protocol_version ${2:-mqttv311}
topic load/# out 1 "" site1/
CONF
  mosquitto -c "$work/bridge.conf" >"$work/bridge.log" 2>&1 &
  bridge_pid=$!; pids+=($bridge_pid); wait_port "$port" "$bridge_pid" "$work/bridge.log"
  sleep 1 # the bridge connects to the cloud on its own schedule
}

stop_broker() { kill "$bridge_pid"; wait "$bridge_pid" 2>/dev/null || true; }

run_load() { # label publishers messages-per-publisher [extra load-tool args]
  "$load" --port "$port" --sub-port "$cport" --sub-prefix site1/ --qos 1 --size 256 \
    --label "$1" --publishers "$2" --messages "$3" "${@:4}"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in 1/100 s

measure() { # $1 = pid of the cloud the run goes to, then run_load's arguments: its line, plus the
  # cloud's CPU time per message delivered. mosquitto is one thread: a million µs a second over
  # that is the most it could deliver with a core to itself.
  local c0 c1 line; c0=$(cpu_ticks "$1"); line=$(run_load "${@:2}" 2>/dev/null); c1=$(cpu_ticks "$1")
  python3 - "$line" $((c1 - c0)) <<'PY'
import json, sys
r = json.loads(sys.argv[1]); us = int(sys.argv[2]) * 1e4 / max(r["received"], 1)
r.update(cloud_cpu_us_per_msg=round(us, 1), cloud_max_rate_one_core=round(1e6 / us) if us else None)
print(json.dumps(r))
PY
}

for part in "${parts[@]}"; do
  case $part in
  ceiling)
    port=$cport
    for publishers in 4 50; do
      measure "$cloud_pid" direct-cold "$publishers" $((100000 / publishers)) --idle-seconds 10 --sub-prefix ''
      measure "$cloud_pid" direct "$publishers" $((200000 / publishers)) --idle-seconds 10 --sub-prefix ''
    done
    port=$lport
    measure "$cloud_pid" direct-1x512-via-link-cold 1 100000 --inflight 512 --idle-seconds 10 --sub-prefix ''
    measure "$cloud_pid" direct-1x512-via-link 1 200000 --inflight 512 --idle-seconds 10 --sub-prefix ''
    ;;
  throughput)
    for publishers in 4 50; do
      for broker in mosquitto-bridge gateway gateway-mqtt311 mosquitto-bridge-mqtt5 gateway-mqtt5-grant512; do
        sport=$cport; spid=$cloud_pid
        case $broker in
          gateway) start_gateway "$cport" ;;
          gateway-mqtt311) start_gateway "$cport" "" 3.1.1 ;;
          gateway-mqtt5-grant512) start_gateway "$gport"; sport=$gport; spid=$cloud512_pid ;;
          mosquitto-bridge-mqtt5) start_bridge "$cport" mqttv50 ;;
          *) start_bridge "$cport" ;;
        esac
        measure "$spid" "$broker-cold" "$publishers" $((100000 / publishers)) --idle-seconds 10 --sub-port "$sport"
        measure "$spid" "$broker" "$publishers" $((200000 / publishers)) --idle-seconds 10 --sub-port "$sport"
        stop_broker
      done
    done
    ;;
  cpu)
    for ((pair = 1; pair <= ${PAIRS:-8}; pair++)); do
      for publishers in 4 50; do
        for broker in mosquitto-bridge gateway-mqtt311; do
          if [ $broker = gateway-mqtt311 ]; then start_gateway "$cport" "" 3.1.1; else start_bridge "$cport"; fi
          run_load "$broker-warm-up" "$publishers" $((100000 / publishers)) --idle-seconds 10 >/dev/null 2>&1
          b0=$(cpu_ticks "$bridge_pid"); c0=$(cpu_ticks "$cloud_pid"); s0=$(head -1 /proc/stat)
          run_load "$broker" "$publishers" $((200000 / publishers)) --idle-seconds 10 2>/dev/null >"$work/cpu.json"
          b1=$(cpu_ticks "$bridge_pid"); c1=$(cpu_ticks "$cloud_pid"); s1=$(head -1 /proc/stat)
          python3 - "$work/cpu.json" "$pair" $((b1 - b0)) $((c1 - c0)) "$s0" "$s1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = 200000
before, after = ([int(x) for x in line.split()[1:]] for line in sys.argv[5:7])
spent = [b - a for a, b in zip(before, after)]; idle = spent[3] + spent[4]
r.update(pair=int(sys.argv[2]), cpu_us_per_msg=round(int(sys.argv[3]) * 1e4 / n, 1),
         cloud_cpu_us_per_msg=round(int(sys.argv[4]) * 1e4 / n, 1), machine_busy_pct=round(100 * (sum(spent) - idle) / sum(spent)))
print(json.dumps(r))
PY
          stop_broker
        done
      done
    done | tee "$work/pairs.jsonl"
    python3 - "$work/pairs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1])]
for publishers in sorted({r["publishers"] for r in runs}):
    rate = {(r["pair"], r["broker"]): r["delivery_rate"] for r in runs if r["publishers"] == publishers}
    ratios = [rate[p, "gateway-mqtt311"] / rate[p, "mosquitto-bridge"] for p, label in rate if label == "mosquitto-bridge"]
    print(json.dumps({"publishers": publishers, "gateway_to_bridge": [round(x, 2) for x in ratios],
                      "mean": round(statistics.mean(ratios), 3), "median": round(statistics.median(ratios), 3)}))
PY
    ;;
  outage)
    for broker in mosquitto-bridge gateway gateway-mqtt311 gateway-mqtt5-grant512; do
      olink=$link; olog=$work/link.log; sport=$cport; spid=$cloud_pid
      case $broker in
        gateway) start_gateway "$lport" ;;
        gateway-mqtt311) start_gateway "$lport" "" 3.1.1 ;;
        gateway-mqtt5-grant512) start_gateway "$glport"; olink=$glink; olog=$work/glink.log; sport=$gport; spid=$cloud512_pid ;;
        *) start_bridge "$lport" ;;
      esac
      # The cloud's CPU time, sampled every 0.1 s: what it spent per message while the backlog drained.
      (while :; do echo "$(date +%s%3N) $(cpu_ticks "$spid")"; sleep 0.1; done) >"$work/cloudcpu.log" & sampler=$!; pids+=($sampler)
      # 2,000 msg/s for 100 s from 4 publishers; the link is down from 20 s to 80 s. The
      # subscriber waits up to 120 s for a message, so up to 60 s after the link returns: the
      # bridge's reconnect back-off reaches its cap (restart_timeout, 30 s) during the outage.
      run_load "$broker" 4 50000 --rate 2000 --idle-seconds 120 --sub-port "$sport" >"$work/outage.json" 2>/dev/null &
      loadpid=$!
      sleep 20; kill -USR1 "$olink"; sleep 60; kill -USR2 "$olink"
      wait "$loadpid"
      kill "$sampler"; wait "$sampler" 2>/dev/null || true
      up=$(grep '^up ' "$olog" | tail -1 | cut -d' ' -f2)
      python3 - "$work/outage.json" "$up" "$work/cloudcpu.log" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); up = int(sys.argv[2])
r["first_backlog_after_link_up_ms"] = r["gap_end_unix_ms"] - up
samples = [tuple(map(int, line.split())) for line in open(sys.argv[3]) if len(line.split()) == 2]
def ticks_at(ms):  # linear between the samples around ms
    for (t0, c0), (t1, c1) in zip(samples, samples[1:]):
        if t0 <= ms <= t1:
            return c0 + (c1 - c0) * (ms - t0) / max(t1 - t0, 1)
    return None
start, end = r["gap_end_unix_ms"], r["gap_end_unix_ms"] + r["drain_ms"]
a, b = ticks_at(start), ticks_at(end)
if a is not None and b is not None and r["backlog"] > 0 and r["drain_ms"] > 0:
    r["cloud_cpu_us_per_msg_drain"] = round((b - a) * 1e4 / r["backlog"], 1)
    r["cloud_cores_busy_drain"] = round((b - a) * 10 / r["drain_ms"], 2)
print(json.dumps(r))
PY
      stop_broker
    done
    ;;
  inflight)
    # How many publishes each keeps unconfirmed against what the cloud grants. A second link
    # that reads the MQTT packets going through it (bench/link.py --count-inflight) prints,
    # per connection, the Receive Maximum in the cloud's CONNACK and the most in flight.
    iport=$(free_port)
    python3 bench/link.py "$iport" "$cport" --count-inflight >"$work/inflight.log" & pids+=($!)
    wait_port "$iport" $! "$work/inflight.log"
    for broker in mosquitto-bridge-mqtt5 gateway; do
      if [ "$broker" = gateway ]; then start_gateway "$iport"; else start_bridge "$iport" mqttv50; fi
      run_load "$broker" 4 25000 >"$work/inflight.json" 2>/dev/null
      lines=$(wc -l <"$work/inflight.log")
      stop_broker
      until [ "$(wc -l <"$work/inflight.log")" -gt "$lines" ]; do sleep 0.1; done # the link reports the closed connection
      python3 - "$work/inflight.json" "$(tail -1 "$work/inflight.log")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r.update(json.loads(sys.argv[2]))
print(json.dumps({k: r[k] for k in ("broker", "delivery_rate", "lost", "receive_maximum_granted", "max_in_flight", "publishes") if k in r}))
PY
    done
    ;;
  backlog)
    start_gateway "$lport"
    kill -USR1 "$link"
    sleep 3; idle=$(rss_mb "$bridge_pid")
    run_load gateway-1M-backlog 50 20000 --inflight 64 --idle-seconds 120 >"$work/backlog.json" 2>"$work/backlog.err" &
    loadpid=$!
    until grep -q '^published' "$work/backlog.err" 2>/dev/null; do sleep 1; done
    sleep 5; buffered=$(rss_mb "$bridge_pid"); peak=$(peak_rss_mb "$bridge_pid") # peak: while storing
    # Restart with the backlog on disk: start-up time and memory.
    stop_broker
    t0=$(date +%s%N); start_gateway "$lport" keep; t1=$(date +%s%N)
    sleep 5; restarted=$(rss_mb "$bridge_pid")
    kill -USR2 "$link"
    wait "$loadpid"
    sleep 5; drained=$(rss_mb "$bridge_pid")
    python3 - "$work/backlog.json" "$idle" "$buffered" "$drained" "$(du -sm "$work/data" | cut -f1)" "$(head -1 "$work/backlog.err")" \
      "$restarted" $(( (t1 - t0) / 1000000 )) "$peak" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r.update(idle_rss_mb=float(sys.argv[2]), rss_with_backlog_mb=float(sys.argv[3]),
         rss_after_drain_mb=float(sys.argv[4]), data_dir_mb=int(sys.argv[5]), publish=sys.argv[6],
         rss_after_restart_with_backlog_mb=float(sys.argv[7]), restart_to_listening_ms=int(sys.argv[8]),
         peak_rss_while_storing_mb=float(sys.argv[9]))
print(json.dumps(r))
PY
    stop_broker
    ;;
  *) echo "uplink.sh: unknown part '$part' (ceiling, throughput, outage, inflight, backlog)" >&2; exit 2 ;;
  esac
done

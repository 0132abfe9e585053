#!/usr/bin/env bash
# The bus on NATS JetStream, whole system, with its baseline measured in the same run
# (BENCHMARKS.md, "The bus on NATS JetStream"):
#   1. the single-node gRPC path: a fresh `ledger-server`, `server-load ingest` with one gRPC
#      `Append` stream per gateway (GATEWAYS streams, IN_FLIGHT batches in flight each);
#   2. a bus deployment on loopback: three nats-servers (one JetStream cluster, R3,
#      `sync_interval: always`), a signer and a standby (the log key), one read replica;
#      `bus-load ingest`: GATEWAYS gateway identities publishing the same traffic through
#      `ledger_bus::publish::Publisher`, IN_FLIGHT batches in flight each, until the replica
#      serves a checkpoint of everything;
#   3. `bus-load catch-up`: a fresh replica on an empty directory, timed to the stream's end;
#   4. `bus-load failover`: load offered at FAILOVER_RATE entries/s, the lease holder SIGKILLed,
#      time to the next term's first checkpoint; once per lease time in TTLS (a fresh
#      deployment for each, since the lease time is the bucket's);
#   5. sharding: on fresh three-server clusters, SHARD_ENTRIES entries into one log (one
#      signer, GATEWAYS gateways), then the same traffic split over two logs (`main` and
#      `billing`, a signer each, GATEWAYS/2 gateways each, both loads at once); entries/s to
#      covering checkpoints and the CPU per entry of every ledger and NATS process.
# Every process shares this machine's cores; the load average is printed before each step.
# Environment: ENTRIES (default 1000000), GATEWAYS (4), IN_FLIGHT (16), FAILOVER_RATE (20000),
# TTLS ("6000 1500", in ms), SHARD_ENTRIES (400000), STEPS ("1 2 3 4 5": the steps to run), PORT_OFFSET (300: NATS on 4522-4524, servers on 8010-8031),
# LOAD_TMPDIR (/tmp), BIN_DIR (run the binaries found there instead of building).
# Builds with the release profile.
source "$(dirname "$0")/../scripts/lib.sh"

ENTRIES=${ENTRIES:-1000000}
GATEWAYS=${GATEWAYS:-4}
IN_FLIGHT=${IN_FLIGHT:-16}
FAILOVER_RATE=${FAILOVER_RATE:-20000}
TTLS=${TTLS:-6000 1500}
OFF=${PORT_OFFSET:-300}
SHARD_ENTRIES=${SHARD_ENTRIES:-400000}
STEPS=${STEPS:-1 2 3 4 5}
step() { [[ " $STEPS " == *" $1 "* ]]; }

ensure_nats_server
if [ -n "${BIN_DIR:-}" ]; then
    BIN=$BIN_DIR
else
    cargo build --release -q -p ledger-server -p a2a-ledger-benches --bins
    BIN=$CARGO_TARGET_DIR/release
fi

WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/bus-load.XXXXXX")
PIDS=()
# Stops a background process; its exit status (143 when killed) must not trip `set -e`.
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
stop_all() {
    local p
    for p in "${PIDS[@]}"; do stop "$p"; done
    PIDS=()
}
cleanup() {
    stop_all
    rm -rf "$WORK"
}
trap cleanup EXIT

loadavg() { echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2; }
wait_http() { # url
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "bus.sh: nothing answered $1 within 30 s; see $WORK" >&2
    return 1
}
port() { echo $(($1 + OFF)); }
NATS="nats://127.0.0.1:$(port 4222),nats://127.0.0.1:$(port 4223),nats://127.0.0.1:$(port 4224)"

if step 1; then
echo "== 1. single node: ledger-server, $GATEWAYS gRPC streams x $IN_FLIGHT batches in flight" >&2
loadavg
"$BIN/ledger-server" --data "$WORK/single" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --checkpoint-interval-ms 100 \
    >"$WORK/single.out" 2>&1 &
SINGLE=$!
PIDS+=("$SINGLE")
for _ in $(seq 100); do grep -q '^listening grpc' "$WORK/single.out" 2>/dev/null && break; sleep 0.1; done
GRPC=$(awk '/^listening grpc/ {print $3}' "$WORK/single.out")
INGEST=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['gateway']['token'])" "$WORK/single/tokens.json")
"$BIN/server-load" ingest --protocol grpc --url "$GRPC" --token "$INGEST" --watch "$GRPC" --prefix single \
    --entries "$ENTRIES" --connections "$GATEWAYS" --window "$IN_FLIGHT" --cpu-of "$SINGLE" >"$WORK/single.json"
stop_all
fi

# Three nats-servers in one JetStream cluster, their data in $1 (its pids in NAMES).
NAMES=()
nats_cluster() {
    local d=$1 n i routes=""
    mkdir -p "$d"
    for i in 1 2 3; do routes+="nats-route://127.0.0.1:$(port $((6221 + i))), "; done
    NAMES=()
    for n in 1 2 3; do
        cat >"$d/n$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:$(port $((4221 + n)))
http: 127.0.0.1:$(port $((8221 + n)))
max_payload: 8MB
jetstream { store_dir: "$d/n$n", sync_interval: always }
cluster { name: bus-bench, listen: 127.0.0.1:$(port $((6221 + n))), routes: [${routes%, }] }
EOF
        "$A2A_LEDGER_NATS_SERVER" -c "$d/n$n.conf" >"$d/n$n.log" 2>&1 &
        PIDS+=($!)
        NAMES+=("n$n=$!")
    done
    for n in 1 2 3; do wait_http "http://127.0.0.1:$(port $((8221 + n)))/healthz?js-enabled-only=true"; done
}

# A deployment with lease time $1 ms in $WORK/$1: three nats-servers, the log provisioned, its
# key, a signer (started first, so it takes the first term), a standby and one replica.
deployment() {
    local ttl=$1 d=$WORK/$1 s http=0
    nats_cluster "$d"
    "$BIN/ledger-server" bus init --bus "$NATS" --log main --replicas 3 --lease-ttl-ms "$ttl" >&2
    "$BIN/ledger-server" init --data "$d/key" --origin "bench.a2a-ledger.local/main" >"$d/main.json"
    for s in signer standby replica; do
        http=$((http == 0 ? $(port 7710) : http + 10))
        mkdir -p "$d/$s"
        [ "$s" = replica ] || cp "$d/key/log.key" "$d/$s/"
        "$BIN/ledger-server" --data "$d/$s" --http "127.0.0.1:$http" --grpc "127.0.0.1:$((http + 1))" \
            --checkpoint-interval-ms 100 --bus "$NATS" --bus-log main --bus-name "$s" --log-descriptor "$d/main.json" \
            >"$d/$s.log" 2>&1 &
        PIDS+=($!)
        NAMES+=("$s=$!")
        wait_http "http://127.0.0.1:$http/healthz"
        # The signer's first term before the standby starts.
        [ "$s" = signer ] && sleep 1
    done
    REPLICA=http://127.0.0.1:$http
}

FIRST=${TTLS%% *}
if step 2 || step 3; then
echo "== 2. bus: 3 nats-servers (R3), signer, standby, replica (lease ${FIRST} ms); $GATEWAYS gateways x $IN_FLIGHT in flight" >&2
deployment "$FIRST"
loadavg
CPU_OF=()
for n in "${NAMES[@]}"; do CPU_OF+=(--cpu-of "$n"); done
"$BIN/bus-load" ingest --bus "$NATS" --replica "$REPLICA" --entries "$ENTRIES" --gateways "$GATEWAYS" \
    --in-flight "$IN_FLIGHT" --prefix ingest "${CPU_OF[@]}" >"$WORK/bus.json"

echo "== 3. catch-up: a fresh replica on an empty directory" >&2
loadavg
"$BIN/bus-load" catch-up --bus "$NATS" -- "$BIN/ledger-server" --data "$WORK/fresh" --http 127.0.0.1:0 \
    --grpc 127.0.0.1:0 --checkpoint-interval-ms 100 --bus "$NATS" --bus-log main --bus-name catch-up \
    --log-descriptor "$WORK/$FIRST/main.json" >"$WORK/catchup.json"
fi

if step 4; then
for ttl in $TTLS; do
    if [ "$ttl" != "$FIRST" ] || [ ! -d "$WORK/$FIRST/signer" ]; then
        stop_all
        deployment "$ttl"
    fi
    echo "== 4. failover, lease $ttl ms, load offered at $FAILOVER_RATE entries/s" >&2
    loadavg
    "$BIN/bus-load" failover --bus "$NATS" --rate "$FAILOVER_RATE" --entries $((FAILOVER_RATE * 40)) \
        --gateways "$GATEWAYS" --in-flight "$IN_FLIGHT" --prefix "failover-$ttl" >"$WORK/failover-$ttl.json"
    FIRST=done
done
fi
stop_all

# CPU seconds used so far by the pids given.
cpu_secs() {
    local p t=0
    for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
    echo "$t $(getconf CLK_TCK)" | awk '{print $1 / $2}'
}

# Sharding: $1 logs on a fresh cluster in $WORK/shards-$1, a signer each (serving its own reads),
# SHARD_ENTRIES entries split evenly over the logs, all loads at once.
sharded() {
    local k=$1 d=$WORK/shards-$1 logs=(main billing) i log http pids=() loads=() before after
    local gateways=$((GATEWAYS / k > 0 ? GATEWAYS / k : 1))
    stop_all
    nats_cluster "$d"
    "$BIN/ledger-server" bus init --bus "$NATS" $(for log in "${logs[@]:0:k}"; do echo --log "$log"; done) \
        --replicas 3 >&2
    for i in $(seq 0 $((k - 1))); do
        log=${logs[$i]}
        http=$(port $((7710 + 10 * i)))
        "$BIN/ledger-server" init --data "$d/key-$log" --origin "bench.a2a-ledger.local/$log" >"$d/$log.json"
        mkdir -p "$d/$log" && cp "$d/key-$log/log.key" "$d/$log/"
        "$BIN/ledger-server" --data "$d/$log" --http "127.0.0.1:$http" --grpc "127.0.0.1:$((http + 1))" \
            --checkpoint-interval-ms 100 --bus "$NATS" --bus-log "$log" --bus-name "$log-signer" \
            --log-descriptor "$d/$log.json" >"$d/$log.log" 2>&1 &
        PIDS+=($!)
        pids+=($!)
        wait_http "http://127.0.0.1:$http/healthz"
    done
    for n in "${NAMES[@]}"; do pids+=("${n#*=}"); done
    echo "== 5. sharding: $k log(s), a signer each, $gateways gateway(s) x $IN_FLIGHT in flight per log" >&2
    loadavg
    before=$(cpu_secs "${pids[@]}")
    for i in $(seq 0 $((k - 1))); do
        log=${logs[$i]}
        "$BIN/bus-load" ingest --bus "$NATS" --log "$log" --replica "http://127.0.0.1:$(port $((7710 + 10 * i)))" \
            --entries $((SHARD_ENTRIES / k)) --gateways "$gateways" --in-flight "$IN_FLIGHT" --prefix "shard-$k-$log" \
            >"$WORK/shards-$k-$log.json" &
        loads+=($!)
    done
    for p in "${loads[@]}"; do wait "$p"; done
    after=$(cpu_secs "${pids[@]}")
    echo "$before $after" | awk '{print $2 - $1}' >"$WORK/shards-$k-cpu"
    stop_all
}
if step 5; then
    sharded 1
    sharded 2
fi

python3 - "$WORK" "$TTLS" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF'
import json, os, sys
w, ttls, load = sys.argv[1], sys.argv[2].split(), sys.argv[3]
def get(name):
    p = f"{w}/{name}.json"
    return json.load(open(p)) if os.path.exists(p) else None
r = {k: get(k) for k in ["single", "bus", "catchup"]}
r.update({f"failover_{t}ms": get(f"failover-{t}") for t in ttls})
s, b, c = r["single"], r["bus"], r["catchup"]
ratio = lambda x, y: round(x / y, 3) if x and y else None
summary = {"cores": os.cpu_count(), "load_average_at_end": load}
if s and b:
    summary.update({
        "single_node_entries_per_s": s["entries_per_s"],
        "bus_entries_per_s": b["entries_per_s"],
        "bus_over_single_node": ratio(b["entries_per_s"], s["entries_per_s"]),
        "bus_acked_entries_per_s": b["acked_entries_per_s"],
        "bus_acked_over_single_node": ratio(b["acked_entries_per_s"], s["entries_per_s"]),
        "ack_p50_p99_ms": {"single": [s["ack_latency_ms"]["p50"], s["ack_latency_ms"]["p99"]],
                           "bus": [b["ack_latency_ms"]["p50"], b["ack_latency_ms"]["p99"]]},
        "ack_to_checkpoint_p50_p99_ms": {"single": [s["ack_to_checkpoint_ms"]["p50"], s["ack_to_checkpoint_ms"]["p99"]],
                                         "bus": [b["ack_to_checkpoint_ms"]["p50"], b["ack_to_checkpoint_ms"]["p99"]]},
        "cpu_us_per_entry": {"single": {"server": s["server_cpu_us_per_entry"], "load_generator": s["client_cpu_us_per_entry"]},
                             "bus": b["cpu_us_per_entry"]},
    })
if s and c:
    summary["catch_up_entries_per_s"] = c["entries_per_s"]
    summary["catch_up_over_single_node_ingest"] = ratio(c["entries_per_s"], s["entries_per_s"])
if all(r[f"failover_{t}ms"] for t in ttls):
    summary["failover_ms"] = {t: r[f"failover_{t}ms"]["kill_to_new_term_checkpoint_ms"] for t in ttls}
# Sharding: entries over the slowest load's time to its covering checkpoint (the loads start
# together), and the CPU of every ledger and NATS process per entry.
shards = {}
for k, logs in [(1, ["main"]), (2, ["main", "billing"])]:
    runs = [get(f"shards-{k}-{l}") for l in logs]
    if not all(runs):
        continue
    r[f"shards_{k}"] = runs
    entries = sum(x["entries"] for x in runs)
    secs = max(x["seconds_to_covering_checkpoint"] for x in runs)
    cpu = float(open(f"{w}/shards-{k}-cpu").read())
    shards[f"{k}_log{'s' if k > 1 else ''}"] = {
        "entries_per_s": round(entries / secs),
        "ledger_and_nats_cpu_us_per_entry": round(cpu * 1e6 / entries, 2),
        "ack_p50_p99_ms": [[x["ack_latency_ms"]["p50"], x["ack_latency_ms"]["p99"]] for x in runs],
    }
if len(shards) == 2:
    shards["two_over_one"] = ratio(shards["2_logs"]["entries_per_s"], shards["1_log"]["entries_per_s"])
    summary["sharding"] = shards
r["summary"] = summary
print(json.dumps(r, indent=2))
EOF

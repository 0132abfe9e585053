#!/usr/bin/env bash
# Whole-system load on ledger-server, with its baselines measured in the same run (BENCHMARKS.md):
#   1. gRPC ingest as fast as acknowledgements allow (and acknowledgement → checkpoint latency),
#   2. HTTP ingest of the same traffic shape,
#   3. gRPC ingest offered at half the rate of (1), for latency at that rate,
#   4. receipts read back over HTTP with the log holding all of the above,
#   5. the same entries into PostgreSQL (installed from Debian's packages if missing),
#   6. the same bytes as raw synced RocksDB WriteBatches of the server's mean entries per sync
#      (one sync covers every commit group written before it: the same number of fsyncs),
#   7. the same gRPC traffic into a sink that acknowledges without a log behind it: the transport.
# Every ingest step reports the load generator's CPU per entry, steps 1 and 7 also that of the
# server they drive; the raw floor reports its own, and that of the log's checks and hashes on one
# thread.
# `summary.cpu_us_per_entry.bound_entries_per_s` is the rate the machine's cores would allow if
# the server spent nothing beyond those floors (BENCHMARKS.md, "Where the CPU goes").
# Environment: ENTRIES (default 1000000), CONNS (64), RECEIPTS (100000), RECEIPT_CONNS (16),
# LOAD_TMPDIR (/tmp), BIN_DIR (run the ledger-server and server-load binaries found there, as
# built, instead of building this checkout's: for comparing two builds in turns on a noisy machine).
# Builds with the release profile; PROFILE=profiling builds and runs the line-table build for perf.
source "$(dirname "$0")/../scripts/lib.sh"

ENTRIES=${ENTRIES:-1000000}
CONNS=${CONNS:-64}
RECEIPTS=${RECEIPTS:-100000}
RECEIPT_CONNS=${RECEIPT_CONNS:-16}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_install postgresql; fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

if [ -n "${BIN_DIR:-}" ]; then
    BIN=$BIN_DIR
else
    cargo build --profile "${PROFILE:-release}" -q -p ledger-server -p a2a-ledger-benches --bins
    BIN=$CARGO_TARGET_DIR/${PROFILE:-release}
fi

WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/server-load.XXXXXX")
SERVER_PID=""
SINK_PID=""
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Stops a background process; its exit status (143 when killed) must not trip `set -e`.
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
    stop "$SERVER_PID"
    stop "$SINK_PID"
    as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:55432 (fsync on, synchronous_commit on)" >&2
mkdir -p "$WORK/pg" "$WORK/pgsock"
if [ "$(id -u)" = 0 ]; then chown postgres "$WORK" "$WORK/pg" "$WORK/pgsock"; fi
as_pg "$PGBIN/initdb" -D "$WORK/pg" -U bench --auth=trust >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/log" -w start \
    -o "-p 55432 -k $WORK/pgsock -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c synchronous_commit=on" >/dev/null
PGCONN="host=127.0.0.1 port=55432 user=bench dbname=postgres"

echo "== ledger-server on $WORK/ledger" >&2
"$BIN/ledger-server" --data "$WORK/ledger" --http 127.0.0.1:0 --grpc 127.0.0.1:0 >"$WORK/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^listening grpc' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
HTTP=$(awk '/^listening http/ {print $3}' "$WORK/server.out")
GRPC=$(awk '/^listening grpc/ {print $3}' "$WORK/server.out")
INGEST=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['gateway']['token'])" "$WORK/ledger/tokens.json")
AUDIT=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['auditor']['token'])" "$WORK/ledger/tokens.json")

load() { "$BIN/server-load" "$@" --entries "$ENTRIES" --connections "$CONNS"; }
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {'d': d}))" "$@"; }

echo "== 1. gRPC ingest, full speed" >&2
load ingest --protocol grpc --url "$GRPC" --token "$INGEST" --watch "$GRPC" --prefix grpc --cpu-of "$SERVER_PID" >"$WORK/grpc.json"
RATE=$(field "$WORK/grpc.json" "int(d['entries_per_s'])")
METRICS=$(curl -s -H "authorization: Bearer $AUDIT" "$HTTP/metrics")
GROUP=$(python3 -c "
import re,sys
m=sys.stdin.read()
e=float(re.search(r'^ledger_ingest_entries_total (\S+)',m,re.M).group(1))
c=float(re.search(r'^ledger_syncs_total (\S+)',m,re.M).group(1))
print(max(1,int(e/max(c,1))))" <<<"$METRICS")

echo "== 2. HTTP ingest, full speed" >&2
load ingest --protocol http --url "$HTTP" --token "$INGEST" --prefix http >"$WORK/http.json"

echo "== 3. gRPC ingest offered at half of $RATE entries/s" >&2
load ingest --protocol grpc --url "$GRPC" --token "$INGEST" --watch "$GRPC" --prefix half --rate $((RATE / 2)) >"$WORK/half.json"

echo "== 4. receipts" >&2
"$BIN/server-load" receipts --url "$HTTP" --token "$AUDIT" --prefix grpc --count "$RECEIPTS" --entries "$ENTRIES" --connections "$RECEIPT_CONNS" >"$WORK/receipts.json"
SIZE=$(curl -s "$HTTP/healthz" | python3 -c "import json,sys; print(json.load(sys.stdin)['tree_size'])")

echo "== 5. PostgreSQL baseline" >&2
load postgres --conn "$PGCONN" --prefix grpc >"$WORK/postgres.json"

echo "== 6. raw RocksDB floor, WriteBatches of $GROUP entries" >&2
load raw --group "$GROUP" --dir "$WORK/raw" --prefix grpc >"$WORK/raw.json"

echo "== 7. transport: gRPC ingest into a sink with no log behind it" >&2
"$BIN/server-load" sink >"$WORK/sink.out" &
SINK_PID=$!
for _ in $(seq 100); do grep -q '^listening grpc' "$WORK/sink.out" 2>/dev/null && break; sleep 0.1; done
load ingest --protocol grpc --url "$(awk '/^listening grpc/ {print $3}' "$WORK/sink.out")" --token none --prefix sink \
    --cpu-of "$SINK_PID" >"$WORK/sink.json"
stop "$SINK_PID"
SINK_PID=""

python3 - "$WORK" "$SIZE" <<'EOF'
import json, os, sys
w, size = sys.argv[1], int(sys.argv[2])
r = {k: json.load(open(f"{w}/{k}.json")) for k in ["grpc", "http", "half", "receipts", "postgres", "raw", "sink"]}
cpu = {
    "server": r["grpc"]["server_cpu_us_per_entry"],
    "load_generator": r["grpc"]["client_cpu_us_per_entry"],
    "transport_sink": r["sink"]["server_cpu_us_per_entry"],
    "prepare": r["raw"]["prepare_us_per_entry"],
    "raw_rocksdb": r["raw"]["cpu_us_per_entry"],
}
floors = cpu["load_generator"] + cpu["transport_sink"] + cpu["prepare"] + cpu["raw_rocksdb"]
cpu["cores"] = os.cpu_count() or 1
cpu["bound_entries_per_s"] = round(cpu["cores"] * 1e6 / floors)
g, raw, pg = r["grpc"]["entries_per_s"], r["raw"]["entries_per_s"], r["postgres"]["entries_per_s"]
r["summary"] = {
    "grpc_entries_per_s": g,
    "http_entries_per_s": r["http"]["entries_per_s"],
    "raw_rocksdb_entries_per_s": raw,
    "grpc_ratio_to_raw": round(g / raw, 3),
    "postgres_entries_per_s": pg,
    "grpc_over_postgres": round(g / pg, 2),
    "half_rate_ack_p99_ms": r["half"]["ack_latency_ms"]["p99"],
    "ack_to_checkpoint_p99_ms": r["grpc"]["ack_to_checkpoint_ms"]["p99"],
    "half_rate_ack_to_checkpoint_p99_ms": r["half"]["ack_to_checkpoint_ms"]["p99"],
    "receipts_per_s": r["receipts"]["receipts_per_s"],
    "receipt_p99_ms": r["receipts"]["latency_ms"]["p99"],
    "log_size_during_receipts": size,
    "transport_sink_entries_per_s": r["sink"]["entries_per_s"],
    "cpu_us_per_entry": cpu,
}
print(json.dumps(r, indent=2))
EOF

#!/usr/bin/env bash
# add-checkpoint load on one ledger-witness (the release binary over HTTP on loopback), with its
# floor measured in the same run (BENCHMARKS.md, "ledger-witness under load"):
#   1. the floor, in process: one request's signature work (the log's checkpoint parsed and its
#      signature verified strictly, a cosignature/v1 signed), on one thread and on two at once;
#      and the durable state write the witness does per request, on one thread, in its directory,
#   2. LOGS sha256 logs witnessed by one witness, one client per log, all at once, each
#      submitting its log's checkpoints of sizes 1..REQUESTS with the consistency proof from the
#      size before (bodies made and signed before the clock starts).
# Requests to one log are serialized by the witness (its compare-and-swap under the log's lock
# includes the durable write), so several logs keep both cores busy.
# Environment: LOGS (default 16), REQUESTS per log (500), FLOOR_SECONDS (2), LOAD_TMPDIR (/tmp).
# Builds with the release profile.
source "$(dirname "$0")/../scripts/lib.sh"

LOGS=${LOGS:-16}
REQUESTS=${REQUESTS:-500}
FLOOR_SECONDS=${FLOOR_SECONDS:-2}

cargo build --release -q -p ledger-witness -p a2a-ledger-benches --bin ledger-witness --bin witness-load
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/witness-load.XXXXXX")
WITNESS_PID=""
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
    stop "$WITNESS_PID"
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== 1. floor: log signature verify + cosignature sign, one and two threads; durable writes" >&2
"$BIN/witness-load" floor --dir "$WORK/floor" --seconds "$FLOOR_SECONDS" >"$WORK/floor.json"

echo "== 2. ledger-witness with $LOGS logs, $LOGS clients, $REQUESTS checkpoints each" >&2
"$BIN/witness-load" logs --dir "$WORK/logs" --count "$LOGS"
LOG_ARGS=()
for f in "$WORK"/logs/log-*.json; do LOG_ARGS+=(--log "$f"); done
"$BIN/ledger-witness" --data "$WORK/witness" --listen 127.0.0.1:0 --name bench.example/witness "${LOG_ARGS[@]}" \
    >"$WORK/witness.out" 2>"$WORK/witness.err" &
WITNESS_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$WORK/witness.out" 2>/dev/null && break; sleep 0.1; done
ADDR=$(awk '/^listening on/ {print $3}' "$WORK/witness.out")
"$BIN/witness-load" load --url "http://$ADDR" --count "$LOGS" --requests "$REQUESTS" --cpu-of "$WITNESS_PID" \
    >"$WORK/load.json"

python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
floor, load = json.load(open(f"{w}/floor.json")), json.load(open(f"{w}/load.json"))
rps = load["requests_per_s"]
print(json.dumps({
    "floor": floor,
    "load": load,
    "summary": {
        "requests_per_s": rps,
        "latency_p99_ms": load["latency_ms"]["p99"],
        "floor_sign_verify_per_s_two_threads": floor["sign_verify_per_s_two_threads"],
        "ratio_to_two_thread_floor": round(rps / floor["sign_verify_per_s_two_threads"], 3),
        "ratio_to_one_thread_floor": round(rps / floor["sign_verify_per_s_one_thread"], 3),
    },
}, indent=2))
PY

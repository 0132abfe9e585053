#!/usr/bin/env bash
# Acknowledgement → served checkpoint, with and without witnesses (BENCHMARKS.md, "Witnessed
# checkpoints"): one sha256 log (`ledger-server init`), three ledger-witness processes of it on
# loopback, and gRPC ingest offered at a fixed RATE (entries/s) from CONNS connections, measured
# by `server-load ingest --watch` (the time from each batch's acknowledgement to the first
# checkpoint WatchCheckpoints serves that covers it). The same log and load, in turns (ROUNDS,
# default 2): the server without a policy, then with a 2-of-3 policy over the three witnesses (a
# checkpoint is served once two cosigned it). Same checkpoint interval (100 ms) in both.
# Environment: ENTRIES per turn (default 100000), RATE (10000), CONNS (8), ROUNDS (2),
# LOAD_TMPDIR (/tmp). Builds with the release profile.
source "$(dirname "$0")/../scripts/lib.sh"

ENTRIES=${ENTRIES:-100000}
RATE=${RATE:-10000}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-2}

cargo build --release -q -p ledger-server -p ledger-witness -p a2a-ledger-benches \
    --bin ledger-server --bin ledger-witness --bin server-load
BIN=$CARGO_TARGET_DIR/release

WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/witnessed-latency.XXXXXX")
PIDS=()
SERVER_PID=""
stop() { if [ -n "$1" ]; then kill "$1" 2>/dev/null; wait "$1" 2>/dev/null || true; fi; }
cleanup() {
    stop "$SERVER_PID"
    for p in "${PIDS[@]}"; do stop "$p"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/ledger-server" init --data "$WORK/ledger" --origin bench.example/witnessed --hash sha256 >"$WORK/log.json"
for i in 1 2 3; do
    "$BIN/ledger-witness" --data "$WORK/w$i" --listen 127.0.0.1:0 --name "w$i.bench.example" --log "$WORK/log.json" \
        >"$WORK/w$i.out" 2>"$WORK/w$i.err" &
    PIDS+=($!)
done
for i in 1 2 3; do
    for _ in $(seq 100); do grep -q '^listening on' "$WORK/w$i.out" 2>/dev/null && break; sleep 0.1; done
    VKEY=$(awk '/^witness vkey/ {print $3}' "$WORK/w$i.out")
    ADDR=$(awk '/^listening on/ {print $3}' "$WORK/w$i.out")
    echo "witness w$i $VKEY http://$ADDR" >>"$WORK/policy.txt"
done
printf 'group two-of-three 2 w1 w2 w3\nquorum two-of-three\n' >>"$WORK/policy.txt"

# Starts the server on the log (with the extra flags given), sets GRPC and INGEST.
serve() {
    "$BIN/ledger-server" --data "$WORK/ledger" --http 127.0.0.1:0 --grpc 127.0.0.1:0 "$@" >"$WORK/server.out" 2>"$WORK/server.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do grep -q '^listening grpc' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
    GRPC=$(awk '/^listening grpc/ {print $3}' "$WORK/server.out")
    INGEST=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['gateway']['token'])" "$WORK/ledger/tokens.json")
}

turn() { # name, round, flags…
    local name=$1 round=$2
    shift 2
    serve "$@"
    "$BIN/server-load" ingest --protocol grpc --url "$GRPC" --token "$INGEST" --watch "$GRPC" \
        --rate "$RATE" --entries "$ENTRIES" --connections "$CONNS" --hash sha256 --prefix "$name-$round" \
        >"$WORK/$name-$round.json"
    stop "$SERVER_PID"
    SERVER_PID=""
}

for r in $(seq "$ROUNDS"); do
    echo "== round $r: without witnesses" >&2
    turn plain "$r"
    echo "== round $r: with three witnesses, quorum 2 of 3" >&2
    turn witnessed "$r" --witness-policy "$WORK/policy.txt"
done

python3 - "$WORK" "$ROUNDS" <<'PY'
import json, sys
w, rounds = sys.argv[1], int(sys.argv[2])
out = {"rounds": []}
for r in range(1, rounds + 1):
    plain = json.load(open(f"{w}/plain-{r}.json"))
    wit = json.load(open(f"{w}/witnessed-{r}.json"))
    out["rounds"].append({
        "plain": {"entries_per_s": plain["entries_per_s"], "ack_latency_ms": plain["ack_latency_ms"], "ack_to_checkpoint_ms": plain["ack_to_checkpoint_ms"]},
        "witnessed": {"entries_per_s": wit["entries_per_s"], "ack_latency_ms": wit["ack_latency_ms"], "ack_to_checkpoint_ms": wit["ack_to_checkpoint_ms"]},
        "p99_ratio": round(wit["ack_to_checkpoint_ms"]["p99"] / plain["ack_to_checkpoint_ms"]["p99"], 2),
        "p50_ratio": round(wit["ack_to_checkpoint_ms"]["p50"] / plain["ack_to_checkpoint_ms"]["p50"], 2),
    })
print(json.dumps(out, indent=2))
PY

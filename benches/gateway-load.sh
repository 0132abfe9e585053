#!/usr/bin/env bash
# Whole-system load on runtime-gateway with its embedded ledger (BENCHMARKS.md), each figure beside
# its baseline measured in the same run:
#   1. added latency against the same upstream called directly (A2A SendMessage, /invoke),
#   2. sustained runs/s through /invoke with receipts, beside raw synced RocksDB writes,
#   3. runs/s with payloads kept against the same load recording hashes only,
#   4. with RUNS ended runs (default 1,000,000) and 100 unfinished in the log: start time, and
#      GetTask of ended tasks not cached beside GetTask of a cached one.
# Environment: N (requests per latency series, default 2000), SECS (10), CONNS (64), ROUNDS (3),
# RUNS (1000000), ONLY (one of latency, throughput, payloads, history), LOAD_TMPDIR (/tmp).
# Builds with the release profile; PROFILE=profiling builds and runs the line-table build for perf.
source "$(dirname "$0")/../scripts/lib.sh"
cargo build --profile "${PROFILE:-release}" -q -p runtime-gateway -p a2a-ledger-benches --bins
BIN=$CARGO_TARGET_DIR/${PROFILE:-release}
WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/gateway-load.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/latency" "$WORK/throughput" "$WORK/payloads" "$WORK/history"
want() { [ -z "${ONLY:-}" ] || [ "$ONLY" = "$1" ]; }
if want latency; then
  "$BIN/gateway-load" latency --gateway "$BIN/runtime-gateway" --work "$WORK/latency" --n "${N:-2000}" 2>/dev/null
fi
if want throughput; then
  "$BIN/gateway-load" throughput --gateway "$BIN/runtime-gateway" --work "$WORK/throughput" --secs "${SECS:-10}" --conns "${CONNS:-64}" 2>/dev/null
fi
if want payloads; then
  "$BIN/gateway-load" payloads --gateway "$BIN/runtime-gateway" --work "$WORK/payloads" --secs "${SECS:-10}" --conns "${CONNS:-64}" --rounds "${ROUNDS:-3}" 2>/dev/null
fi
if want history; then
  "$BIN/gateway-load" history --gateway "$BIN/runtime-gateway" --work "$WORK/history" --runs "${RUNS:-1000000}" --n "${N:-2000}" 2>/dev/null
fi

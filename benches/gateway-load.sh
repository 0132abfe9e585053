#!/usr/bin/env bash
# Whole-system load on runtime-gateway with its embedded ledger (BENCHMARKS.md), each figure beside
# its baseline measured in the same run:
#   1. added latency against the same upstream called directly (A2A SendMessage, /invoke),
#   2. sustained runs/s through /invoke with receipts, beside raw synced RocksDB writes.
# Environment: N (requests per latency series, default 2000), SECS (10), CONNS (64),
# LOAD_TMPDIR (/tmp).
# Builds with the release profile; PROFILE=profiling builds and runs the line-table build for perf.
source "$(dirname "$0")/../scripts/lib.sh"
cargo build --profile "${PROFILE:-release}" -q -p runtime-gateway -p a2a-ledger-benches --bins
BIN=$CARGO_TARGET_DIR/${PROFILE:-release}
WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/gateway-load.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/latency" "$WORK/throughput"
"$BIN/gateway-load" latency --gateway "$BIN/runtime-gateway" --work "$WORK/latency" --n "${N:-2000}" 2>/dev/null
"$BIN/gateway-load" throughput --gateway "$BIN/runtime-gateway" --work "$WORK/throughput" --secs "${SECS:-10}" --conns "${CONNS:-64}" 2>/dev/null

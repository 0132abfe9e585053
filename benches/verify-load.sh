#!/usr/bin/env bash
# The auditor's side under load (BENCHMARKS.md): a pack of ENTRIES realistic entries (default
# 1000000), the hashing floor over the same entries, `ledger-verify pack` (time and peak memory)
# and `ledger-verify export --parquet`, on one core and then on all cores, in one run.
# Builds with the release profile; PROFILE=profiling builds and runs the line-table build for perf.
source "$(dirname "$0")/../scripts/lib.sh"
ENTRIES=${ENTRIES:-1000000}
[ -x /usr/bin/time ] || apt_install time
cargo build --profile "${PROFILE:-release}" -q -p a2a-ledger-benches -p verifier-cli --bins
BIN=$CARGO_TARGET_DIR/${PROFILE:-release}
WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/verify-load.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"$BIN/make-pack" write --entries "$ENTRIES" --out "$WORK/pack" >/dev/null
FLOOR=$("$BIN/make-pack" floor "$WORK/pack")
measure() { # label, command...
    local label=$1; shift
    local out
    out=$( { /usr/bin/time -f "%e %M" "$@" >/dev/null; } 2>&1 | tail -1)
    python3 -c "import sys; e=int(sys.argv[1]); s,r=map(float, sys.argv[2].split()); print(f'\"{sys.argv[3]}\": {{\"seconds\": {s:.2f}, \"entries_per_s\": {e/s:.0f}, \"max_rss_mib\": {r/1024:.0f}}},')" \
        "$ENTRIES" "$out" "$label"
}
echo "{"
echo "\"entries\": $ENTRIES,"
echo "\"floor\": $FLOOR,"
measure verify taskset -c 0 "$BIN/ledger-verify" pack "$WORK/pack" --log "$WORK/pack.log.json" -q
measure export_parquet taskset -c 0 "$BIN/ledger-verify" export "$WORK/pack" --log "$WORK/pack.log.json" -q --parquet "$WORK/out.parquet"
# The same on every core of the machine: seal signatures are checked on all of them.
measure verify_all_cores "$BIN/ledger-verify" pack "$WORK/pack" --log "$WORK/pack.log.json" -q
rm -f "$WORK/out.parquet"
measure export_parquet_all_cores "$BIN/ledger-verify" export "$WORK/pack" --log "$WORK/pack.log.json" -q --parquet "$WORK/out.parquet"
echo "\"parquet_bytes\": $(stat -c %s "$WORK/out.parquet")"
echo "}"

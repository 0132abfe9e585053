#!/usr/bin/env bash
# The dashboard in the browser, whole system (BENCHMARKS.md, "The dashboard in the browser"), each
# figure beside its baseline from the same run:
#   1. receipts verified per second by the page's verifier in headless Chromium, against
#      `ledger-verify receipt` on the same receipt files;
#   2. first paint of /app, and the time until the runs table shows the first page of a listing of
#      RUNS runs (default 10000, recorded through a runtime-gateway in remote mode, all by its
#      `local-user`) in a ledger-server that also holds RUNS_ENTRIES entries of realistic runs from
#      `server-load ingest` (default 125000: ~10,000 more sealed runs), against the same HTTP
#      requests made from Node;
#   3. packs verified through the page's pack form (streamed, with its progress bar): the server's
#      own pack of the whole log, and a PACK_ENTRIES-entry pack from `make-pack write` (default
#      1000000; 0 skips it), each against `ledger-verify pack` on the same tar file (one core and
#      both cores, time and peak RSS).
# Environment: RUNS, RUNS_ENTRIES, PACK_ENTRIES, RECEIPTS (receipts fetched, default 200), LOADS (page
# loads, default 5), LOAD_TMPDIR (/tmp), BIN_DIR (use the release binaries there instead of
# building this checkout's).
source "$(dirname "$0")/../scripts/lib.sh"
RUNS=${RUNS:-10000}
RUNS_ENTRIES=${RUNS_ENTRIES:-125000}
PACK_ENTRIES=${PACK_ENTRIES:-1000000}
RECEIPTS=${RECEIPTS:-200}
[ -x /usr/bin/time ] || apt_install time
ensure_node
ensure_chromium
if [ -n "${BIN_DIR:-}" ]; then
    BIN=$BIN_DIR
else
    cargo build --release -q -p ledger-server -p runtime-gateway -p a2a-ledger-benches -p verifier-cli --bins
    BIN=$CARGO_TARGET_DIR/release
fi

WORK=$(mktemp -d "${LOAD_TMPDIR:-/tmp}/dashboard-bench.XXXXXX")
SERVER_PID=""
GW_PID=""
cleanup() {
    if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null || true; fi
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== ledger-server on $WORK/ledger" >&2
"$BIN/ledger-server" --data "$WORK/ledger" --http 127.0.0.1:0 --grpc 127.0.0.1:0 >"$WORK/server.out" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^listening grpc' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
HTTP=http://$(awk '/^listening http/ {print $3}' "$WORK/server.out" | sed "s,^http://,,")
GRPC=http://$(awk '/^listening grpc/ {print $3}' "$WORK/server.out" | sed "s,^http://,,")
token() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]['token'])" "$WORK/ledger/tokens.json" "$1"; }
INGEST=$(token gateway)
AUDIT=$(token auditor)

echo "== filling it: server-load ingest, $RUNS_ENTRIES entries" >&2
"$BIN/server-load" ingest --protocol grpc --url "$GRPC" --token "$INGEST" --entries "$RUNS_ENTRIES" \
    --connections 16 --prefix dash --watch "$GRPC" >"$WORK/ingest.json"
echo "== $RUNS runs through runtime-gateway /invoke/echo" >&2
"$BIN/runtime-gateway" --ledger "$GRPC" --ledger-token "$INGEST" --data "$WORK/gw" --listen 127.0.0.1:0 >"$WORK/gw.out" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do grep -q '^try:' "$WORK/gw.out" 2>/dev/null && break; sleep 0.1; done
GW_HTTP=http://$(awk '/^listening http/ {print $3}' "$WORK/gw.out" | sed "s,^http://,,")
CALLER=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['local-user']['token'])" "$WORK/gw/gateway-tokens.json")
BENCH_GATEWAY=$GW_HTTP BENCH_CALLER=$CALLER RUNS=$RUNS "$A2A_LEDGER_NODE" "$ROOT/dashboard/bench/fill.mjs" >"$WORK/fill.json"
kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; GW_PID=""
# Every entry under a signed checkpoint before anything is read.
python3 - "$HTTP" <<'EOF'
import json, sys, time, urllib.request
for _ in range(600):
    h = json.load(urllib.request.urlopen(sys.argv[1] + "/healthz"))
    if h["checkpoint_size"] == h["tree_size"]:
        break
    time.sleep(0.1)
else:
    sys.exit("the checkpoint did not catch up with the log")
EOF

echo "== $RECEIPTS receipts, the descriptor and the log's pack" >&2
curl -sf "$HTTP/v1/log" >"$WORK/log.json"
mkdir -p "$WORK/receipts"
python3 - "$HTTP" "$AUDIT" "$RECEIPTS" "$WORK/receipts" <<'EOF'
import json, sys, urllib.request
base, token, want, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def get(path):
    req = urllib.request.Request(base + path, headers={"authorization": f"Bearer {token}"})
    return urllib.request.urlopen(req).read()
got, before = 0, None
while got < want:
    page = json.loads(get("/v1/runs?caller=local-user&limit=100" + (f"&before={before}" if before is not None else "")))
    for r in page["runs"]:
        if got == want:
            break
        open(f"{out}/{got:05}.json", "wb").write(get(f"/runs/{r['run']}/receipt"))
        got += 1
    before = page.get("next")
    if before is None:
        break
EOF
curl -sf -H "authorization: Bearer $AUDIT" "$HTTP/v1/pack" -o "$WORK/server-pack.tar"
PACKS="$WORK/server-pack.tar:$WORK/log.json"
if [ "$PACK_ENTRIES" != 0 ]; then
    echo "== make-pack write --entries $PACK_ENTRIES, as one tar file" >&2
    "$BIN/make-pack" write --entries "$PACK_ENTRIES" --out "$WORK/big" >/dev/null
    tar -C "$WORK/big" -cf "$WORK/big.tar" .
    rm -rf "$WORK/big"
    PACKS="$PACKS,$WORK/big.tar:$WORK/big.log.json"
fi

# ledger-verify pack on each tar, one core and both, under /usr/bin/time.
echo "== ledger-verify pack" >&2
for p in ${PACKS//,/ }; do
    file=${p%%:*} desc=${p##*:}
    for cores in one both; do
        pin=(); [ "$cores" = one ] && pin=(taskset -c 0)
        out=$( { /usr/bin/time -f "%e %M" "${pin[@]}" "$BIN/ledger-verify" pack "$file" --log "$desc" -q >/dev/null; } 2>&1 | tail -1)
        echo "$file $cores $out"
    done
done >"$WORK/cli-packs.txt"

echo "== Chromium" >&2
BENCH_HTTP=$HTTP BENCH_AUDITOR=$AUDIT BENCH_WORK=$WORK BENCH_PACKS=$PACKS A2A_LEDGER_BIN_DIR=$BIN \
    "$A2A_LEDGER_NODE" "$ROOT/dashboard/bench/browser.mjs" >"$WORK/browser.json"

python3 - "$WORK" "$HTTP" <<'EOF'
import json, os, sys, urllib.request
w, base = sys.argv[1], sys.argv[2]
r = json.load(open(f"{w}/browser.json"))
ingest = json.load(open(f"{w}/ingest.json"))
health = json.load(urllib.request.urlopen(base + "/healthz"))
cli = {}
for line in open(f"{w}/cli-packs.txt"):
    f, cores, secs, rss = line.split()
    cli.setdefault(f, {})[cores] = {"seconds": float(secs), "max_rss_mib": round(int(rss) / 1024)}
for p in r["packs"]:
    p["bytes"] = os.path.getsize(p["file"])
    for c in cli[p["file"]].values():
        c["entries_per_s"] = round(p["entries"] / c["seconds"])
    p["ledger_verify_pack"] = cli[p["file"]]
    p["chromium_over_ledger_verify_one_core"] = round(p["chromium"]["entries_per_s"] / p["ledger_verify_pack"]["one"]["entries_per_s"], 3)
    p["file"] = os.path.basename(p["file"])
rc = r["receipts"]
rc["chromium_over_ledger_verify_cli"] = round(rc["chromium"]["receipts_per_s"] / rc["ledger_verify_cli"]["receipts_per_s"], 2)
fill = json.load(open(f"{w}/fill.json"))
r["log"] = {"tree_size": health["tree_size"], "server_load_ingest_entries_per_s": ingest.get("entries_per_s"), "gateway_runs": fill}
print(json.dumps(r, indent=2))
EOF

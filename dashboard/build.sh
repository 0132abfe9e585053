#!/usr/bin/env bash
# Builds the dashboard, dashboard/dist/app.html (one file: script and style inline), from
# dashboard/src with the locked npm packages, and prints its integrity hash (SRI form) for the
# README. The build is reproducible: the same sources and lock file give the same bytes, which
# scripts/test checks against the committed file.
set -euo pipefail
cd "$(dirname "$0")"
if ! cmp -s package-lock.json node_modules/.package-lock.json.installed 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.package-lock.json.installed
fi
npx --no-install tsc --noEmit -p tsconfig.app.json
npx --no-install vite build
node -e 'const c=require("node:crypto");const f=require("node:fs");console.log("sha256-"+c.createHash("sha256").update(f.readFileSync("dist/app.html")).digest("base64"))'

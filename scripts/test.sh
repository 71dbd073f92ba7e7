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
echo "== cargo test"
cargo test --locked --all-targets

#!/usr/bin/env bash
# Runs every loggate test: formatting, lints, the API docs (intra-doc links
# checked), the fuzz targets' build, unit, property and integration tests
# (which start the real gateway on ephemeral ports). Installs what the tests
# need when it is missing, so it works on a clean machine.
#
# The integration tests are one binary, tests/it/ (a module per area:
# `cargo test --test it nats::` runs one), plus tests/soak.rs on its own.
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
echo "== cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
# The fuzz targets (fuzz/, a crate of its own) are built without AFL++ (a
# plain build replays inputs instead of fuzzing; see fuzz/src/lib.rs) and
# each replays its seeds, so a change to loggate that breaks a target, or
# makes a seed fail its assertions, fails here. In the main target
# directory, so the test build below reuses the dependencies built here;
# the instrumented build of scripts/fuzz.sh keeps fuzz/target to itself.
echo "== fuzz targets: build, replay the seeds"
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --locked --manifest-path fuzz/Cargo.toml --bins --target-dir "$target_dir"
for bin in fuzz/src/bin/*.rs; do
    name=$(basename "$bin" .rs)
    printf '%s: ' "$name"
    "$target_dir/debug/$name" "fuzz/seeds/$name"
done
# Installs Debian packages (with sudo when not root); exits if that fails.
SUDO=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
fi
apt_updated=
apt_install() {
    echo "== installing $* (Debian packages)"
    if [ -z "$apt_updated" ]; then
        ${SUDO[@]+"${SUDO[@]}"} apt-get update || {
            echo "scripts/test.sh: apt-get update failed" >&2
            exit 1
        }
        apt_updated=1
    fi
    if ! ${SUDO[@]+"${SUDO[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y "$@"; then
        echo "scripts/test.sh: installing $* with apt-get failed" >&2
        exit 1
    fi
}

# The NATS tests (tests/it/nats/, tests/it/jetstream/) start real nats-server processes. The
# Debian package installs it in /usr/sbin, which a non-root PATH may lack.
if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    export PATH="$PATH:/usr/sbin"
fi
if ! command -v nats-server >/dev/null 2>&1; then
    apt_install nats-server
    export PATH="$PATH:/usr/sbin"
fi
if ! nats_version="$(nats-server --version 2>&1)"; then
    echo "scripts/test.sh: nats-server is required by the NATS tests but does not run: $nats_version" >&2
    exit 1
fi
echo "== $nats_version"
# tests/it/ops.rs lints the live /metrics with promtool, which Debian ships in
# the prometheus package (no daemon is started in a container).
if ! command -v promtool >/dev/null 2>&1; then
    apt_install --no-install-recommends prometheus
fi
echo "== $(promtool --version 2>&1 | head -1)"
# tests/it/viewer/ drives the web viewer in headless Chromium through
# ChromeDriver (the two come as matching Debian packages; Chromium's
# recommended packages bring the fonts its screenshots need).
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi
if ! chromedriver_version="$(chromedriver --version 2>&1)"; then
    echo "scripts/test.sh: chromedriver is required by tests/it/viewer/ but does not run: $chromedriver_version" >&2
    exit 1
fi
echo "== $chromedriver_version"
# The viewer's JavaScript (ui/): its JSDoc types checked by tsc (the
# version in ui/package-lock.json) and its pure modules' unit tests run by
# Node's test runner. Node and npm come as Debian packages when missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
echo "== viewer JavaScript (node $(node --version)): tsc, node --test"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run --silent check && npm test --silent)
echo "== cargo test"
cargo test --locked --all-targets

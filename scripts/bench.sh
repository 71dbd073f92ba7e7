#!/usr/bin/env bash
# Builds the release gateway and the benchmark, raises the open-file limit
# (every SSE subscriber is one socket in the bench and one in the gateway,
# and the gateway inherits this limit), then runs the benchmark.
#
#   scripts/bench.sh [loggate-bench options]     e.g. --subscribers 1000 --channels 10
#   scripts/bench.sh --cluster [--jetstream] [options]   two nodes joined by a nats-server
#                                                 (with JetStream: nats-server -js):
#                                                 publish on A, subscribe on B
#   scripts/bench.sh --viewer [viewer-bench options]   the web viewer in headless
#                                                 Chromium under a fast stream
#                                                 (--rate 2000 --seconds 10 --runs 3)
#   scripts/bench.sh --ai [ai-bench options]      AI chats over a full history, and
#                                                 their cost to other tenants
#                                                 (--events 200000 --chats 20)
#   scripts/bench.sh --peer nchan [options]       the same single-event workload on
#                                                 loggate and on Nchan (nginx), runs
#                                                 interleaved, side by side with ratios
#                                                 (--runs 3 --idle-connections 10000
#                                                 --rates 500,2000); installs Debian's
#                                                 nginx and libnginx-mod-nchan if missing
#   scripts/bench.sh --ingest [options]          records/s through each ingest endpoint
#                                                 (publish, OTLP protobuf/JSON, Loki
#                                                 snappy protobuf/JSON), batches of 100
#                                                 (--ingest-batch), nobody subscribed
#   scripts/bench.sh --neighbour [options]       one service pushing large requests as
#                                                 hard as its limits allow, another
#                                                 tenant's publish round trip beside it
#                                                 (--neighbour-format publish|loki-json|…)
#   scripts/bench.sh --largest [options]         peak memory for the largest shipper
#                                                 requests (10,000 lines, 8 MiB decoded)
#   scripts/bench.sh --help
#
# Summary table on stdout, progress on stderr, gateway log in
# target/loggate-bench-server.log (with --cluster: -a.log, -b.log and
# -nats.log beside it). --cluster needs nats-server (Debian: apt-get install
# nats-server, which puts it in /usr/sbin).
set -euo pipefail

cd "$(dirname "$0")/.."

hard=$(ulimit -Hn)
if [ "$hard" = "unlimited" ]; then
    ulimit -n 1048576 2>/dev/null || ulimit -n 65536 2>/dev/null || true
else
    ulimit -n "$hard" 2>/dev/null || true
fi
echo "bench.sh: open-file limit $(ulimit -n)" >&2

# Debian's nats-server is in /usr/sbin, which is not always on PATH.
if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    export PATH="$PATH:/usr/sbin"
fi

cargo build --release --quiet --bin loggate
target="${CARGO_TARGET_DIR:-target}"
export LOGGATE_BENCH_BINARY="${LOGGATE_BENCH_BINARY:-$target/release/loggate}"

if [ "${1:-}" = "--ai" ]; then
    shift
    cargo build --release --quiet --example ai-bench
    exec "$target/release/examples/ai-bench" "$@"
fi

if [ "${1:-}" = "--viewer" ]; then
    shift
    cargo build --release --quiet --example viewer-bench
    exec "$target/release/examples/viewer-bench" "$@"
fi

peer=""
prev=""
for arg in "$@"; do
    case "$arg" in
        --peer=*) peer="${arg#--peer=}" ;;
        *) [ "$prev" = "--peer" ] && peer="$arg" ;;
    esac
    prev="$arg"
done
if [ "$peer" = "nchan" ] && ! { [ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; }; then
    echo "bench.sh: installing Debian's nginx and libnginx-mod-nchan" >&2
    sudo=""
    [ "$(id -u)" = "0" ] || sudo="sudo"
    $sudo apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx libnginx-mod-nchan >&2
fi

cargo build --release --quiet --example loggate-bench
exec "$target/release/examples/loggate-bench" "$@"

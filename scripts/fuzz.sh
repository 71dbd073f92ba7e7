#!/usr/bin/env bash
# Coverage-guided fuzzing of loggate's parsers with AFL++ through cargo-afl,
# on stable Rust. Runs each target for a bounded time, one after the other,
# and prints per target: executions, execs/s, corpus and edges, crashes and
# hangs. Exits 1 if any target crashed (the inputs are listed). Not part of
# scripts/test.sh.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 60 s for every target
#
# Targets are fuzz/src/bin/<target>.rs, seeded from fuzz/seeds/<target>/.
# Each run writes AFL's output to fuzz/out/<target>/ (replaced every run),
# keeps the inputs that found new paths in fuzz/corpus/<target>/ (the next
# run starts from them) and copies crashing inputs to
# fuzz/crashes/<target>/. All three are git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every fuzz target, one per line: adding a target is its file in
# fuzz/src/bin/, its seeds in fuzz/seeds/, and its name here.
ALL_TARGETS=(
    publish_body
    channel
    event_id
    fly
    rules
    cluster
    ws_message
    otlp
    loki
)

secs=60
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=("${ALL_TARGETS[@]}")
fi
for t in "${targets[@]}"; do
    if [[ ! " ${ALL_TARGETS[*]} " =~ \ $t\  ]]; then
        echo "fuzz.sh: unknown target $t (known: ${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

# cargo-afl builds AFL++ itself (from the source in the crate) when it is
# installed; after a Rust update `cargo afl config --build` builds it again
# for the new rustc, and says "already built" otherwise.
if ! cargo afl --version >/dev/null 2>&1; then
    echo "== installing cargo-afl (it builds AFL++ too: about a minute)"
    # The same minor version as the `afl` crate in fuzz/Cargo.toml.
    cargo install --locked cargo-afl --version '^0.18'
fi
if ! config_out=$(cargo afl config --build 2>&1); then
    if ! grep -q "already built" <<<"$config_out"; then
        echo "$config_out" >&2
        echo "fuzz.sh: cargo afl config --build failed" >&2
        exit 1
    fi
fi
echo "== $(cargo afl --version)"

echo "== building the fuzz targets (instrumented, release)"
(cd fuzz && cargo afl build --release --quiet --bins)

# What a container needs: no CPU frequency governor to check, core dumps
# named plainly or not at all, no curses screen, no core pinning (the two
# cores may be shared with other work).
export AFL_SKIP_CPUFREQ=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1
export AFL_NO_AFFINITY=1

tmp=$(mktemp -d)
pgid=""
target_bin=""
# Processes running the current target's binary: AFL++'s fork servers call
# setsid(), so they leave afl-fuzz's process group.
forkservers() {
    local p
    [ -n "$target_bin" ] || return 0
    for p in /proc/[0-9]*; do
        if [ "$(readlink "$p/exe" 2>/dev/null)" = "$target_bin" ]; then
            echo "${p#/proc/}"
        fi
    done
}
# Ends the running afl-fuzz with everything it started (its process group,
# then the fork servers, which exit by themselves once afl-fuzz is gone),
# and removes the temporary files.
stop_run() {
    if [ -n "$pgid" ]; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 -- "-$pgid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$pgid" 2>/dev/null || true
        wait "$pgid" 2>/dev/null || true
        pgid=""
    fi
    for _ in $(seq 50); do
        [ -n "$(forkservers)" ] || break
        sleep 0.1
    done
    for p in $(forkservers); do
        echo "fuzz.sh: ending leftover fork server $p" >&2
        kill -KILL "$p" 2>/dev/null || true
    done
}
trap 'stop_run; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

afl_stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$2"; }

# Copies the files of $1 into $2, named by their content, so that the same
# input is kept once however many runs find it.
keep() {
    mkdir -p "$2"
    for f in "$1"/id:*; do
        [ -f "$f" ] || continue
        cp "$f" "$2/$(sha1sum "$f" | cut -c1-16)"
    done
}

rows=()
crashed=()
for t in "${targets[@]}"; do
    out="fuzz/out/$t"
    rm -rf "$out"
    mkdir -p "$out" "fuzz/corpus/$t"
    input="$tmp/$t"
    mkdir -p "$input"
    cp fuzz/seeds/"$t"/* "$input"/
    cp fuzz/corpus/"$t"/* "$input"/ 2>/dev/null || true
    echo "== $t: fuzzing for ${secs}s ($(ls "$input" | wc -l) inputs to start from; log in $out.log)"
    # setsid: afl-fuzz and its children get a process group of their own,
    # which stop_run ends whole. -V stops afl-fuzz by itself after $secs of
    # fuzzing; timeout is the backstop if it does not.
    target_bin=$(realpath "fuzz/target/release/$t")
    setsid timeout -k 10 $((secs + 120)) \
        cargo afl fuzz -i "$input" -o "$out" -V "$secs" -m none -t 1000 \
        -- "fuzz/target/release/$t" >"$out.log" 2>&1 &
    pgid=$!
    rc=0
    wait "$pgid" || rc=$?
    if kill -0 -- "-$pgid" 2>/dev/null; then
        echo "fuzz.sh: processes of the $t run outlived afl-fuzz; ending them" >&2
    fi
    stop_run
    stats="$out/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        tail -30 "$out.log" >&2
        echo "fuzz.sh: afl-fuzz did not run $t (exit $rc); see $out.log" >&2
        exit 1
    fi
    keep "$out/default/queue" "fuzz/corpus/$t"
    keep "$out/default/crashes" "fuzz/crashes/$t"
    crashes=$(afl_stat saved_crashes "$stats")
    hangs=$(afl_stat saved_hangs "$stats")
    rows+=("$(printf '%-14s %12s %10s %8s %13s %8s %6s' "$t" \
        "$(afl_stat execs_done "$stats")" "$(afl_stat execs_per_sec "$stats")" \
        "$(afl_stat corpus_count "$stats")" \
        "$(afl_stat edges_found "$stats")/$(afl_stat total_edges "$stats")" \
        "$crashes" "$hangs")")
    if [ "$crashes" != 0 ]; then
        crashed+=("$t")
    fi
done

echo
printf '%-14s %12s %10s %8s %13s %8s %6s\n' target execs execs/s corpus edges crashes hangs
printf '%s\n' "${rows[@]}"
# Groups a target's crashes by where they panicked: count, location, the
# first line of one message, and the smallest input.
triage() {
    local t=$1 f where
    for f in "fuzz/out/$t/default/crashes"/id:*; do
        where=$({ timeout 10 "fuzz/target/release/$t" <"$f" 2>&1 || true; } 2>/dev/null |
            sed -n '/panicked at /{s/.*panicked at \(.*\):$/\1/;N;s/\n/ /;p;q}')
        [ -n "$where" ] || where="(no-panic) does not reproduce, or died without a panic message"
        printf '%s\t%s\t%s\n' "${where%% *}" "$(stat -c %s "$f")" "$f|${where#* }"
    done | sort -t$'\t' -k1,1 -k2,2n | awk -F'\t' '
        $1 != last { if (n) print n "x " last "\n      " msg "\n      smallest: " file;
                     last = $1; n = 0; split($3, a, "|"); file = a[1];
                     msg = substr($3, length(a[1]) + 2, 120) }
        { n++ }
        END { if (n) print n "x " last "\n      " msg "\n      smallest: " file }' |
        sed 's/^/  /'
}

status=0
for t in "${crashed[@]+"${crashed[@]}"}"; do
    echo
    echo "CRASH in $t: $(ls "fuzz/out/$t/default/crashes"/id:* | wc -l) inputs in fuzz/out/$t/default/crashes/ (copies in fuzz/crashes/$t/)"
    echo "  reproduce with: fuzz/target/release/$t < FILE"
    triage "$t"
    status=1
done
for t in "${targets[@]}"; do
    if [ -n "$(ls "fuzz/out/$t/default/hangs" 2>/dev/null)" ]; then
        echo "hangs (over 1 s) in $t: fuzz/out/$t/default/hangs/"
    fi
done
exit "$status"

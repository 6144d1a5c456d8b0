#!/usr/bin/env bash
# observe-overhead.sh — what the observability core costs a cheap call.
#
# Side by side in one run, alternating A B C A B C … so machine drift hits
# all three alike, round trips of CONNECT_GET_LIB_VERSION (modvirt-rpc-bench
# rtt) on 1 and on 16 connections against:
#   on    virtqemud as built (in-flight registry, metrics, per-call spans)
#   off   the same binary with `call_spans = 0` (spans configured off)
#   bare  the same code with the per-call instrumentation compiled out
#         (BARE=path: `CARGO_TARGET_DIR=/tmp/bare cargo build --release -p
#         virtqemud --no-default-features`; skipped if absent)
#   base  a virtqemud built without the observability core (BASE=path,
#         e.g. built from the commit before it; skipped if absent)
# Every measurement is a fixed number of calls (CALLS, split across the
# connections), after an uncounted warm-up of WARMUP calls: the daemon's own
# CPU time (the sum of its threads' run time in ns, from
# /proc/PID/task/*/schedstat; utime+stime ticks are too coarse) over exactly that work, divided
# by CALLS, is its CPU per call — steadier than throughput on a shared
# machine, where the clients compete with the daemon for the same cores.
# Prints, per target, median calls/s and daemon CPU µs per call, and the cost
# of `on` relative to the others as the median of per-round paired ratios.
#
# Usage: cargo build --release -p virtqemud -p modvirt-admin
#        benches/observe-overhead.sh      (ROUNDS=9 CALLS=40000 WARMUP=2000 BARE=… BASE=…)
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=${BENCH:-target/release/modvirt-rpc-bench}
BIN=${VIRTQEMUD:-target/release/virtqemud}
BASE=${BASE:-}
BARE=${BARE:-}
ROUNDS=${ROUNDS:-9}
CALLS=${CALLS:-40000}
WARMUP=${WARMUP:-2000}
# With PIN=1 (and at least 2 CPUs), the daemons run on the last CPU and the
# clients on the others, so they do not take turns on one core.
PIN_DAEMON="" PIN_CLIENT=""
if [[ ${PIN:-0} == 1 ]] && (( $(nproc) > 1 )); then
    last=$(( $(nproc) - 1 ))
    PIN_DAEMON="taskset -c $last" PIN_CLIENT="taskset -c 0-$(( last - 1 ))"
fi
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

declare -A PID
start() { # name binary [config]
    local root=$WORK/$1
    mkdir -p "$root/etc/libvirt"
    [[ -n "${3:-}" ]] && printf '%s\n' "$3" > "$root/etc/libvirt/virtqemud.conf"
    $PIN_DAEMON "$2" --root "$root" --timeout 0 2>"$WORK/$1.log" &
    pids+=($!)
    PID[$1]=$!
    for _ in $(seq 200); do [[ -S $root/run/libvirt/virtqemud-sock ]] && return; sleep 0.02; done
    echo "$1 did not start" >&2; exit 1
}
targets=(on off)
start on "$BIN"
start off "$BIN" "call_spans = 0"
if [[ -n "$BARE" && -x "$BARE" ]]; then start bare "$BARE"; targets+=(bare); fi
if [[ -n "$BASE" && -x "$BASE" ]]; then start base "$BASE"; targets+=(base); else echo "(no BASE binary)"; fi

cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
rate() { # target conns → "calls/s daemon-cpu-µs-per-call"
    local sock=$WORK/$1/run/libvirt/virtqemud-sock before after out calls rate
    $PIN_CLIENT "$BENCH" rtt --socket "$sock" --conns "$2" --calls "$WARMUP" --format kv >/dev/null
    before=$(cpu_ns "${PID[$1]}")
    out=$($PIN_CLIENT "$BENCH" rtt --socket "$sock" --conns "$2" --calls "$CALLS" --format kv)
    after=$(cpu_ns "${PID[$1]}")
    rate=$(awk -F= '$1=="rtt_calls_per_sec"{print $2}' <<<"$out")
    calls=$(awk -F= '$1=="rtt_calls"{print $2}' <<<"$out")
    # The CPU delta also holds the connections' set-up and close: a few
    # calls each, negligible against CALLS.
    awk -v r="$rate" -v c="$calls" -v t=$((after - before)) \
        'BEGIN { printf "%s %.3f\n", r, t / 1e3 / c }'
}
for conns in 1 16; do
    for t in "${targets[@]}"; do : > "$WORK/$t.$conns"; done
    for round in $(seq "$ROUNDS"); do
        # Alternate the order, so neither target always runs first.
        order=("${targets[@]}")
        if (( round % 2 == 0 )); then order=($(printf '%s\n' "${targets[@]}" | tac)); fi
        for t in "${order[@]}"; do rate "$t" "$conns" >> "$WORK/$t.$conns"; done
    done
done
median() { # file column
    awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
printf '\n%-6s | %16s | %16s | %22s | %22s\n' target "1-conn calls/s" "16-conn calls/s" "1-conn daemon µs/call" "16-conn daemon µs/call"
for t in "${targets[@]}"; do
    printf '%-6s | %16.0f | %16.0f | %22.2f | %22.2f\n' "$t" "$(median "$WORK/$t.1" 1)" "$(median "$WORK/$t.16" 1)" \
        "$(median "$WORK/$t.1" 2)" "$(median "$WORK/$t.16" 2)"
done
echo
# Relative cost: the median over rounds of each round's paired ratio (both
# measured within seconds of each other), steadier than a ratio of medians
# on a machine whose speed drifts.
paired() { # file-a file-b column → median of a/b - 1, in %
    paste -d' ' "$1" "$2" | awk -v c="$3" '{n = NF / 2; print ($c / $(c + n) - 1) * 100}' |
        sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
for other in "${targets[@]:1}"; do
    for conns in 1 16; do
        printf 'on vs %-4s %2s conn: %+.1f %% throughput, %+.1f %% daemon CPU per call (median of %s paired rounds)\n' \
            "$other" "$conns" "$(paired "$WORK/on.$conns" "$WORK/$other.$conns" 1)" \
            "$(paired "$WORK/on.$conns" "$WORK/$other.$conns" 2)" "$ROUNDS"
    done
done

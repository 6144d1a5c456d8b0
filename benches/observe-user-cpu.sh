#!/usr/bin/env bash
# observe-user-cpu.sh — the daemon's CPU per call split into its own code
# (user space: virtqemud, libc, vDSO) and the kernel's (socket I/O, epoll,
# wake-ups), for virtqemud as built ("on") and the same code with the
# per-call instrumentation compiled out ("bare"), and optionally a build
# without the observability core ("base").
#
# Why: on a shared 2-vCPU machine the kernel's share of a call (about 80 %)
# swings by ±10 % from run to run with how wake-ups and reads batch up, which
# hides a few-% difference in the daemon's own code. `perf record` samples
# (software cpu-clock, 5 kHz) over a fixed number of calls split the two.
# Daemon and clients are pinned to different CPUs; rounds alternate targets.
#
# Usage: cargo build --release -p virtqemud -p modvirt-admin
#        CARGO_TARGET_DIR=/tmp/bare cargo build --release -p virtqemud --no-default-features
#        BARE=/tmp/bare/release/virtqemud benches/observe-user-cpu.sh   (ROUNDS=5 CALLS=300000 CONNS=16 BASE=…)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
BENCH=${BENCH:-target/release/modvirt-rpc-bench}
BIN=${VIRTQEMUD:-target/release/virtqemud}
BARE=${BARE:?set BARE to a virtqemud built with --no-default-features}
BASE=${BASE:-}
ROUNDS=${ROUNDS:-5}
CALLS=${CALLS:-300000}
CONNS=${CONNS:-16}
last=$(( $(nproc) - 1 ))
(( last > 0 )) || { echo "needs 2 CPUs" >&2; exit 1; }
WORK=$(mktemp -d)
daemon=""
cleanup() { [[ -n $daemon ]] && kill "$daemon" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

declare -A BINS=([on]=$BIN [bare]=$BARE)
targets=(on bare)
if [[ -n $BASE ]]; then BINS[base]=$BASE; targets+=(base); fi

one() { # target → "user-µs-per-call kernel-µs-per-call calls/s"
    local root=$WORK/$1.$RANDOM
    mkdir -p "$root/etc/libvirt"
    taskset -c "$last" "${BINS[$1]}" --root "$root" --timeout 0 2>/dev/null &
    daemon=$!
    for _ in $(seq 200); do [[ -S $root/run/libvirt/virtqemud-sock ]] && break; sleep 0.02; done
    local sock=$root/run/libvirt/virtqemud-sock
    taskset -c "0-$(( last - 1 ))" "$BENCH" rtt --socket "$sock" --conns "$CONNS" --calls 5000 --format kv >/dev/null
    perf record -q -e cpu-clock -F 5000 -p "$daemon" -o "$WORK/perf.data" 2>/dev/null &
    local rec=$!
    sleep 0.3
    local out
    out=$(taskset -c "0-$(( last - 1 ))" "$BENCH" rtt --socket "$sock" --conns "$CONNS" --calls "$CALLS" --format kv)
    kill -INT "$rec"; wait "$rec" 2>/dev/null || true
    kill "$daemon"; wait "$daemon" 2>/dev/null || true; daemon=""
    local rate
    rate=$(awk -F= '$1=="rtt_calls_per_sec"{print $2}' <<<"$out")
    # Samples while the clients ran: every sample is 200 µs of CPU.
    perf report -i "$WORK/perf.data" --no-children --sort dso --stdio -F overhead,sample,dso 2>/dev/null |
        awk -v c="$CALLS" -v r="$rate" '
            /^#/ || NF < 3 { next }
            { n = $2; if ($3 == "[kernel.kallsyms]") k += n; else u += n }
            END { printf "%.3f %.3f %.0f\n", u * 200 / c, k * 200 / c, r }'
}
for t in "${targets[@]}"; do : > "$WORK/$t"; done
for round in $(seq "$ROUNDS"); do
    order=("${targets[@]}")
    if (( round % 2 == 0 )); then order=($(printf '%s\n' "${targets[@]}" | tac)); fi
    for t in "${order[@]}"; do one "$t" >> "$WORK/$t"; done
done
median() { awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%s connections, %s calls per round, median of %s rounds\n' "$CONNS" "$CALLS" "$ROUNDS"
printf '%-5s | %14s | %16s | %9s\n' target "user µs/call" "kernel µs/call" "calls/s"
for t in "${targets[@]}"; do
    printf '%-5s | %14.3f | %16.3f | %9.0f\n' "$t" "$(median "$WORK/$t" 1)" "$(median "$WORK/$t" 2)" "$(median "$WORK/$t" 3)"
done
on_u=$(median "$WORK/on" 1); on_k=$(median "$WORK/on" 2)
for t in "${targets[@]:1}"; do
    awk -v ou="$on_u" -v ok="$on_k" -v u="$(median "$WORK/$t" 1)" -v k="$(median "$WORK/$t" 2)" -v t="$t" 'BEGIN {
        printf "on vs %s: %+.3f µs user CPU per call = %+.1f %% of %s'"'"'s whole CPU per call (%.3f µs)\n",
            t, ou - u, (ou - u) / (u + k) * 100, t, u + k }'
done

#!/usr/bin/env bash
# virt-daemons-status.sh — how long `virt-daemons status` takes for N
# running daemons of one root (goal: 10 daemons under 20 ms).
#
# Starts N test daemons (virttestd, renamed virttest0d … virttest<N-1>d) on
# a temporary root, then times `virt-daemons --root ROOT status` RUNS times
# (whole process: discovery, one passive STATUS call per daemon, render) and
# prints min / median / max. Build first: cargo build --release --workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10}
RUNS=${RUNS:-30}
BIN=${BIN:-target/release}
ROOT=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$ROOT"; }
trap cleanup EXIT INT TERM
for i in $(seq 0 $((N - 1))); do
    MODVIRT_TESTD_NAME="virttest${i}d" "$BIN/virttestd" --root "$ROOT" --timeout 0 2>/dev/null &
    pids+=($!)
done
for i in $(seq 0 $((N - 1))); do
    for _ in $(seq 200); do [[ -S $ROOT/run/libvirt/virttest${i}d-admin-sock ]] && break; sleep 0.02; done
done
"$BIN/virt-daemons" --root "$ROOT" status | head -3
times=()
for _ in $(seq "$RUNS"); do
    s=$(date +%s%N)
    "$BIN/virt-daemons" --root "$ROOT" status > /dev/null
    e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$N" '{a[NR]=$1} END {printf "virt-daemons status, %d daemons, %d runs: min %.1f / median %.1f / max %.1f ms\n", n, NR, a[1]/1000, a[int((NR+1)/2)]/1000, a[NR]/1000}'

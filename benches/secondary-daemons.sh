#!/usr/bin/env bash
# secondary-daemons.sh — issue 5's two figures, side by side in one run:
#
#   proxy hop    round trips of REMOTE CONNECT_GET_LIB_VERSION, 1 connection,
#                CALLS calls per round, ROUNDS rounds alternating: straight to
#                virtqemud's socket vs through virtproxyd's libvirt-sock (a
#                session passes each call on to virtqemud). Prints the median
#                latency of each and the extra hop's cost (median of per-round
#                differences of medians), goal ≤ 30 µs.
#   cold start   a secondary daemon under `systemd-socket-activate` (as with
#                libvirt's socket units): from launching the activator until
#                `virsh -c <scheme>:///system?socket=… <command>` returns,
#                RUNS runs, min / median / max; beside it the same virsh
#                command against the daemon already running ("warm": what
#                virsh itself costs on this machine now) and libvirt 9.0's
#                recorded figures (../shared/reference/libvirt-9.0/README.md §5a).
#
# Usage: cargo build --release -p virtqemud -p virtproxyd -p virtnetworkd -p modvirt-admin
#        benches/secondary-daemons.sh          (ROUNDS=9 CALLS=20000 RUNS=7)
# Daemons not built (e.g. target/release/virtnodedevd) are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
REL=${REL:-target/release}
BENCH=$REL/modvirt-rpc-bench
ROUNDS=${ROUNDS:-9}
CALLS=${CALLS:-20000}
RUNS=${RUNS:-7}
WORK=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$WORK"/*/run/*.pid; do kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# ---- proxy hop
R=$WORK/proxy
mkdir -p "$R"
"$REL/virtqemud" --root "$R" --timeout 0 2>/dev/null & pids+=($!)
"$REL/virtproxyd" --root "$R" --timeout 0 2>/dev/null & pids+=($!)
for _ in $(seq 200); do [[ -S $R/run/libvirt/virtqemud-sock && -S $R/run/libvirt/libvirt-sock ]] && break; sleep 0.02; done
p50() { "$BENCH" rtt --socket "$1" --conns 1 --calls "$CALLS" --format kv | awk -F= '$1=="rtt_lat_p50_us"{print $2}'; }
: > "$WORK/direct"; : > "$WORK/proxied"
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then
        p50 "$R/run/libvirt/virtqemud-sock" >> "$WORK/direct"; p50 "$R/run/libvirt/libvirt-sock" >> "$WORK/proxied"
    else
        p50 "$R/run/libvirt/libvirt-sock" >> "$WORK/proxied"; p50 "$R/run/libvirt/virtqemud-sock" >> "$WORK/direct"
    fi
done
d=$(median < "$WORK/direct"); p=$(median < "$WORK/proxied")
hop=$(paste "$WORK/proxied" "$WORK/direct" | awk '{print $1 - $2}' | median)
printf 'proxy hop (1 connection, %s calls × %s rounds, median p50 latency):\n' "$CALLS" "$ROUNDS"
printf '  direct to virtqemud      %8.1f µs\n  through virtproxyd       %8.1f µs\n  extra hop                %8.1f µs (goal ≤ 30 µs)\n\n' "$d" "$p" "$hop"

# ---- cold start under socket activation
printf 'cold start under systemd-socket-activate, launch → virsh returns (%s runs, min / median / max ms):\n' "$RUNS"
coldstart() { # daemon scheme command libvirt-figure
    local d=$1 scheme=$2 cmd=$3 libvirt=$4
    if [[ ! -x $REL/$d ]]; then printf '  %-14s (not built)\n' "$d"; return; fi
    : > "$WORK/$d.ms"
    for run in $(seq "$RUNS"); do
        local root=$WORK/$d.$run sock
        mkdir -p "$root/run/libvirt"
        sock=$root/run/libvirt/$d-sock
        local t0 t1
        t0=$(date +%s%N)
        systemd-socket-activate -l "$sock" --fdname="$d.socket" -- "$REL/$d" --root "$root" --timeout 0 >/dev/null 2>&1 &
        local act=$!
        while [[ ! -S $sock ]]; do sleep 0.001; done
        virsh -c "$scheme:///system?socket=$sock" $cmd >/dev/null
        t1=$(date +%s%N)
        echo "scale=1; ($t1 - $t0) / 1000000" | bc >> "$WORK/$d.ms"
        kill "$act" 2>/dev/null || true; wait "$act" 2>/dev/null || true
    done
    # The same command against the daemon already running: what virsh
    # itself costs on this machine now, to tell the daemon's share.
    local root=$WORK/$d.warm
    mkdir -p "$root"
    "$REL/$d" --root "$root" --timeout 0 2>/dev/null &
    local daemon=$!
    while [[ ! -S $root/run/libvirt/$d-sock ]]; do sleep 0.001; done
    : > "$WORK/$d.warm.ms"
    for run in $(seq "$RUNS"); do
        local t0 t1
        t0=$(date +%s%N)
        virsh -c "$scheme:///system?socket=$root/run/libvirt/$d-sock" $cmd >/dev/null
        t1=$(date +%s%N)
        echo "scale=1; ($t1 - $t0) / 1000000" | bc >> "$WORK/$d.warm.ms"
    done
    kill "$daemon"; wait "$daemon" 2>/dev/null || true
    local min med max warm
    min=$(sort -g "$WORK/$d.ms" | head -1); max=$(sort -g "$WORK/$d.ms" | tail -1); med=$(median < "$WORK/$d.ms")
    warm=$(median < "$WORK/$d.warm.ms")
    printf '  %-14s %-16s %6.1f / %6.1f / %6.1f   warm %6.1f (cold − warm %5.1f)   libvirt 9.0: %s\n' \
        "$d" "$cmd" "$min" "$med" "$max" "$warm" "$(echo "$med - $warm" | bc)" "$libvirt"
}
coldstart virtnetworkd network "net-list --all" "28.9 / 39.9 / 43.6"
coldstart virtnodedevd nodedev "nodedev-list" "71.7 / 78.6 / 134.2"
coldstart virtstoraged storage "pool-list --all" "not recorded"
coldstart virtsecretd secret "secret-list" "not recorded"
coldstart virtinterfaced interface "iface-list" "not recorded"
coldstart virtnwfilterd nwfilter "nwfilter-list" "not recorded"

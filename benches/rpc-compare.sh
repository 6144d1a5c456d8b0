#!/usr/bin/env bash
# rpc-compare.sh — side by side, in one run: Debian's libvirtd, our virtqemud
# and a raw UNIX-socket echo of the same frame sizes, measured with
# modvirt-rpc-bench (admin/src/bin/modvirt-rpc-bench.rs):
#
#   cold start   exec → first answered AUTH_LIST, socket polled every 1 ms
#                (RUNS runs, median shown; min/max in the .kv files)
#   idle memory  VmRSS / Threads from /proc/PID/status 1 s after the socket
#                appeared, and 1 s after one client (open, 1 call, close)
#   round trips  REMOTE CONNECT_GET_LIB_VERSION (28-byte call, 36-byte reply)
#                back to back on 1 and on CONNS connections (one client thread
#                each, each connection first does AUTH_LIST, SUPPORTS_FEATURE
#                10, CONNECT_OPEN qemu:///system); WARMUP s, then RTT_SECONDS s
#
# Usage:  cargo build --release -p modvirt-admin [-p virtqemud]
#         sudo benches/rpc-compare.sh
# Knobs (environment): VIRTQEMUD=path (default target/release/virtqemud;
#   skipped with a message if missing), LIBVIRTD=/usr/sbin/libvirtd, BENCH=path,
#   RUNS=7, CONNS=16, RTT_SECONDS=3, WARMUP=0.5, URI=qemu:///system,
#   LIBVIRTD_NAMESPACE=auto|0, KEEP=1 (keep the work dir with logs and .kv files).
#
# It installs nothing. libvirtd comes from `apt-get install libvirt-daemon
# libvirt-daemon-driver-qemu`; it must run as root (system mode, like our
# daemon), in the foreground, with `-f CONF` (unix_sock_dir = a temp dir) and
# `-p PIDFILE`, so its sockets never touch /run/libvirt. What libvirtd 9.0
# still writes outside that temp dir, seen on Debian 12 (find -newer):
#   /run/libvirt/common/system.token, /run/libvirt/{network,storage}/autostarted,
#   /run/libvirt/{network,storage,secrets,nodedev,interface,nwfilter}/driver.pid
#   (left behind after a clean exit), /run/libvirt/network/nwfilter.leases,
#   /run/libvirt/nwfilter-binding/, /etc/libvirt/{secrets,nwfilter}/ (empty dirs),
#   and /var/{lib,cache,log}/libvirt/… for the QEMU driver.
# Also, the QEMU driver refuses to initialise ("Failed to parse user
# 'libvirt-qemu'") unless that user exists; only libvirt-daemon-system creates it.
# So by default libvirtd runs inside a private mount + PID namespace (unshare
# -m -p): tmpfs over /run, /var/lib, /var/cache, /var/log, a copy of
# /etc/libvirt bind-mounted over it, and /etc/passwd + /etc/group copies with
# libvirt-qemu added if missing. Nothing then reaches the host's /run, /var or
# /etc; the mounts vanish with the namespace, and so does every process in it. With LIBVIRTD_NAMESPACE=0, or where unshare
# is not permitted, libvirtd runs directly (the libvirt-qemu user must exist),
# and the /run/libvirt and /etc/libvirt/{secrets,nwfilter} it creates are
# removed afterwards if they did not exist before.
#
# Every process started here is stopped on exit (trap EXIT); the work dir goes
# too. On a small machine the client threads share the CPUs with the daemon:
# compare the rows of one run, not runs on different machines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${BENCH:-$ROOT/target/release/modvirt-rpc-bench}
VIRTQEMUD=${VIRTQEMUD:-$ROOT/target/release/virtqemud}
LIBVIRTD=${LIBVIRTD:-/usr/sbin/libvirtd}
RUNS=${RUNS:-7}
CONNS=${CONNS:-16}
RTT_SECONDS=${RTT_SECONDS:-3}
WARMUP=${WARMUP:-0.5}
URI=${URI:-qemu:///system}
LIBVIRTD_NAMESPACE=${LIBVIRTD_NAMESPACE:-auto}

PIDS=()
NS_PIDS=()
# A private mount namespace (nothing reaches the host's /run, /var, /etc) that
# is also a PID namespace: if this script dies, --kill-child kills the inner
# script, and with it (PID 1 of the namespace) every process inside.
UNSHARE=(unshare --mount --propagation private --pid --fork --kill-child --mount-proc --)

log() { printf '%s\n' "$*" >&2; }

stop_all() {
    local pid
    # unshare --fork ignores SIGTERM; SIGKILL ends it, its child (PID 1 of the
    # namespace) and so every process in the namespace.
    for pid in "${NS_PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NS_PIDS=()
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}

# wait_socket PATH PID: until PATH is a socket; fails if PID dies or 30 s pass.
wait_socket() {
    local i
    for i in $(seq 3000); do
        [ -S "$1" ] && return 0
        kill -0 "$2" 2>/dev/null || { log "process $2 exited before creating $1"; return 1; }
        sleep 0.01
    done
    log "timed out waiting for $1"
    return 1
}

# fail NAME STEP: report a failed step with the end of the daemon's log.
fail() {
    log "$1: $2 failed; last lines of $WORK/$1.log:"
    tail -n 15 "$WORK/$1.log" >&2 2>/dev/null || true
    stop_all
    return 1
}

# measure NAME SOCKET MODE_ARGS -- CMD...: cold start, memory, round trips.
# Results go to $WORK/NAME.{cold,mem,rtt1,rttN}.kv, daemon output to NAME.log.
# A failed step ends this target (returns 1) but not the comparison.
measure() {
    local name=$1 sock=$2 mode=$3
    shift 4
    local out=$WORK/$name
    log "== $name: cold start ($RUNS runs)"
    "$BENCH" --format kv coldstart --socket "$sock" --runs "$RUNS" --log "$out.log" \
        "${CLEANUP[@]}" -- "$@" >"$out.cold.kv" || fail "$name" "cold start" || return 1
    log "== $name: idle memory"
    "$@" >>"$out.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_socket "$sock" "$pid" || fail "$name" start || return 1
    sleep 1
    # shellcheck disable=SC2086 # $mode is one or two words on purpose
    "$BENCH" --format kv mem --pid "$pid" --socket "$sock" $mode >"$out.mem.kv" ||
        fail "$name" "memory" || return 1
    log "== $name: round trips, 1 connection"
    # shellcheck disable=SC2086
    "$BENCH" --format kv rtt --socket "$sock" --conns 1 --seconds "$RTT_SECONDS" --warmup "$WARMUP" \
        $mode >"$out.rtt1.kv" || fail "$name" "1-connection round trips" || return 1
    log "== $name: round trips, $CONNS connections"
    # shellcheck disable=SC2086
    "$BENCH" --format kv rtt --socket "$sock" --conns "$CONNS" --seconds "$RTT_SECONDS" --warmup "$WARMUP" \
        $mode >"$out.rttN.kv" || fail "$name" "$CONNS-connection round trips" || return 1
    stop_all
}

libvirtd_conf() {
    local dir=$1
    mkdir -p "$dir/sock"
    printf 'unix_sock_dir = "%s"\n' "$dir/sock" >"$dir/libvirtd.conf"
}

run_libvirtd() {
    local dir=$WORK/libvirtd-root
    CLEANUP=(--cleanup "$dir/libvirtd.pid" --cleanup "$dir/sock/libvirt-sock-ro" --cleanup "$dir/sock/libvirt-admin-sock")
    measure libvirtd "$dir/sock/libvirt-sock" "--uri $URI" -- \
        "$LIBVIRTD" -f "$dir/libvirtd.conf" -p "$dir/libvirtd.pid"
}

# Inside the private mount namespace (this script, re-executed by unshare).
in_namespace() {
    local dir=$WORK/libvirtd-root
    mount -t tmpfs -o mode=0755 modvirt-bench-run /run
    local d
    for d in /var/lib /var/cache /var/log; do
        mount -t tmpfs -o mode=0755 modvirt-bench "$d"
    done
    mount --bind "$dir/etc" /etc/libvirt
    mount --bind "$dir/passwd" /etc/passwd
    mount --bind "$dir/group" /etc/group
    run_libvirtd
}

prepare_namespace_files() {
    local dir=$WORK/libvirtd-root
    mkdir -p "$dir/etc"
    cp -a /etc/libvirt/. "$dir/etc/" 2>/dev/null || true
    cp /etc/passwd "$dir/passwd"
    cp /etc/group "$dir/group"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$dir/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$dir/passwd"
}

bench_libvirtd() {
    if [ ! -x "$LIBVIRTD" ]; then
        log "skipping libvirtd: $LIBVIRTD not found;" \
            "install it with: apt-get install libvirt-daemon libvirt-daemon-driver-qemu"
        return
    fi
    if [ "$(id -u)" != 0 ]; then
        log "skipping libvirtd: run as root (system mode, like virtqemud)"
        return
    fi
    libvirtd_conf "$WORK/libvirtd-root"
    if [ "$LIBVIRTD_NAMESPACE" != 0 ] && "${UNSHARE[@]}" true 2>/dev/null; then
        prepare_namespace_files
        WORK=$WORK "${UNSHARE[@]}" "$BASH" "${BASH_SOURCE[0]}" __libvirtd_in_namespace &
        local pid=$! rc=0
        NS_PIDS+=("$pid")
        wait "$pid" || rc=$?
        NS_PIDS=()
        return $rc
    fi
    log "libvirtd runs without a mount namespace: it writes state under /run/libvirt and /etc/libvirt"
    if ! getent passwd libvirt-qemu >/dev/null; then
        log "skipping libvirtd: user libvirt-qemu is missing (apt-get install libvirt-daemon-system creates it)"
        return
    fi
    local had_run=0 had_secrets=0 had_nwfilter=0
    [ -e /run/libvirt ] && had_run=1
    [ -e /etc/libvirt/secrets ] && had_secrets=1
    [ -e /etc/libvirt/nwfilter ] && had_nwfilter=1
    local rc=0
    run_libvirtd || rc=$?
    [ $had_run = 1 ] || rm -rf /run/libvirt
    [ $had_secrets = 1 ] || rmdir /etc/libvirt/secrets 2>/dev/null || true
    [ $had_nwfilter = 1 ] || rmdir /etc/libvirt/nwfilter 2>/dev/null || true
    return $rc
}

bench_ours() {
    if [ ! -x "$VIRTQEMUD" ]; then
        log "skipping virtqemud: $VIRTQEMUD not found (build it, or set VIRTQEMUD=path)"
        return
    fi
    local dir=$WORK/virtqemud-root rl
    rl=$dir/run/libvirt
    mkdir -p "$dir"
    CLEANUP=(--cleanup "$rl/virtqemud-sock-ro" --cleanup "$rl/virtqemud-admin-sock")
    measure virtqemud "$rl/virtqemud-sock" "--uri $URI" -- "$VIRTQEMUD" --root "$dir" --timeout 0
}

bench_echo() {
    CLEANUP=()
    measure echo "$WORK/echo.sock" "--raw" -- "$BENCH" echo-server --socket "$WORK/echo.sock"
}

# kv NAME SUFFIX KEY: a value from a result file, or "-".
kv() {
    local f=$WORK/$1.$2.kv v
    v=$(sed -n "s/^$3=//p" "$f" 2>/dev/null | head -n1)
    printf '%s' "${v:--}"
}

# cell NAME SUFFIX: "calls/s (µs/call)" from a round-trip result, or "-".
cell() {
    awk -v r="$(kv "$1" "$2" rtt_calls_per_sec)" -v u="$(kv "$1" "$2" rtt_us_per_call)" \
        'BEGIN { if (r == "-" || u == "-") print "-"; else printf "%.0f (%.1f)\n", r, u }'
}

# ratio A B: A/B with 2 decimals, or "-".
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'
}

report() {
    local fmt='%-10s | %13s | %12s | %7s | %15s | %22s | %22s\n' t
    printf "$fmt" target "cold start ms" "idle RSS KiB" threads "RSS +1 cli KiB" "1-conn calls/s (µs)" "$CONNS-conn calls/s (µs)"
    printf "$fmt" ---------- ------------- ------------ ------- --------------- ---------------------- ----------------------
    for t in libvirtd virtqemud echo; do
        [ -s "$WORK/$t.cold.kv" ] || { printf "$fmt" "$t" "skipped" - - - - -; continue; }
        printf "$fmt" "$t" "$(kv "$t" cold coldstart_ms_median)" "$(kv "$t" mem idle_rss_kib)" \
            "$(kv "$t" mem idle_threads)" "$(kv "$t" mem client_rss_kib)" \
            "$(cell "$t" rtt1)" "$(cell "$t" rttN)"
    done
    echo
    echo "cold start min / median / max (ms), $RUNS runs:"
    for t in libvirtd virtqemud echo; do
        [ -s "$WORK/$t.cold.kv" ] && printf '  %-10s %s / %s / %s\n' "$t" "$(kv "$t" cold coldstart_ms_min)" \
            "$(kv "$t" cold coldstart_ms_median)" "$(kv "$t" cold coldstart_ms_max)"
    done
    echo "1-conn latency p50 / p99 (µs):"
    for t in libvirtd virtqemud echo; do
        [ -s "$WORK/$t.rtt1.kv" ] && printf '  %-10s %s / %s\n' "$t" "$(kv "$t" rtt1 rtt_lat_p50_us)" "$(kv "$t" rtt1 rtt_lat_p99_us)"
    done
    echo
    echo "ratios (< 1 means ours is smaller/faster for times and sizes, higher for calls/s):"
    printf '  ours / libvirtd: cold start %s, idle RSS %s, threads %s, 1-conn µs/call %s, %s-conn calls/s %s\n' \
        "$(ratio "$(kv virtqemud cold coldstart_ms_median)" "$(kv libvirtd cold coldstart_ms_median)")" \
        "$(ratio "$(kv virtqemud mem idle_rss_kib)" "$(kv libvirtd mem idle_rss_kib)")" \
        "$(ratio "$(kv virtqemud mem idle_threads)" "$(kv libvirtd mem idle_threads)")" \
        "$(ratio "$(kv virtqemud rtt1 rtt_us_per_call)" "$(kv libvirtd rtt1 rtt_us_per_call)")" "$CONNS" \
        "$(ratio "$(kv virtqemud rttN rtt_calls_per_sec)" "$(kv libvirtd rttN rtt_calls_per_sec)")"
    printf '  ours / echo:     1-conn µs/call %s, %s-conn µs/call %s\n' \
        "$(ratio "$(kv virtqemud rtt1 rtt_us_per_call)" "$(kv echo rtt1 rtt_us_per_call)")" "$CONNS" \
        "$(ratio "$(kv virtqemud rttN rtt_us_per_call)" "$(kv echo rttN rtt_us_per_call)")"
    printf '  libvirtd / echo: 1-conn µs/call %s, %s-conn µs/call %s\n' \
        "$(ratio "$(kv libvirtd rtt1 rtt_us_per_call)" "$(kv echo rtt1 rtt_us_per_call)")" "$CONNS" \
        "$(ratio "$(kv libvirtd rttN rtt_us_per_call)" "$(kv echo rttN rtt_us_per_call)")"
}

if [ "${1:-}" = __libvirtd_in_namespace ]; then
    trap stop_all EXIT
    trap 'exit 143' INT TERM
    in_namespace
    exit 0
fi

if [ ! -x "$BENCH" ]; then
    log "$BENCH not found: run cargo build --release -p modvirt-admin"
    exit 1
fi
case ${TMPDIR:-/tmp} in
/run* | /var*) log "TMPDIR must not be under /run or /var (hidden inside libvirtd's namespace)"; exit 1 ;;
esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/modvirt-rpc-compare.XXXXXX")
had_run_libvirt=0
[ -e /run/libvirt ] && had_run_libvirt=1
cleanup() {
    stop_all
    if [ $had_run_libvirt = 0 ] && [ -e /run/libvirt ]; then
        log "warning: something created /run/libvirt during the run; removing it:"
        find /run/libvirt >&2 || true
        rm -rf /run/libvirt
    fi
    if [ "${KEEP:-0}" = 1 ]; then log "results kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "work dir $WORK; $(nproc) CPUs; $RUNS cold starts, ${RTT_SECONDS}s windows after ${WARMUP}s warm-up"
bench_libvirtd || log "libvirtd: incomplete, see above"
bench_ours || log "virtqemud: incomplete, see above"
bench_echo || log "echo: incomplete, see above"
echo
report

#!/usr/bin/env bash
# qemu-compare.sh — the QEMU driver side by side with Debian's libvirtd, in
# one run, with the real virsh against each:
#   start     `virsh start` of a 64 MiB TCG guest with no disks, until the
#             command returns with the guest running (median of $STARTS), and
#             QEMU alone: exec to QMP greeting with the same kind of command line
#   define    1,000 `define` commands in one virsh session
#   list      `virsh list --all` with 1,000 defined domains (median of 5)
#   rss       the daemon's VmRSS with 1,000 defined domains
# Figures are whole-process times of the virsh commands.
#
# libvirtd runs in a private mount + PID namespace with tmpfs over /run,
# /var/lib, /var/cache, /var/log and a copy of /etc/libvirt (qemu.conf set to
# run guests as root), so nothing of the host's libvirt state is touched
# (see rpc-compare.sh). Skipped if /usr/sbin/libvirtd is missing.
#
# Usage: cargo build --release -p virtqemud && benches/qemu-compare.sh   (N=1000 STARTS=5)
set -euo pipefail
cd "$(dirname "$0")/.."
VIRTQEMUD=${VIRTQEMUD:-$PWD/target/release/virtqemud}
LIBVIRTD=${LIBVIRTD:-/usr/sbin/libvirtd}
N=${N:-1000}
STARTS=${STARTS:-5}
WORK=${WORK:-$(mktemp -d)}
export WORK N STARTS

xml() { # name uuid-suffix
    printf "<domain type='qemu'><name>%s</name><uuid>6a1f0b3e-52c4-4c1e-9d2a-%012x</uuid>" "$1" "$2"
    printf "<memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>"
    printf "<devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>\n"
}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# workload NAME URI PID: prints "NAME key=value" lines.
workload() {
    local name=$1 uri=$2 pid=$3 dir=$WORK/$1-xml
    mkdir -p "$dir"
    xml bench-vm 0 >"$dir/vm.xml"
    virsh -q -c "$uri" define "$dir/vm.xml" >/dev/null
    local times=() t0
    for _ in $(seq "$STARTS"); do
        t0=$(now)
        virsh -q -c "$uri" start bench-vm >/dev/null
        times+=("$(echo "$(now) - $t0" | bc)")
        virsh -q -c "$uri" destroy bench-vm >/dev/null
    done
    echo "$name start_s=$(printf '%s\n' "${times[@]}" | median)"
    virsh -q -c "$uri" undefine bench-vm >/dev/null
    : >"$dir/cmds"
    for i in $(seq "$N"); do
        xml "vm$i" "$i" >"$dir/vm$i.xml"
        echo "define $dir/vm$i.xml" >>"$dir/cmds"
    done
    t0=$(now)
    virsh -q -c "$uri" <"$dir/cmds" >/dev/null
    echo "$name define_${N}_s=$(echo "$(now) - $t0" | bc)"
    times=()
    for _ in 1 2 3 4 5; do
        t0=$(now)
        virsh -q -c "$uri" list --all >/dev/null
        times+=("$(echo "$(now) - $t0" | bc)")
    done
    echo "$name list_all_${N}_s=$(printf '%s\n' "${times[@]}" | median)"
    echo "$name rss_${N}_kib=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")"
}

# QEMU alone: exec until its QMP socket is listening (bash polling, no
# interpreter start-up in the figure).
qemu_alone() {
    local times=() s t0
    for i in $(seq "$STARTS"); do
        s=$WORK/qmp$i.sock
        t0=$(now)
        qemu-system-x86_64 -S -nodefaults -no-user-config -display none -machine pc -accel tcg -m 64 \
            -qmp "unix:$s,server=on,wait=off" &
        local qpid=$!
        until [ -S "$s" ]; do :; done
        times+=("$(echo "$(now) - $t0" | bc)")
        kill -9 "$qpid"; wait "$qpid" 2>/dev/null || true
    done
    echo "qemu-alone start_s=$(printf '%s\n' "${times[@]}" | median)"
}

in_namespace() {
    local dir=$WORK/libvirtd-root
    mount -t tmpfs -o mode=0755 modvirt-bench-run /run
    for d in /var/lib /var/cache /var/log; do mount -t tmpfs -o mode=0755 modvirt-bench "$d"; done
    mount --bind "$dir/etc" /etc/libvirt
    mount --bind "$dir/passwd" /etc/passwd
    mount --bind "$dir/group" /etc/group
    "$LIBVIRTD" -f "$dir/libvirtd.conf" -p "$dir/libvirtd.pid" >"$WORK/libvirtd.log" 2>&1 &
    local pid=$!
    for _ in $(seq 3000); do [ -S "$dir/sock/libvirt-sock" ] && break; sleep 0.01; done
    workload libvirtd "qemu:///system?socket=$dir/sock/libvirt-sock" "$pid"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}
if [ "${1:-}" = __in_namespace ]; then in_namespace; exit; fi

cleanup() { [ -n "${OURS:-}" ] && kill "$OURS" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
qemu_alone
mkdir -p "$WORK/ours"
"$VIRTQEMUD" --root "$WORK/ours" --timeout 0 2>"$WORK/ours.log" &
OURS=$!
for _ in $(seq 500); do [ -S "$WORK/ours/run/libvirt/virtqemud-sock" ] && break; sleep 0.01; done
workload virtqemud "qemu:///system?socket=$WORK/ours/run/libvirt/virtqemud-sock" "$OURS"
kill "$OURS"; wait "$OURS" 2>/dev/null || true; OURS=
if [ -x "$LIBVIRTD" ] && [ "$(id -u)" = 0 ]; then
    dir=$WORK/libvirtd-root
    mkdir -p "$dir/etc" "$dir/sock"
    cp -a /etc/libvirt/. "$dir/etc/" 2>/dev/null || true
    printf 'user = "root"\ngroup = "root"\nstdio_handler = "file"\n' >>"$dir/etc/qemu.conf"
    # libvirt resolves its default guest user before reading qemu.conf.
    cp /etc/passwd "$dir/passwd"
    cp /etc/group "$dir/group"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$dir/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$dir/passwd"
    printf 'unix_sock_dir = "%s"\n' "$dir/sock" >"$dir/libvirtd.conf"
    unshare --mount --propagation private --pid --fork --kill-child --mount-proc -- \
        "$BASH" "${BASH_SOURCE[0]}" __in_namespace
else
    echo "(libvirtd skipped: $LIBVIRTD missing or not root)" >&2
fi

#!/usr/bin/env bash
# Builds modvirt and runs its daemons on a private root (./.modvirt by
# default, or $MODVIRT_ROOT), never touching the machine's /run/libvirt.
# Prints how to reach them with the real virsh / virt-admin; Ctrl-C stops.
# The daemons run in a network namespace of their own (MODVIRT_NETNS=0 to
# use the host's), so the bridges virtnetworkd makes stay out of the host.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT="${MODVIRT_ROOT:-$PWD/.modvirt}"
mkdir -p "$ROOT"
ROOT="$(cd "$ROOT" && pwd)"

cargo build --release -p virtqemud -p virtnetworkd -p modvirt-admin
BIN="$PWD/target/release"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Daemons virtqemud started on demand (virtnetworkd, …) run on their own.
    for f in "$ROOT"/run/*.pid; do
        [[ -f $f ]] && kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

NETNS=()
[[ ${MODVIRT_NETNS:-1} == 1 ]] && NETNS=(unshare --net --)
"${NETNS[@]}" "$BIN/virtqemud" --root "$ROOT" --timeout 0 -v &
pids+=($!)

S="$ROOT/run/libvirt"
for _ in $(seq 100); do [[ -S "$S/virtqemud-admin-sock" ]] && break; sleep 0.05; done
[[ -S "$S/virtqemud-admin-sock" ]] || { echo "virtqemud did not start" >&2; exit 1; }

cat <<MSG

modvirt is running on the private root $ROOT
  virtqemud  pid ${pids[0]}

Reach it with the real libvirt clients (Debian package libvirt-clients):
  virsh -c 'qemu:///system?socket=$S/virtqemud-sock' version
  virsh -r -c 'qemu:///system?socket=$S/virtqemud-sock-ro' hostname
  virsh -c 'qemu:///system?socket=$S/virtqemud-sock' net-list --all   (starts virtnetworkd)
  virsh -c 'network:///system?socket=$S/virtnetworkd-sock' net-list --all
  virt-admin -c 'virtqemud:///system?socket=$S/virtqemud-admin-sock' srv-list
  virt-admin -c 'virtqemud:///system?socket=$S/virtqemud-admin-sock' srv-clients-list virtqemud

Observe them (why each runs, what keeps it alive, start-up, hangs, spans):
  $BIN/virt-daemons --root $ROOT status
  $BIN/virt-daemons --root $ROOT why virtqemud
  $BIN/virt-daemons --root $ROOT boot

Press Ctrl-C to stop.
MSG
command -v virsh >/dev/null || echo "(virsh is not installed: apt-get install libvirt-clients)"
wait "${pids[0]}"

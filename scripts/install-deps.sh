#!/usr/bin/env bash
# Installs what modvirt's tests need on Debian 12 (run as root, or via sudo).
# Idempotent: packages already present are left alone.
set -euo pipefail

PACKAGES=(
    libvirt-clients   # the real virsh and virt-admin 9.0 the daemons must serve
    systemd           # systemd-socket-activate, systemd-analyze verify
    qemu-system-x86   # qemu-system-x86_64 (hypervisor version, later real guests)
    qemu-utils        # qemu-img: virtstoraged creates qcow2 volumes with it
    procps            # pgrep/ps used by scripts
    prometheus        # promtool check metrics
    iproute2          # ip: tests check the bridges virtnetworkd makes (in their own netns)
    util-linux        # unshare, nsenter: those network namespaces
    dnsmasq-base      # dnsmasq: DHCP/DNS of virtnetworkd's NAT networks (in tests, inside their netns)
    nftables          # nft: their forwarding/NAT rules
    busybox           # udhcpc: the DHCP client that takes a lease from that dnsmasq (tests/tests/network_dhcp.rs)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
echo "modvirt test dependencies are installed"

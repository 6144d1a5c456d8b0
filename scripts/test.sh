#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with warnings denied, the
# build, then all unit and end-to-end tests (real virsh/virt-admin against
# real daemons under temporary roots).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace
cargo test --workspace

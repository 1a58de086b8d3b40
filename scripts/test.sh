#!/usr/bin/env bash
# Runs every test of the workspace the way CI does: installs what the tests
# need (scripts/setup.sh), builds every binary (end-to-end tests start them as
# real processes), then runs the tests with cargo-nextest, one process per test.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> installing what the tests need"
bash scripts/setup.sh
echo "==> building every binary (tests start them as real processes)"
cargo build --workspace --bins --locked
echo "==> running the tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"

#!/usr/bin/env bash
# Runs every test of the workspace the way CI does: installs what the tests
# need (scripts/setup.sh), builds every binary (end-to-end tests start them as
# real processes), runs the tests with cargo-nextest, one process per test,
# then deploys the system into the six-VM lab with the real playbook and
# checks and drills it there (scripts/lab.sh, docs/lab.md; needs root).
#   AUTOBOT_LAB_VERBS="up deploy check down" scripts/test.sh   # the lab without the drills
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> installing what the tests need"
bash scripts/setup.sh
echo "==> building every binary (tests start them as real processes)"
cargo build --workspace --bins --locked
echo "==> running the tests"
cargo nextest run --workspace --locked --no-fail-fast "$@"
echo "==> the six-VM lab: scripts/lab.sh ${AUTOBOT_LAB_VERBS:-up deploy check drill down}"
# shellcheck disable=SC2086 # the verbs are words
bash scripts/lab.sh ${AUTOBOT_LAB_VERBS:-up deploy check drill down}

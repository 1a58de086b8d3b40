#!/usr/bin/env bash
# Runs every test of the workspace the way CI does: installs what the tests
# need (scripts/setup.sh), fails on unformatted code and on any clippy
# warning, builds every binary (end-to-end tests start them as real
# processes), runs the tests with cargo-nextest, one process per test, then
# deploys the system into the six-VM lab with the real playbook and checks and
# drills it there (scripts/lab.sh, docs/lab.md; needs root).
# Each stage says how long it took; the first that fails stops the run.
#   AUTOBOT_LAB_VERBS="up deploy check down" scripts/test.sh   # the lab without the drills
set -euo pipefail
cd "$(dirname "$0")/.."

started_all=$SECONDS
stage() {
  local name="$1"
  shift
  echo "==> $name"
  local started=$SECONDS
  if ! "$@"; then
    echo "==> FAILED: $name (after $((SECONDS - started)) s): $*" >&2
    exit 1
  fi
  echo "==> done: $name in $((SECONDS - started)) s"
}

stage "installing what the tests need" bash scripts/setup.sh
stage "checking formatting" cargo fmt --all --check
stage "linting" cargo clippy --workspace --all-targets --locked -- -D warnings
stage "building every binary (tests start them as real processes)" \
  cargo build --workspace --bins --locked
stage "running the tests" cargo nextest run --workspace --locked --no-fail-fast "$@"
# shellcheck disable=SC2086 # the verbs are words
stage "the six-VM lab: scripts/lab.sh ${AUTOBOT_LAB_VERBS:-up deploy check drill down}" \
  bash scripts/lab.sh ${AUTOBOT_LAB_VERBS:-up deploy check drill down}
echo "==> all stages passed in $((SECONDS - started_all)) s"

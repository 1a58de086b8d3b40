#!/usr/bin/env bash
# Installs what the tests and the local run need, idempotently, saying what it does.
# Each piece lives in scripts/setup.d/*.sh and is run in name order.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for step in "$here"/setup.d/*.sh; do
  [ -e "$step" ] || continue
  echo "==> setup: $(basename "$step")"
  bash "$step"
done

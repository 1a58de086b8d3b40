#!/usr/bin/env bash
# Tools bench/run.sh and bench/profile.sh use besides wrk (10-apt.sh):
# curl and jq (readiness and the trace tool's span count), valgrind (the
# callgrind profile), python3-venv (the --python comparison's venv).
set -euo pipefail
need=()
for pkg in curl jq valgrind; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# A python3 that can already make a venv (pyenv, or the package) needs nothing.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -eq 0 ]; then
  echo "bench tools present"
  exit 0
fi
echo "installing bench tools: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

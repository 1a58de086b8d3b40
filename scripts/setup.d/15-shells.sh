#!/usr/bin/env bash
# Login shells the hostile-input tests give SSH target users (tools/hostile):
# the PKI agent's command must run the same under sh, bash, zsh, fish and tcsh.
set -euo pipefail
need=()
for pkg in zsh fish tcsh; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "login shells present (zsh fish tcsh)"
  exit 0
fi
echo "installing login shells: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

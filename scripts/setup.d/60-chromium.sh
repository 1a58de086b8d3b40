#!/usr/bin/env bash
# Debian's chromium and chromium-driver: the web UI tests (the trace tool's UI,
# AutoBot's page) drive headless Chromium through chromedriver (WebDriver).
# No browser download from anywhere else; idempotent.
set -euo pipefail
need=()
for pkg in chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "chromium present: $(chromium --version 2>/dev/null || echo '?')"
  exit 0
fi
echo "installing apt packages: ${need[*]} (headless browser tests)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "chromium installed: $(chromium --version 2>/dev/null || echo '?')"

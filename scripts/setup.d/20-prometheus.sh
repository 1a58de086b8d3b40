#!/usr/bin/env bash
# Debian's prometheus (with promtool) and prometheus-alertmanager: the tests
# start a real Prometheus that scrapes the services and run `promtool check`
# and `promtool test rules` on infra/prometheus/; scripts/run.sh starts one
# too. The packages' own services are stopped and disabled: tests and the
# local run start their own, on ports of their choosing.
set -euo pipefail
need=()
for pkg in prometheus prometheus-alertmanager; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "prometheus packages present ($(prometheus --version 2>&1 | head -n1))"
  exit 0
fi
echo "installing apt packages: ${need[*]} (Prometheus, promtool, Alertmanager)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# policy-rc.d 101: the packages' postinst must not start a system Prometheus
# on :9090 (a machine without systemd would otherwise run one from init.d).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  made_policy=1
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
[ "$made_policy" = 1 ] && $SUDO rm -f "$policy"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus prometheus-alertmanager >/dev/null 2>&1 || true
fi
echo "installed: $(prometheus --version 2>&1 | head -n1); $(promtool --version 2>&1 | head -n1)"

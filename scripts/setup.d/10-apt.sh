#!/usr/bin/env bash
# Debian packages: the real servers tests start (redis-server, sshd), and load tools.
set -euo pipefail
need=()
for pkg in redis-server openssh-server openssh-client openssl wrk hyperfine; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# sshd refuses to start, even for `sshd -T`, without its privilege separation
# directory; on a machine without systemd nothing creates it at boot.
ensure_privsep_dir() {
  [ -d /run/sshd ] && return 0
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO mkdir -p /run/sshd && $SUDO chmod 0755 /run/sshd
}
if [ ${#need[@]} -eq 0 ]; then
  ensure_privsep_dir
  echo "apt packages present"
  exit 0
fi
echo "installing apt packages: ${need[*]}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package starts a system redis and sshd; tests start their own on ephemeral ports.
ensure_privsep_dir

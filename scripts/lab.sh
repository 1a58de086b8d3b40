#!/usr/bin/env bash
# The six-VM lab: AutoBot's VMs as systemd-nspawn machines on one bridge,
# deployed by the real playbook (docs/lab.md).
#
#   scripts/lab.sh up        base image (cached), bridge, six machines booted, SSH reachable
#   scripts/lab.sh deploy    release binaries, then ansible-playbook site.yml over SSH
#   scripts/lab.sh env       shell assignments for using the lab from the host (eval "$(scripts/lab.sh env)")
#   scripts/lab.sh check     services, users, exposure scores, whole traces, idempotence, isolation
#   scripts/lab.sh drill     the four fault drills (or: drill jaeger|redis|npu|pki)
#   scripts/lab.sh down      every machine stopped, bridge and mounts removed (safe to repeat)
#   scripts/lab.sh stop [--hard] NAME, start NAME
#                            power one machine off (--hard: cut the power) / on again (its disk is kept)
#   scripts/lab.sh status    which machines run
#
# Verbs run in order and each prints its time: `scripts/lab.sh up deploy check down`.
# When a verb fails the others are skipped, except `down`, which still runs.
# Run as root. State: $AUTOBOT_LAB_DIR (/var/lib/autobot-lab); base images:
# $AUTOBOT_LAB_CACHE (/var/cache/autobot-lab), one per package list.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lab_sh="$repo/scripts/lab.sh"
lab="${AUTOBOT_LAB_DIR:-/var/lib/autobot-lab}"
cache="${AUTOBOT_LAB_CACHE:-/var/cache/autobot-lab}"
bridge="br-autobot-lab"
suite="bookworm"
mirrors=(
  "deb http://deb.debian.org/debian $suite main"
  "deb http://deb.debian.org/debian $suite-updates main"
  "deb http://deb.debian.org/debian-security $suite-security main"
)
venv="$repo/.run/venv-ansible"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$repo/$CARGO_TARGET_DIR" ;; esac
bin="$CARGO_TARGET_DIR/release"
# The release binaries the lab deploys (site.yml's, the lab's outside world, the drills).
packages_built=(autobot-backend autobot-pki-distributor autobot-npu-worker autobot-ai-stack
  autobot-browser autobot-trace autobot-standins autobot-lab)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "lab.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

case "$lab" in /?*) ;; *) die "AUTOBOT_LAB_DIR must be an absolute path, not '$lab'" ;; esac
[ "$lab" != "/" ] || die "AUTOBOT_LAB_DIR must not be /"

need_root() { [ "$(id -u)" -eq 0 ] || die "the lab needs root (network namespaces, machines): sudo $0 $*"; }

# Installs Debian packages the lab's host side needs, when missing.
need_host_packages() {
  local need=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  [ ${#need[@]} -eq 0 ] && return 0
  say "installing on the host: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}

need_venv() {
  [ -x "$venv/bin/ansible-playbook" ] || bash "$repo/scripts/setup.d/40-ansible.sh"
}

# ---------------------------------------------------------------- the inventory

# "name address" per machine, from ansible/inventory/hosts.yml with the
# addresses of ansible/group_vars/all.yml: the lab boots exactly the VMs the
# playbook deploys.
inventory_machines() {
  "$venv/bin/python" - "$repo/ansible" <<'PY'
import ipaddress, pathlib, sys, yaml, jinja2
root = pathlib.Path(sys.argv[1])
group_vars = yaml.safe_load((root / "group_vars/all.yml").read_text())
inventory = yaml.safe_load((root / "inventory/hosts.yml").read_text())
hosts = {}
def walk(group):
    for name, hv in ((group or {}).get("hosts") or {}).items():
        hosts[name] = (hv or {}).get("ansible_host", name)
    for child in ((group or {}).get("children") or {}).values():
        walk(child)
walk(inventory["all"])
env = jinja2.Environment(undefined=jinja2.StrictUndefined)
for name, host in hosts.items():
    address = env.from_string(str(host)).render(**group_vars)
    ip = ipaddress.ip_address(address)
    if ip not in ipaddress.ip_network("172.16.168.0/24") or str(ip).endswith(".1"):
        sys.exit(f"{name}: {ip} is outside the lab's 172.16.168.2-254")
    print(name, ip)
PY
}

# Packages the roles install with apt/package (literal names only).
role_packages() {
  "$venv/bin/python" - "$repo/ansible/roles" <<'PY'
import pathlib, sys, yaml
names = set()
modules = {"apt", "ansible.builtin.apt", "package", "ansible.builtin.package"}
def walk(node, where):
    if isinstance(node, list):
        for item in node: walk(item, where)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in modules and isinstance(value, dict) and "name" in value:
                wanted = value["name"]
                for n in (wanted if isinstance(wanted, list) else [wanted]):
                    if "{{" in str(n):
                        sys.exit(f"{where}: the lab cannot tell which package {n!r} is; "
                                 "name it in infra/lab/packages")
                    names.add(str(n))
            else:
                walk(value, where)
# A role that adds its own apt repository (grafana: Grafana's) installs
# packages Debian does not have; such roles are opt-in and not in the lab.
third_party = {f.parent.parent for f in pathlib.Path(sys.argv[1]).glob("*/tasks/*.yml")
               if "apt_repository" in f.read_text()}
for f in sorted(pathlib.Path(sys.argv[1]).glob("*/tasks/*.yml")):
    if f.parent.parent not in third_party:
        walk(yaml.safe_load(f.read_text()), f)
print("\n".join(sorted(names)))
PY
}

image_packages() {
  { grep -v '^\s*\(#\|$\)' "$repo/infra/lab/packages"; role_packages; } | sort -u
}

short_name() { echo "${1#autobot-}"; }

machines() { cat "$lab/machines.list"; }
machine_ip() { awk -v n="$1" '$1 == n || "autobot-"n == $1 { print $2 }' "$lab/machines.list"; }
machine_name() { awk -v n="$1" '$1 == n || "autobot-"n == $1 { print $1 }' "$lab/machines.list"; }

# ---------------------------------------------------------------- the base image

# What the base image is made of; its hash names the cached image.
image_recipe() {
  printf '%s\n' "recipe 2" "$suite" "${mirrors[@]}"
  image_packages
  declare -f customize_base
}

# Runs on the finished root ($1), on the host, before it becomes the base.
customize_base() {
  local root="$1" pkg unit
  # Every machine gets its own host keys and machine id (lab.sh up).
  rm -f "$root"/etc/ssh/ssh_host_*
  : > "$root/etc/machine-id"
  rm -f "$root/etc/hostname"
  # A static address on host0 per machine; no DNS and no route off the bridge.
  chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
  printf '# The lab has no DNS: the machines reach each other by address.\n' > "$root/etc/resolv.conf"
  # No mirror is reachable: apt's timers would only fail (and hold dpkg's lock).
  chroot "$root" systemctl disable apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
  # A package a role installs is in the image of every machine, but its
  # service must run only where a role enables it, as on a fresh VM.
  for pkg in $(role_packages); do
    for unit in $(chroot "$root" dpkg -L "$pkg" 2>/dev/null \
      | grep -E '^/(usr/)?lib/systemd/system/[^/@]+\.(service|socket|timer)$' | xargs -rn1 basename); do
      chroot "$root" systemctl disable "$unit" >/dev/null 2>&1 || true
    done
  done
}

# Builds the base image when the cache has none for this recipe; prints its path.
base_image() {
  local key dir tmp started
  key="$(image_recipe | sha256sum | cut -c1-16)"
  dir="$cache/base-$key"
  if [ -d "$dir" ]; then
    echo "    base image cached: $dir" >&2
    echo "$dir"; return 0
  fi
  need_host_packages mmdebstrap
  mkdir -p "$cache"
  tmp="$cache/.building-$key"
  rm -rf "$tmp"
  local include
  include="$(image_packages | paste -sd, -)"
  say "building the base image (mmdebstrap $suite, minbase + $include)" >&2
  started="$(now)"
  mmdebstrap --quiet --variant=minbase --include="$include" "$suite" "$tmp" "${mirrors[@]}" >&2 \
    || { rm -rf "$tmp"; die "mmdebstrap failed"; }
  customize_base "$tmp"
  mv "$tmp" "$dir"
  echo "    base image built in $(secs "$started") s: $dir ($(du -sh "$dir" 2>/dev/null | cut -f1))" >&2
  # Images of other package lists are stale; none is in use (no machine runs).
  for old in "$cache"/base-*; do
    [ "$old" = "$dir" ] || rm -rf "$old"
  done
  echo "$dir"
}

# ---------------------------------------------------------------- machines

nspawn_pid() { local f="$lab/machines/$1/nspawn.pid"; [ -s "$f" ] && cat "$f"; }
running() { local p; p="$(nspawn_pid "$1")" && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# The machine's own files, written into its empty overlay before the first boot.
seed_machine() {
  local name="$1" ip="$2" up="$lab/machines/$1/upper"
  mkdir -p "$up/etc/ssh" "$up/etc/systemd/network" "$up/root/.ssh"
  echo "$name" > "$up/etc/hostname"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$up/etc/machine-id"; echo >> "$up/etc/machine-id"
  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$up/etc/ssh/ssh_host_ed25519_key"
  printf '[Match]\nName=host0\n\n[Network]\nAddress=%s/24\n' "$ip" > "$up/etc/systemd/network/10-host0.network"
  {
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name"
    while read -r n a; do printf '%s\t%s\n' "$a" "$n"; done < "$lab/machines.list"
  } > "$up/etc/hosts"
  cp "$lab/ssh/control_key.pub" "$up/root/.ssh/authorized_keys"
  chmod 700 "$up/root/.ssh"; chmod 600 "$up/root/.ssh/authorized_keys"
}

# Internal: runs one machine until it powers off; a reboot (exit 133) boots it again.
boot_loop() {
  local name="$1" dir="$lab/machines/$1" rc
  echo $$ > "$dir/launcher.pid"
  while :; do
    systemd-nspawn --quiet --machine="$name" --register=no --keep-unit --boot \
      --directory="$(cat "$lab/base")" --overlay="$(cat "$lab/base"):$dir/upper:/" \
      --network-bridge="$bridge" --console=read-only --link-journal=no \
      --resolv-conf=off --timezone=off &
    echo $! > "$dir/nspawn.pid"
    rc=0; wait $! || rc=$?
    echo "lab: $name's nspawn exited with $rc at $(date -Is)"
    [ "$rc" -eq 133 ] && [ ! -e "$dir/powered-off" ] && continue
    break
  done
  rm -f "$dir/nspawn.pid" "$dir/launcher.pid"
}

start_machine() {
  local name="$1" dir="$lab/machines/$1" old
  running "$name" && return 0
  # The launcher of its last boot may still be tidying up after nspawn exited.
  if [ -s "$dir/launcher.pid" ]; then
    old="$(cat "$dir/launcher.pid")"
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$dir/powered-off" "$dir/nspawn.pid" "$dir/launcher.pid"
  setsid bash "$lab_sh" _boot "$name" </dev/null >>"$dir/console.log" 2>&1 &
  for _ in $(seq 1 50); do [ -s "$dir/nspawn.pid" ] && return 0; sleep 0.1; done
  die "$name did not start: $(tail -n 20 "$dir/console.log")"
}

wait_ssh() {
  local name="$1" deadline=$((SECONDS + ${2:-90}))
  while [ $SECONDS -lt $deadline ]; do
    if ssh -n -F "$lab/ssh/config" -o ConnectTimeout=2 "$name" true 2>/dev/null; then return 0; fi
    running "$name" || die "$name stopped while booting: $(tail -n 30 "$lab/machines/$name/console.log")"
    sleep 0.5
  done
  die "$name: no SSH within ${2:-90} s: $(tail -n 30 "$lab/machines/$name/console.log")"
}

# Powers a machine off the way a VM is (systemd shuts down), waits, kills if it hangs.
stop_machine() {
  local name="$1" dir="$lab/machines/$1" pid
  [ -d "$dir" ] || return 0
  touch "$dir/powered-off"
  pid="$(nspawn_pid "$name")" || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "    $name did not shut down within 30 s: killing its nspawn ($pid)"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

# Pulls the plug: the machine's link goes down first, so that it vanishes
# from the network at once as a powered-off VM does (the kernel would
# otherwise reset its TCP connections as it tears the namespace down), then
# SIGKILL to its PID 1 ends every process in it, and nspawn exits.
cut_power() {
  local name="$1" dir="$lab/machines/$1" pid init link veth
  touch "$dir/powered-off"
  pid="$(nspawn_pid "$name")" || return 0
  init="$(pgrep -P "$pid" | head -n1 || true)"
  [ -n "$init" ] || return 0
  link="$(nsenter -t "$init" -n ip -o link show host0 2>/dev/null | sed -n 's/.*host0@if\([0-9]*\):.*/\1/p')"
  veth="$(ip -o link | awk -F': ' -v i="$link" '$1 == i { sub(/@.*/, "", $2); print $2 }')"
  if [ -n "$veth" ]; then
    ip link set dev "$veth" down
  else
    echo "lab.sh: $name's link on $bridge not found: its connections may see a reset" >&2
  fi
  kill -KILL "$init" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

write_ssh_config() {
  local name ip
  {
    while read -r name ip; do
      printf 'Host %s %s %s\n  HostName %s\n' "$name" "$(short_name "$name")" "$ip" "$ip"
    done < "$lab/machines.list"
    cat <<EOF
Host *
  User root
  IdentityFile $lab/ssh/control_key
  IdentitiesOnly yes
  UserKnownHostsFile $lab/ssh/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  ServerAliveInterval 5
  ServerAliveCountMax 2
  ControlMaster auto
  ControlPath $lab/ssh/cm-%C
  ControlPersist 30
  LogLevel ERROR
EOF
  } > "$lab/ssh/config"
  while read -r name ip; do
    printf '%s,%s %s\n' "$ip" "$name" \
      "$(cut -d' ' -f1,2 "$lab/machines/$name/upper/etc/ssh/ssh_host_ed25519_key.pub")"
  done < "$lab/machines.list" > "$lab/ssh/known_hosts"
}

# ---------------------------------------------------------------- verbs

verb_up() {
  need_root up
  need_host_packages systemd-container mmdebstrap openssh-client
  need_venv
  local name ip any_running=false
  if [ -f "$lab/machines.list" ]; then
    while read -r name ip; do running "$name" && any_running=true; done < "$lab/machines.list"
  fi
  if $any_running; then
    say "the lab is up already (scripts/lab.sh down first for a fresh one)"
    return 0
  fi
  # A half-made lab (failed up, killed run) goes first.
  verb_down >/dev/null
  mkdir -p "$lab/machines" "$lab/ssh"
  inventory_machines > "$lab/machines.list" || die "cannot read the machines from ansible/inventory"
  # Refuse to take addresses this host already uses elsewhere.
  if ip -4 -o addr show | grep -v " $bridge " | grep -q ' inet 172\.16\.168\.'; then
    die "172.16.168.0/24 is already on an interface of this host: $(ip -4 -o addr show | grep ' 172\.16\.168\.')"
  fi
  local base
  base="$(base_image)"
  echo "$base" > "$lab/base"

  # The host has no systemd as PID 1: nspawn needs this tmpfs (docs/lab.md).
  if ! mountpoint -q /run/systemd/nspawn; then
    mkdir -p /run/systemd/nspawn
    mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn
    touch "$lab/mounted-nspawn-tmpfs"
  fi
  ip link add "$bridge" type bridge
  touch "$lab/bridge"
  ip addr add 172.16.168.1/24 dev "$bridge"
  ip link set "$bridge" up

  ssh-keygen -q -t ed25519 -N '' -C "autobot-lab-control" -f "$lab/ssh/control_key"
  while read -r name ip; do
    mkdir -p "$lab/machines/$name"
    seed_machine "$name" "$ip"
  done < "$lab/machines.list"
  write_ssh_config

  local started; started="$(now)"
  while read -r name ip; do start_machine "$name"; done < "$lab/machines.list"
  while read -r name ip; do
    wait_ssh "$name"
    echo "    $name ($ip): SSH answers, $(secs "$started") s after the first boot started"
  done < "$lab/machines.list"
  while read -r name ip; do settle_machine "$name"; done < "$lab/machines.list"
  say "six machines up: eval \"\$(scripts/lab.sh env)\" then \$LAB_SSH main"
}

# The machines whose systemd failed a unit with 219/CGROUP since epoch second $1.
machines_with_cgroup_failures() {
  local name ip
  while read -r name ip; do
    if ssh -n -F "$lab/ssh/config" "$name" "journalctl --no-pager -q --since @$1 | grep -q 'status=219/CGROUP'" 2>/dev/null; then
      printf '%s ' "$name"
    fi
  done < "$lab/machines.list"
}

# Waits until a booted machine's systemd has finished starting, and starts
# again any unit that failed to. With six machines booting at once, systemd
# in a machine now and then fails an early unit with status 219/CGROUP (its
# cgroup not set up in time). When that unit is systemd-user-sessions,
# /run/nologin stays and pam_nologin refuses every login but root's: the
# distributor's agent login fails with "closed during authentication". A
# unit that fails again stops the lab here, naming it.
settle_machine() {
  local name="$1" state try
  for try in 1 2 3; do
    state="$(ssh -n -F "$lab/ssh/config" "$name" systemctl is-system-running --wait 2>/dev/null || true)"
    [ "$state" = running ] && return 0
    echo "    $name: systemd says '$state'; failed units:"
    ssh -n -F "$lab/ssh/config" "$name" systemctl --failed --no-legend || true
    [ "$try" -lt 3 ] || break
    echo "    $name: starting them again (try $try)"
    ssh -n -F "$lab/ssh/config" "$name" \
      'units="$(systemctl --failed --no-legend --plain | awk "{print \$1}")"; systemctl reset-failed; [ -z "$units" ] || systemctl restart $units' || true
  done
  die "$name: systemd is '$state' after starting the failed units again"
}

# Ends the SSH connections kept open to the machines (ours and ansible's).
close_ssh_masters() {
  local socket
  for socket in "$lab"/ssh/cm-* "$lab"/ansible-cp/*; do
    [ -S "$socket" ] || continue
    ssh -o ControlPath="$socket" -O exit lab-machine >/dev/null 2>&1 || true
  done
}

verb_down() {
  need_root down
  local dir name pid
  close_ssh_masters
  if [ -d "$lab/machines" ]; then
    for dir in "$lab"/machines/*/; do
      [ -d "$dir" ] || continue
      name="$(basename "$dir")"
      touch "$dir/powered-off"
      pid="$(nspawn_pid "$name")" && kill -TERM "$pid" 2>/dev/null || true
    done
    for dir in "$lab"/machines/*/; do
      [ -d "$dir" ] || continue
      stop_machine "$(basename "$dir")"
    done
  fi
  # A machine whose pid file was lost (a killed lab.sh) is found by its overlay.
  for pid in $(pgrep -x systemd-nspawn || true); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--overlay=[^ ]*:$lab/machines/"; then
      echo "    stopping a lab machine without a pid file (nspawn $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if ip link show "$bridge" >/dev/null 2>&1; then ip link del "$bridge"; fi
  # Mounts the lab made on the host: any under its state, the nspawn tmpfs.
  local m
  for m in $(findmnt -rn -o TARGET | grep "^$lab/" | sort -r || true); do umount -l "$m" || true; done
  if [ -e "$lab/mounted-nspawn-tmpfs" ] && mountpoint -q /run/systemd/nspawn; then
    umount /run/systemd/nspawn || umount -l /run/systemd/nspawn
    rmdir /run/systemd/nspawn 2>/dev/null || true
  fi
  rm -rf "$lab"
  echo "    lab down: no machine, no $bridge, nothing under $lab"
}

verb_status() {
  [ -f "$lab/machines.list" ] || { echo "the lab is down"; return 0; }
  local name ip
  while read -r name ip; do
    if running "$name"; then echo "$name $ip running"; else echo "$name $ip off"; fi
  done < "$lab/machines.list"
}

require_up() {
  [ -f "$lab/machines.list" ] || die "the lab is down: scripts/lab.sh up first"
  local name ip
  while read -r name ip; do
    running "$name" || die "$name is not running (scripts/lab.sh start $(short_name "$name"))"
  done < "$lab/machines.list"
}

# ansible-playbook with the lab's inventory and SSH settings (host keys
# checked). The secrets site.yml makes (operator key, Redis passwords) stay
# with the lab's state: an extra variable, since ansible/group_vars (next to
# the playbook) wins over the inventory's group_vars.
lab_ansible() {
  ( cd "$repo/ansible"
    ANSIBLE_CONFIG="$repo/ansible/ansible.cfg" \
    ANSIBLE_SSH_CONTROL_PATH_DIR="$lab/ansible-cp" \
    ANSIBLE_FORCE_COLOR="${ANSIBLE_FORCE_COLOR:-0}" \
    AUTOBOT_LAB_DIR="$lab" \
      "$venv/bin/ansible-playbook" -i "$repo/infra/lab/inventory" \
        -e "autobot_secrets_dir=$lab/secrets" "$@" )
}

build_release() {
  local args=() p started
  for p in "${packages_built[@]}"; do args+=(-p "$p"); done
  say "building the release binaries ($CARGO_TARGET_DIR/release)"
  started="$(now)"
  ( cd "$repo" && cargo build --release --locked --bins "${args[@]}" )
  echo "    release build: $(secs "$started") s"
}

verb_deploy() {
  need_root deploy
  require_up
  need_venv
  build_release
  bash "$repo/scripts/setup.d/30-model.sh"
  local started
  say "the lab's outside world: an LLM stand-in on ai-stack, a web site on frontend (infra/lab/outside.yml)"
  started="$(now)"
  lab_ansible "$repo/infra/lab/outside.yml"
  echo "    outside world: $(secs "$started") s"
  say "ansible-playbook -i infra/lab/inventory site.yml"
  started="$(now)"
  local since; since="$(date +%s)"
  lab_ansible site.yml | tee "$lab/deploy.log"
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    # systemd in a lab machine now and then fails a unit's start with
    # 219/CGROUP (its new cgroup gone before the process joins it: the
    # host's cgroup v1, docs/lab.md). Only then is site.yml run once more;
    # any other failure stops here.
    local flaked; flaked="$(machines_with_cgroup_failures "$since")"
    [ -n "$flaked" ] || die "site.yml failed (log: $lab/deploy.log)"
    say "site.yml failed; systemd failed a unit start with 219/CGROUP on: $flaked. Running site.yml once more"
    lab_ansible site.yml | tee "$lab/deploy-again.log"
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "site.yml failed twice (logs: $lab/deploy.log, $lab/deploy-again.log)"
  fi
  echo "    site.yml: $(secs "$started") s"
  # The deploy's admin key (made by site.yml's password lookup, the lab
  # inventory's autobot_secrets_dir): what `env` prints as AUTOBOT_API_KEY.
  install -m 0600 "$lab/secrets/api-key-deploy" "$lab/api-key"
  # With the roles' TLS (autobot_tls) the backend serves https with a
  # certificate of the deployment's CA: `env` hands that CA to the checks.
  if lab_ssh_main "grep -q '^AUTOBOT_TLS_CERT=' /etc/autobot/autobot-backend.env"; then
    lab_ssh_main "cat /etc/autobot/certs/ca-cert.pem" > "$lab/ca-cert.pem.tmp"
    mv "$lab/ca-cert.pem.tmp" "$lab/ca-cert.pem"
  else
    rm -f "$lab/ca-cert.pem"
  fi
}

lab_ssh_main() { ssh -F "$lab/ssh/config" -n "$(machine_name main)" "$1"; }

verb_env() {
  [ -f "$lab/machines.list" ] || die "the lab is down: scripts/lab.sh up first"
  if [ -s "$lab/ca-cert.pem" ]; then
    echo "export AUTOBOT_URL=https://$(machine_ip main):8001"
    echo "export AUTOBOT_CA_CERT=$lab/ca-cert.pem"
  else
    echo "export AUTOBOT_URL=http://$(machine_ip main):8001"
  fi
  echo "export AUTOBOT_QUERY_URL=http://$(machine_ip redis):16686"
  echo "export AUTOBOT_JAEGER_QUERY_URL=http://$(machine_ip redis):16686"
  if [ -s "$lab/api-key" ]; then echo "export AUTOBOT_API_KEY=$(cat "$lab/api-key")"; fi
  echo "export LAB_SSH='ssh -F $lab/ssh/config'"
  echo "export LAB_PAGE_URL=http://$(machine_ip frontend):8090/articles/tracing"
}

lab_tool() {
  [ -x "$bin/autobot-lab" ] || die "$bin/autobot-lab is missing: scripts/lab.sh deploy builds it"
  eval "$(verb_env)"
  LAB_SH="$lab_sh" AUTOBOT_LAB_DIR="$lab" "$bin/autobot-lab" "$@"
}

verb_check() {
  need_root check
  require_up
  lab_tool check
  say "idempotence: ansible-playbook site.yml again must change nothing"
  local started; started="$(now)"
  lab_ansible site.yml > "$lab/second-run.log" 2>&1 || { tail -n 40 "$lab/second-run.log"; die "the second site.yml run failed"; }
  sed -n '/PLAY RECAP/,$p' "$lab/second-run.log"
  if sed -n '/PLAY RECAP/,$p' "$lab/second-run.log" | grep -E 'changed=[1-9]'; then
    grep -E '^(changed|TASK)' "$lab/second-run.log" | grep -B1 '^changed' || true
    die "the second site.yml run changed something (log: $lab/second-run.log)"
  fi
  echo "    OK second site.yml run: changed=0 on every machine ($(secs "$started") s)"
}

verb_drill() {
  need_root drill
  require_up
  lab_tool drill "$@"
}

# Diagnostics after a failure: what systemd says on each machine.
diagnose() {
  [ -f "$lab/machines.list" ] || return 0
  local name ip
  while read -r name ip; do
    running "$name" || { echo "--- $name: off"; continue; }
    echo "--- $name: failed units and the last lines of AutoBot's units"
    ssh -n -F "$lab/ssh/config" "$name" \
      'systemctl --failed --no-legend; journalctl --no-pager -n 15 -u "autobot-*" -u jaeger -u redis-server 2>/dev/null' || true
  done < "$lab/machines.list"
}

main() {
  [ $# -gt 0 ] || { sed -n '2,18p' "$0"; exit 2; }
  case "$1" in
    _boot) boot_loop "$2"; exit 0 ;;
    # One verb in its own process, so that `set -e` holds inside it.
    _verb) "verb_$2"; exit 0 ;;
    env) verb_env; exit 0 ;;
    status) verb_status; exit 0 ;;
    stop|start)
      need_root "$1"
      local verb="$1" hard=false name; shift
      if [ "${1:-}" = --hard ] && [ "$verb" = stop ]; then hard=true; shift; fi
      [ $# -eq 1 ] || die "usage: lab.sh stop [--hard] NAME | lab.sh start NAME"
      name="$(machine_name "$1")"
      [ -n "$name" ] || die "no machine $1 (scripts/lab.sh status)"
      if [ "$verb" = start ]; then start_machine "$name"; wait_ssh "$name"; settle_machine "$name"; echo "$name is up"
      elif $hard; then cut_power "$name"; echo "$name is off (power cut)"
      else stop_machine "$name"; echo "$name is off"; fi
      exit 0 ;;
    drill) shift; local t; t="$(now)"; verb_drill "$@"; say "drill: $(secs "$t") s"; exit 0 ;;
    -h|--help|help) sed -n '2,18p' "$0"; exit 0 ;;
  esac
  local verbs=("$@") verb failed="" timings=() t
  for verb in "${verbs[@]}"; do
    case "$verb" in up|deploy|check|drill|down) ;; *) die "unknown verb '$verb' (try --help)" ;; esac
  done
  for verb in "${verbs[@]}"; do
    if [ -n "$failed" ] && [ "$verb" != down ]; then
      timings+=("$verb: skipped"); continue
    fi
    say "lab $verb"
    t="$(now)"
    if bash "$lab_sh" _verb "$verb"; then
      timings+=("$verb: $(secs "$t") s")
    else
      timings+=("$verb: FAILED after $(secs "$t") s")
      failed="$verb"
      diagnose || true
    fi
  done
  say "lab stage times"
  printf '    %s\n' "${timings[@]}"
  [ -z "$failed" ] || die "$failed failed"
}

main "$@"

#!/usr/bin/env bash
# Deployment checks' tools, from PyPI, in a venv of their own:
#   ansible-core + ansible-lint  (syntax check, lint and a real local run of ansible/)
#   check-jsonschema             (validates infra/compose.yaml against the Compose
#                                 specification schema it ships: works offline)
# Result: <repo>/.run/venv-ansible/bin/{ansible-playbook,ansible-lint,check-jsonschema}
# (tools/deploy-checks' tests use them). Versions are pinned; idempotent: does
# nothing when the venv already holds exactly these versions.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$repo/.run/venv-ansible"
pins=(ansible-core==2.19.14 ansible-lint==26.10.1 check-jsonschema==0.39.0)
stamp="$venv/.autobot-pins"
want="${pins[*]}"

if [ -x "$venv/bin/ansible-playbook" ] && [ -x "$venv/bin/ansible-lint" ] \
  && [ -x "$venv/bin/check-jsonschema" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "ansible venv present: $venv ($want)"
  exit 0
fi

# ansible-core 2.19 needs Python >= 3.11.
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 \
    && "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    python="$candidate"; break
  fi
done
if [ -z "$python" ]; then
  echo "error: Python >= 3.11 with the venv module is needed for ansible-core 2.19 (apt-get install python3 python3-venv)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "creating venv $venv with $("$python" --version)"
  mkdir -p "$(dirname "$venv")"
  "$python" -m venv "$venv"
fi
echo "installing into $venv from PyPI: $want"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
echo "$want" > "$stamp"
echo "ansible venv ready: $("$venv/bin/ansible-playbook" --version | head -n1), $("$venv/bin/ansible-lint" --version 2>/dev/null | head -n1)"

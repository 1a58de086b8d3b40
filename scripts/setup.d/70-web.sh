#!/usr/bin/env bash
# AutoBot page's npm packages (services/backend/web: the OpenTelemetry JS web
# SDK and esbuild), installed exactly as package-lock.json pins them with
# `npm ci`, so the test that rebuilds the committed bundle (dist/page.js) can
# compare it byte for byte. Uses the machine's Node.js and npm (Debian's
# nodejs and npm are installed when there are none). Idempotent: nothing to do
# when node_modules already matches the lockfile.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
web="$repo/services/backend/web"
stamp="$web/node_modules/.autobot-lock-sha256"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing apt packages: nodejs npm (AutoBot page's bundle check)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

want="$(sha256sum "$web/package-lock.json" | cut -d' ' -f1)"
if [ -x "$web/node_modules/.bin/esbuild" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "page packages present: $web/node_modules (node $(node --version))"
  exit 0
fi
echo "installing the page's npm packages from package-lock.json (npm ci, node $(node --version))"
(cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
echo "$want" > "$stamp"
echo "page packages ready: $(cd "$web" && node_modules/.bin/esbuild --version) esbuild, OpenTelemetry JS $(node -p "require('$web/node_modules/@opentelemetry/sdk-trace-web/package.json').version")"

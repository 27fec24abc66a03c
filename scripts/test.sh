#!/usr/bin/env bash
# Installs the pinned ComfyUI runtime (unless COMFYUI_PATH names a checkout) and runs every test,
# the slow suites included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_runtime.sh"
cd "$root"
# The browser tests drive Debian's Chromium with Playwright (never a browser download).
if ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
.runtime/venv/bin/python -c "import playwright" 2>/dev/null || \
  .runtime/venv/bin/python -m pip install --quiet --disable-pip-version-check "playwright==1.65.2" 2> >(grep -v "is ignored: it is neither" >&2)
exec .runtime/venv/bin/python -m pytest tests "$@"

#!/usr/bin/env bash
# Installs a real ComfyUI runtime and runs every test against it, the slow suites included.
#   bash scripts/test.sh                          the current ComfyUI 0.33.0
#   COMFYUI_VERSION=0.3.75 bash scripts/test.sh   the oldest ComfyUI we support
#   COMFYUI_PATH=/path/to/ComfyUI bash scripts/test.sh   your own checkout
# Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/runtime_env.sh"
bash "$root/scripts/install_runtime.sh"
cd "$root"
# The browser tests drive Debian's Chromium with Playwright (never a browser download).
if ! command -v chromium >/dev/null && [ -z "${CHROMIUM:-}" ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
"$PYTHON" -c "import playwright" 2>/dev/null || \
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "playwright==1.65.2" 2> >(grep -v "is ignored: it is neither" >&2)
echo "Testing against ComfyUI $COMFYUI_VERSION at $COMFYUI_PATH"
exec "$PYTHON" -m pytest tests "$@"

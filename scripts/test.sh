#!/usr/bin/env bash
# Installs the pinned ComfyUI runtime (unless COMFYUI_PATH names a checkout) and runs every test,
# the slow suites included.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_runtime.sh"
cd "$root"
TQDM_DISABLE=1 exec .runtime/venv/bin/python -m pytest tests "$@"

#!/usr/bin/env bash
# The main job: a real ComfyUI server with this extension runs the demo workflow (full run and
# AdaptiveDiffusion run, same seeds) and writes the comparison, skip map and report to out/demo.
# Runs on the current ComfyUI 0.33.0 unless COMFYUI_VERSION or COMFYUI_PATH says otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/runtime_env.sh"
bash "$root/scripts/install_runtime.sh"
cd "$root"
exec "$PYTHON" scripts/demo.py "$@"

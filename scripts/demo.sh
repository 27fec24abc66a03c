#!/usr/bin/env bash
# The main job: a real ComfyUI server with this extension runs the demo workflow (full run and
# AdaptiveDiffusion run, same seeds) and writes the comparison, skip map and report to out/demo.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install_runtime.sh"
cd "$root"
exec .runtime/venv/bin/python scripts/demo.py "$@"

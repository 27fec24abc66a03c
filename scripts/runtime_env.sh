# Sourced by the scripts: which ComfyUI runtime to use, and where it lives.
#   COMFYUI_PATH set      a user's checkout; venv in .runtime/custom
#   COMFYUI_VERSION       0.33.0 (the current ComfyUI, default) or 0.3.75 (the oldest we support)
# Exports COMFYUI_VERSION, RUNTIME_DIR, COMFYUI_PATH and PYTHON (tests/runtime.py reads COMFYUI_PATH).
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -n "${RUNTIME_DIR:-}" ]; then
  :  # already chosen by a script that sourced this one
elif [ -n "${COMFYUI_PATH:-}" ]; then
  export COMFYUI_VERSION=custom
  export RUNTIME_DIR="$_root/.runtime/custom"
  COMFYUI_PATH=$(cd "$COMFYUI_PATH" && pwd)
else
  export COMFYUI_VERSION="${COMFYUI_VERSION:-0.33.0}"
  case "$COMFYUI_VERSION" in
    0.33.0|0.3.75) ;;
    *) echo "COMFYUI_VERSION must be 0.33.0 or 0.3.75 (or set COMFYUI_PATH to your own checkout)" >&2; exit 2 ;;
  esac
  export RUNTIME_DIR="$_root/.runtime/$COMFYUI_VERSION"
  COMFYUI_PATH="$RUNTIME_DIR/ComfyUI"
fi
export COMFYUI_PATH
export PYTHON="$RUNTIME_DIR/venv/bin/python"
unset _root

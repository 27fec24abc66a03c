#!/usr/bin/env bash
# Mutation testing of adaptive_core/ (a development check, not part of CI): mutmut 2.4.5 changes one
# operator, constant or name at a time in place, and the core's own tests must fail for each.
#   bash scripts/mutation.sh      # a few hours on one core; the survivors land in out/mutmut_survivors.txt
# mutmut and its cache (.mutmut-cache) stay out of the repository; docs/mutation.md explains each survivor.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/runtime_env.sh"
bash "$root/scripts/install_runtime.sh" >/dev/null
"$PYTHON" -m pip install --quiet --disable-pip-version-check "mutmut==2.4.5" 2> >(grep -v "is ignored: it is neither" >&2)
cd "$root"
# the tests that judge adaptive_core alone (no sampling through ComfyUI): seconds per mutant; the
# import checks spawn interpreters and judge no line of the core
tests="tests/test_core.py tests/test_config_core.py tests/test_exit_core.py tests/test_exit_heads.py tests/test_report_core.py tests/test_run_core.py tests/test_reuse.py tests/test_reuse_memory.py tests/test_error_control.py tests/test_reference_parity.py tests/test_maps.py"
export OMP_NUM_THREADS=1
"$PYTHON" -m mutmut run --paths-to-mutate adaptive_core/ --tests-dir tests \
  --runner "$PYTHON -m pytest -x -q -p no:randomly -p no:cacheprovider -k 'not import_comfy' $tests" || true
mkdir -p out
"$PYTHON" -m mutmut results | tee out/mutmut_results.txt || true
"$PYTHON" -m mutmut show all > out/mutmut_survivors.txt || true

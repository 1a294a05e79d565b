#!/usr/bin/env bash
# Run a command inside cryspext's virtual environment, creating it first if needed.
#
#   bash tools/env.sh cryspext demo --out demo_output     # the main job on a built-in example
#   bash tools/env.sh python -m pytest tests -q            # the tests
#
# The environment lives in .venv/ next to this checkout. torch is installed first as the
# CPU build 2.13.0 (any looser spec would pull several GB of CUDA wheels), then cryspext
# with its extras (CRYSPEXT_EXTRAS, default "test,ovito,distributed"; CI adds "oracle" for
# the quippy cross-checks). Set CRYSPEXT_REINSTALL=1 to rebuild the package after changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
fi
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "$venv/bin/python" -m pip install -q "torch==2.13.0"
fi
if [ "${CRYSPEXT_REINSTALL:-0}" = 1 ] || ! "$venv/bin/python" -c "import cryspext._core" 2>/dev/null; then
    "$venv/bin/python" -m pip install -q "$root[${CRYSPEXT_EXTRAS:-test,ovito,distributed}]"
    if [ -d "$root/ovito_modifier" ] && [ -f "$root/ovito_modifier/pyproject.toml" ]; then
        "$venv/bin/python" -m pip install -q --no-deps "$root/ovito_modifier"
    fi
fi
cd "$root"
export PATH="$venv/bin:$PATH"
exec "$@"

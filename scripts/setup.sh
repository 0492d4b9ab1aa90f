#!/usr/bin/env bash
# Provisions everything gapscope needs to build and test, idempotently:
#   1. a Python venv with torch==2.13.0 (libtorch for tch 0.26) and the reference packages the
#      fixture scripts use, cached outside the clone so fresh clones reuse it;
#   2. .cargo/config.toml pointing tch at that libtorch, so plain `cargo build` works afterwards.
# Re-running it is cheap: each step checks before it acts.
set -euo pipefail

TORCH_VERSION=2.13.0
# Python packages for reference fixtures and the Python side of benchmarks (not needed to run gapscope).
PY_EXTRAS=(numpy==2.4.6 scikit-learn==1.9.1 safetensors==0.8.0)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${GAPSCOPE_CACHE:-$HOME/.cache/gapscope}
venv=$cache/torch-$TORCH_VERSION
stamp=$venv/.gapscope-complete
want="torch==$TORCH_VERSION ${PY_EXTRAS[*]}"

say() { [ -n "${GAPSCOPE_QUIET:-}" ] || echo "setup: $*" >&2; }

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    command -v python3 >/dev/null || { echo "setup: python3 is required (apt-get install python3 python3-venv)" >&2; exit 1; }
    mkdir -p "$cache"
    [ -x "$venv/bin/python" ] || { say "creating venv $venv"; python3 -m venv "$venv"; }
    say "installing $want into $venv (torch is about 4.7 GB the first time)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION" "${PY_EXTRAS[@]}"
    echo "$want" > "$stamp"
fi

torch_dir=$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)
abi=$("$venv/bin/python" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null)

config=$repo/.cargo/config.toml
content="# Written by scripts/setup.sh; points tch at the cached libtorch. Safe to delete: setup rewrites it.
[env]
LIBTORCH = \"$torch_dir\"
LIBTORCH_CXX11_ABI = \"$abi\"
GAPSCOPE_PYTHON = \"$venv/bin/python\"
"
if [ ! -f "$config" ] || [ "$(cat "$config")" != "$content" ]; then
    mkdir -p "$repo/.cargo"
    printf '%s' "$content" > "$config"
    say "wrote $config"
fi

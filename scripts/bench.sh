#!/usr/bin/env bash
# Runs the benchmarks and rewrites their tables in docs/perf.md (between the start/end markers).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# BENCHES="train" bash scripts/bench.sh reruns one of them.
for bench in ${BENCHES:-host_overhead mixture_fit frontends loaders train epoch tables methods tsne sweep scripted}; do
    marker=${bench//_/-}
    # The tables bench is polars' work: it runs in release, where polars is optimised (the dev
    # profile builds polars at opt-level 1 to keep a fresh clone's build short). The methods
    # bench is a ratio of libtorch-bound epochs, which the profile of our own code barely moves;
    # so is the sweep bench, whole runs in separate processes, and the end-to-end epoch bench
    # (its gapscope side is only slower for it: the loader's own code runs at opt-level 1).
    profile=release
    if [ "$bench" = epoch ] || [ "$bench" = methods ] || [ "$bench" = tsne ] || [ "$bench" = sweep ] || [ "$bench" = scripted ]; then profile=dev; fi
    table=$(cargo bench -q --profile "$profile" --bench "$bench" 2>/dev/null)
    echo "$table"
    python3 - "$marker" "$table" <<'PY'
import re, sys, platform, os, subprocess
marker, table = sys.argv[1], sys.argv[2].strip()
path = "docs/perf.md"
text = open(path).read()
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
block = f"<!-- {marker}:start -->\nMeasured on {cpu or platform.machine()}, {os.cpu_count()} cores{', libtorch with 1 thread' if marker == 'host-overhead' else ''}.\n\n{table}\n<!-- {marker}:end -->"
pattern = rf"<!-- {marker}:start -->.*?<!-- {marker}:end -->"
if not re.search(pattern, text, flags=re.S):
    sys.exit(f"docs/perf.md lacks the <!-- {marker}:start/end --> markers")
text = re.sub(pattern, lambda _: block, text, flags=re.S)
open(path, "w").write(text)
PY
done

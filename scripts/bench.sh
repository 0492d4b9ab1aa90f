#!/usr/bin/env bash
# Runs the benchmarks and rewrites the host-overhead table in docs/perf.md.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
table=$(cargo bench -q --bench host_overhead 2>/dev/null)
echo "$table"
python3 - "$table" <<'PY'
import re, sys, platform, os, subprocess
table = sys.argv[1].strip()
path = "docs/perf.md"
text = open(path).read()
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
block = f"<!-- host-overhead:start -->\nMeasured on {cpu or platform.machine()}, {os.cpu_count()} cores, libtorch with 1 thread.\n\n{table}\n<!-- host-overhead:end -->"
text = re.sub(r"<!-- host-overhead:start -->.*?<!-- host-overhead:end -->", block, text, flags=re.S)
open(path, "w").write(text)
PY

"""The pandas side of benches/tables.rs: what a researcher writes today to gather run folders.

    tables_ref.py RUNS_ROOT SAMPLES_ROOT   (prints {"runs": s, "samples": s}, best of 3 each)
"""
import json
import pathlib
import sys
import time

import pandas as pd


def gather_runs(root):
    rows = []
    for cfg in sorted(root.rglob("config.json")):
        d = cfg.parent
        c = json.loads(cfg.read_text())
        inner = c.pop("config", {})
        row = pd.json_normalize(c).iloc[0].to_dict()
        for k, v in inner.items():
            row.setdefault(k, v)
        row["run"] = str(d.relative_to(root))
        final = d / "final.parquet"
        if final.exists():
            row.update(pd.read_parquet(final).iloc[0].to_dict())
        rows.append(row)
    return pd.DataFrame(rows)


def gather_samples(root):
    parts = []
    for f in sorted(root.rglob("samples.parquet")):
        df = pd.read_parquet(f)
        df.insert(0, "run", str(f.parent.relative_to(root)))
        parts.append(df)
    df = pd.concat(parts, ignore_index=True)
    return df.groupby(["run", "epoch"], sort=False).agg(mean_gap=("gap", "mean"), sd_z=("z", "std"), mean_w0=("w0", "mean"), n=("gap", "size"))


def best(f, *args):
    t = float("inf")
    for _ in range(3):
        s = time.perf_counter()
        f(*args)
        t = min(t, time.perf_counter() - s)
    return t


runs_root, samples_root = map(pathlib.Path, sys.argv[1:3])
print(json.dumps({"runs": best(gather_runs, runs_root), "samples": best(gather_samples, samples_root)}))

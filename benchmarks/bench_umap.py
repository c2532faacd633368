"""UMAP benchmark: our map (exact faiss kNN graph -> umap precomputed_knn) vs plain ``umap.UMAP()`` defaults.

Cold calls run in fresh Python processes so that ``first_call_s`` includes numba compilation as a user meets it;
warm timings alternate ours and the baseline in one process (medians), so load from other jobs hits both alike.
Data: a seeded mixture of 40 Gaussian clusters in 384-d, unit-normalised (the shape of MiniLM title vectors), or an
.npy file passed as ``data_path``. Usage: ``python benchmarks/bench_umap.py [5000 20000]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from vqrec_core.projection import UmapConfig, umap_embed

def data(n, path):
    if path:
        x = np.load(path, allow_pickle=False)
        return x[np.random.default_rng(0).permutation(len(x))[:n]]
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((40, 384))
    return (centres[rng.integers(0, 40, n)] + 0.9 * rng.standard_normal((n, 384))).astype(np.float32)

def timed(fn):
    t = time.perf_counter(); fn(); return time.perf_counter() - t

x = data({n}, {path!r})
import umap
ours = lambda: umap_embed(x, UmapConfig(cap=10**9, faiss_knn=True))
base = lambda: umap.UMAP().fit_transform(x)
out = {{}}
if {mode!r} == "cold_ours":
    out["first"] = timed(ours)
else:  # baseline cold, then interleaved warm calls of both
    out["first"] = timed(base)
    ours()
    w_ours, w_base = [], []
    for _ in range({repeats}):
        w_ours.append(timed(ours)); w_base.append(timed(base))
    out["ours_warm"], out["base_warm"] = statistics.median(w_ours), statistics.median(w_base)
print(json.dumps(out))
"""


def _measure(n: int, mode: str, data_path: str | None, repeats: int = 2) -> dict:
    code = _CHILD.format(root=str(ROOT), n=n, path=data_path, mode=mode, repeats=repeats)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes=(5000, 20000), data_path: str | None = None, repeats: int = 2) -> list[dict]:
    """Rows {stage, size, ours_s, baseline_s, speedup, first_call_s, warm_s, baseline_first_call_s}.

    ``first_call_s``: our first call in a fresh process (includes numba compilation); ``baseline_first_call_s``:
    the same for plain ``umap.UMAP()``; ``ours_s``/``baseline_s``/``warm_s``: medians of ``repeats`` warm calls,
    alternating ours and baseline in one process.
    """
    rows = []
    for n in sizes:
        cold = _measure(n, "cold_ours", data_path)
        both = _measure(n, "cold_base_then_warm", data_path, repeats)
        ours_s, base_s = both["ours_warm"], both["base_warm"]
        rows.append({"stage": "umap", "size": n, "ours_s": round(ours_s, 2), "baseline_s": round(base_s, 2),
                     "speedup": round(base_s / ours_s, 2),
                     "first_call_s": round(cold["first"], 2), "warm_s": round(both["ours_warm"], 2),
                     "baseline_first_call_s": round(both["first"], 2)})
    return rows


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or (5000, 20000)
    for row in run(sizes):
        print(json.dumps(row))

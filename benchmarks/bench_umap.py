"""UMAP benchmark: our map (exact faiss kNN graph -> umap precomputed_knn) vs plain ``umap.UMAP()`` defaults.

Each configuration runs in a fresh Python process so that ``first_call_s`` includes numba compilation as a user
meets it; ``*_s`` without ``first`` is the second (warm) call in that process. Data: a seeded mixture of 40
Gaussian clusters in 384-d, unit-normalised (the shape of MiniLM title vectors), or an .npy file passed as
``data_path``. Usage: ``python benchmarks/bench_umap.py [5000 20000]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
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

x = data({n}, {path!r})
mode = {mode!r}
if mode == "ours":
    run = lambda: umap_embed(x, UmapConfig(cap=10**9, faiss_knn=True))
else:
    import umap
    run = lambda: umap.UMAP().fit_transform(x)
t = time.perf_counter(); run(); first = time.perf_counter() - t
t = time.perf_counter(); run(); warm = time.perf_counter() - t
print(json.dumps({{"first": first, "warm": warm}}))
"""


def _measure(n: int, mode: str, data_path: str | None) -> dict:
    code = _CHILD.format(root=str(ROOT), n=n, path=data_path, mode=mode)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(sizes=(5000, 20000), data_path: str | None = None) -> list[dict]:
    """Rows {stage, size, ours_s, baseline_s, speedup, first_call_s, warm_s, baseline_first_call_s}."""
    rows = []
    for n in sizes:
        ours = _measure(n, "ours", data_path)
        base = _measure(n, "baseline", data_path)
        rows.append({"stage": "umap", "size": n, "ours_s": round(ours["warm"], 2), "baseline_s": round(base["warm"], 2),
                     "speedup": round(base["warm"] / ours["warm"], 2), "first_call_s": round(ours["first"], 2),
                     "warm_s": round(ours["warm"], 2), "baseline_first_call_s": round(base["first"], 2)})
    return rows


if __name__ == "__main__":
    sizes = tuple(int(a) for a in sys.argv[1:]) or (5000, 20000)
    for row in run(sizes):
        print(json.dumps(row))

"""Shared benchmark plumbing: interleaved median timing, peak memory, one fresh process per stage, data, tables.

Every stage compares our code with a baseline *in the same process and the same run*, alternating the two
(ours, baseline, ours, baseline, ...) so that load from other jobs on this shared 2-core machine hits both alike;
the table reports medians and their ratio. Peak resident memory is per stage because each (stage, size) runs in a
fresh ``python`` process (``run_child``); ``peak_rss_mb`` is measured right after our code's first (warm-up) run,
before the baseline runs in that process.

Data: real Amazon titles and interactions from ``../shared/datasets`` (or ``$VQREC_DATASETS``) when present, else the
bundled ``sample_data`` (titles repeated with a variant suffix to reach the size), so a fresh clone still runs.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
COLUMNS = ["stage", "size", "ours_s", "baseline_s", "speedup"]  # the required leading columns, in this order
EXTRA = ["config", "ours_rate", "baseline_rate", "unit", "peak_rss_mb", "exponent", "epoch_s", "repeats", "note"]


def datasets_dir() -> Path | None:
    """The shared real-data folder if it exists (``$VQREC_DATASETS`` overrides ``<repo>/../shared/datasets``)."""
    p = Path(os.environ.get("VQREC_DATASETS", ROOT.parent / "shared" / "datasets"))
    return p if (p / "amazon2014-beauty" / "items.csv.gz").exists() else None


# ---------------------------------------------------------------------------------------------------------- timing


def interleaved(fns: Sequence[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Run each function ``repeats`` times, alternating between them; seconds per call, one list per function."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(max(1, repeats)):
        for k, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return times


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def peak_rss_mb() -> float:
    """Peak resident set size of this process and of its waited-for children so far, in MiB (Linux: KiB units)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, kids) / 1024.0, 1)


def row(stage: str, size: int, ours_s: float, baseline_s: float | None, **extra) -> dict:
    """One table row; ``speedup`` = baseline / ours (> 1: ours is faster), blank without a baseline."""
    r = {"stage": stage, "size": int(size), "ours_s": _round(ours_s),
         "baseline_s": _round(baseline_s) if baseline_s is not None else None,
         "speedup": _round(baseline_s / ours_s) if baseline_s is not None and ours_s > 0 else None}
    r.update(extra)
    return r


def _round(x: float | None, sig: int = 4) -> float | None:
    if x is None or not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.{sig}g}")


def set_threads(n: int) -> None:
    """Pin torch / faiss / BLAS to ``n`` threads (the env vars only help before numpy loads, so set both)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


# ----------------------------------------------------------------------------------------------- fresh processes


_CHILD = r"""
import json, sys
sys.path.insert(0, {root!r})
from benchmarks.common import set_threads, peak_rss_mb
set_threads({threads})
import importlib
mod = importlib.import_module({module!r})
rows = mod.run(**{kwargs!r})
for r in rows:
    r.setdefault("peak_rss_mb", peak_rss_mb())
print("@@ROWS@@" + json.dumps(rows))
"""


def run_child(module: str, kwargs: dict, threads: int = 1, timeout: float | None = None) -> list[dict]:
    """``module.run(**kwargs)`` in a fresh interpreter; its rows, each with the process's peak RSS if not set."""
    code = _CHILD.format(root=str(ROOT), module=module, kwargs=kwargs, threads=int(threads))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(ROOT),
                         timeout=timeout)
    for line in out.stdout.splitlines():
        if line.startswith("@@ROWS@@"):
            return json.loads(line[len("@@ROWS@@"):])
    tail = (out.stderr or out.stdout).strip().splitlines()[-15:]
    raise RuntimeError(f"{module}.run({kwargs}) failed (exit {out.returncode}):\n" + "\n".join(tail))


# ------------------------------------------------------------------------------------------------------------ data


def _base_titles() -> list[str]:
    import pandas as pd

    ds = datasets_dir()
    if ds is not None:
        frames = [pd.read_csv(ds / name / "items.csv.gz", dtype=str, keep_default_na=False)
                  for name in ("amazon2014-beauty", "amazon2014-toy") if (ds / name / "items.csv.gz").exists()]
    else:
        frames = [pd.read_csv(SAMPLE / name / "items.csv", dtype=str, keep_default_na=False)
                  for name in ("beauty", "toys")]
    return [html.unescape(t) for f in frames for t in f["title"].tolist() if t.strip()]  # as data.py unescapes


def titles(n: int, seed: int = 0) -> list[str]:
    """``n`` item titles: a seeded sample of the real ones, or repeats with a " - variant k" suffix past the pool."""
    base = _base_titles()
    rng = np.random.default_rng(seed)
    base = [base[i] for i in rng.permutation(len(base))]
    out = base[:n]
    k = 1
    while len(out) < n:
        out += [f"{t} - variant {k}" for t in base[: n - len(out)]]
        k += 1
    return out


def data_source() -> str:
    return "shared/datasets (Amazon Beauty + Toys)" if datasets_dir() is not None else "sample_data (bundled)"


def load_split(max_users: int | None = None, seed: int = 0, domain: str = "beauty"):
    """A real leave-one-out split (Beauty from shared/ or the bundled sample), optionally on a user subset."""
    from vqrec_core.data import load_domain, split_leave_one_out

    ds = datasets_dir()
    if ds is not None:
        folder = ds / ("amazon2014-beauty" if domain == "beauty" else "amazon2014-toy")
        dom = load_domain(folder / "items.csv.gz", folder / "interactions.csv.gz", name=domain)
    else:
        folder = SAMPLE / ("beauty" if domain == "beauty" else "toys")
        dom = load_domain(folder / "items.csv", folder / "interactions.csv", name=domain)
    if max_users is not None:
        users = dom.interactions["user_id"].unique()
        if len(users) > max_users:
            keep = set(np.random.default_rng(seed).choice(users, size=max_users, replace=False).tolist())
            inter = dom.interactions[dom.interactions["user_id"].isin(keep)]
            used = set(inter["item_id"])
            items = dom.items[dom.items["item_id"].isin(used)].reset_index(drop=True)
            dom = type(dom)(name=dom.name, items=items, interactions=inter.reset_index(drop=True), report=dom.report)
    return split_leave_one_out(dom)


# ---------------------------------------------------------------------------------------------------------- tables


def loglog_slope(sizes: Sequence[float], times: Sequence[float]) -> float | None:
    """Least-squares exponent a in time ~ size^a (None with fewer than 2 distinct positive points)."""
    pts = [(math.log(s), math.log(t)) for s, t in zip(sizes, times, strict=True) if s and t and s > 0 and t > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    x, y = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return round(float(np.polyfit(x, y, 1)[0]), 2)


def growth_key(r: dict, side: str = "ours") -> float | None:
    """The time whose growth is fitted: per-epoch time for training rows (their ours_s is a fixed number of steps),
    else the measured seconds."""
    if "epoch_s" in r:
        return r.get("epoch_s") if side == "ours" else r.get("baseline_epoch_s")
    return r.get("ours_s") if side == "ours" else r.get("baseline_s")


def growth_groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if isinstance(r.get("size"), int):
            groups.setdefault((r["stage"], r.get("config") or ""), []).append(r)
    return groups


def add_exponents(rows: list[dict]) -> None:
    """Fill ``exponent`` on each row: the log-log slope of its growth time against ``size`` within (stage, config)."""
    for g in growth_groups(rows).values():
        slope = loglog_slope([r["size"] for r in g], [growth_key(r) for r in g])
        for r in g:
            r["exponent"] = slope


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS + EXTRA, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS + EXTRA})
    return buf.getvalue()


def _cell(v) -> str:
    if v is None or v == "":
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int) and abs(v) >= 1e5:
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def to_markdown(rows: list[dict]) -> str:
    head = ["stage", "config", "size", "ours_s", "baseline_s", "speedup", "ours_rate", "baseline_rate", "unit",
            "peak_rss_mb", "exponent", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if h in ("stage", "config", "unit", "note")
                                                          else "---:" for h in head) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(h)) for h in head) + " |")
    return "\n".join(lines) + "\n"

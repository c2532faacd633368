"""Scale benchmark of the data layer: a 100k-item catalog with a 1M-interaction log, read, validated and split.

Stages (each timed, with ``peak_rss_mb`` = the peak resident memory of the process while the stage ran minus its
resident memory when the stage started, sampled every 10 ms by psutil -- the extra memory the stage needed):

- ``read``: both CSV files into frames. Ours: ``data.read_table`` (encoding detection, delimiter check, size limits,
  ids as strings). Baseline: ``pd.read_csv`` with default dtypes.
- ``validate``: ours: ``data.domain_from_frames`` (column mapping, id normalisation, timestamp parsing, every check
  of issue 7 with messages). Baseline: the minimum a script would do -- unknown-item check with ``isin``, duplicate
  rows with ``duplicated``, interactions per user with ``groupby``.
- ``split``: leave-one-out. Ours: ``data.split_leave_one_out`` (prefix expansion into padded [n, 50] arrays).
  Baseline: ``sort_values`` + ``groupby().cumcount()`` marking the last/second-to-last row per user as test/valid
  (no padded histories, so it does less work).

``speedup`` = baseline_s / ours_s (below 1 means ours is slower; ours does more in every stage). Usage:
``python benchmarks/bench_scale.py [n_items n_interactions]``; ``run()`` returns the rows.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vqrec_core.data import domain_from_frames, read_table, split_leave_one_out  # noqa: E402

WORDS = np.array("red blue green lipstick gloss toy truck car puzzle doll brush cream soap lotion mask kit set "
                 "deluxe mini classic pro ultra soft matte shine wooden plastic kids adult travel gift".split())


def make_data(folder: Path, n_items: int = 100_000, n_inter: int = 1_000_000, seed: int = 0) -> tuple[Path, Path]:
    """Write items.csv (item_id,title) and interactions.csv (user_id,item_id,timestamp); ~10 interactions/user."""
    rng = np.random.default_rng(seed)
    n_words = rng.integers(3, 12, n_items)
    words = WORDS[rng.integers(0, len(WORDS), int(n_words.sum()))]
    ends = np.cumsum(n_words)
    titles = [" ".join(words[e - k:e]) for e, k in zip(ends, n_words, strict=True)]
    item_ids = np.arange(100, 100 + n_items)
    pd.DataFrame({"item_id": item_ids, "title": titles}).to_csv(folder / "items.csv", index=False)
    n_users = max(1, n_inter // 10)
    users = np.sort(rng.integers(0, n_users, n_inter))
    pop = rng.zipf(1.3, n_inter) % n_items  # popularity skew like real logs
    ts = 1_300_000_000 + rng.integers(0, 10**8, n_inter)
    pd.DataFrame({"user_id": np.char.add("U", users.astype(str)), "item_id": item_ids[pop],
                  "timestamp": ts}).to_csv(folder / "interactions.csv", index=False)
    return folder / "items.csv", folder / "interactions.csv"


def measure(fn: Callable[[], object]) -> tuple[object, float, float]:
    """(result, seconds, extra resident memory in MB at the peak while fn ran, over the RSS when it started)."""
    proc = psutil.Process()
    start = proc.memory_info().rss
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t = time.perf_counter()
    try:
        out = fn()
    finally:
        dt = time.perf_counter() - t
        stop.set()
        th.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    return out, dt, (peak[0] - start) / 2**20


def _baseline_validate(items: pd.DataFrame, inter: pd.DataFrame) -> dict:
    unknown = ~inter["item_id"].isin(items["item_id"])
    dups = inter.duplicated()
    per_user = inter.groupby("user_id").size()
    return {"unknown": int(unknown.sum()), "dups": int(dups.sum()), "evaluable": int((per_user >= 3).sum())}


def _baseline_split(inter: pd.DataFrame) -> pd.DataFrame:
    s = inter.sort_values(["user_id", "timestamp"], kind="stable")
    rank_from_end = s.groupby("user_id").cumcount(ascending=False)
    return s.assign(part=np.where(rank_from_end == 0, "test", np.where(rank_from_end == 1, "valid", "train")))


def run(n_items: int = 100_000, n_inter: int = 1_000_000, folder: str | Path | None = None) -> list[dict]:
    """Rows {stage (data_read | data_validate | data_split), size (= interactions), ours_s, baseline_s, speedup,
    peak_rss_mb, baseline_peak_rss_mb, config, unit, ours_rate, baseline_rate, repeats, note}."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(folder) if folder else Path(tmp)
        ip, lp = make_data(d, n_items, n_inter)
        size = f"{n_items} items / {n_inter} interactions"
        rows = []

        (tables, t_read, m_read) = measure(lambda: (read_table(ip, label="item catalog")[0],
                                                    read_table(lp, label="interaction log")[0]))
        (base_tables, b_read, bm_read) = measure(lambda: (pd.read_csv(ip), pd.read_csv(lp)))
        rows.append(("read", t_read, b_read, m_read, bm_read))

        (dom_rep, t_val, m_val) = measure(lambda: domain_from_frames(*tables, "items.csv", "interactions.csv"))
        dom, rep = dom_rep
        assert dom is not None, rep.format()
        (_, b_val, bm_val) = measure(lambda: _baseline_validate(*base_tables))
        rows.append(("validate", t_val, b_val, m_val, bm_val))

        (sp, t_split, m_split) = measure(lambda: split_leave_one_out(dom))
        (_, b_split, bm_split) = measure(lambda: _baseline_split(base_tables[1]))
        rows.append(("split", t_split, b_split, m_split, bm_split))
        del sp

    return [{"stage": f"data_{s}", "size": n_inter, "ours_s": round(o, 3), "baseline_s": round(b, 3),
             "speedup": round(b / o, 3) if o > 0 else float("nan"), "peak_rss_mb": round(m),
             "baseline_peak_rss_mb": round(bm), "config": f"{n_items} items", "unit": "interactions",
             "ours_rate": round(n_inter / o) if o > 0 else None, "baseline_rate": round(n_inter / b) if b > 0 else None,
             "repeats": 1, "note": "peak_rss_mb = extra RSS over the stage's start; " + size}
            for s, o, b, m, bm in rows]

if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    for row in run(*args):
        print(row)

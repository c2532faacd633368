"""2-D UMAP maps of item spaces (text vectors vs code-based item vectors), coloured by domain, titles on hover.

Reference: McInnes et al., UMAP (2018); used as in Hou et al. (WWW 2023) Fig. 4 to look at the domain gap.
Deliberate deviation from plain ``umap.UMAP()``: the k-nearest-neighbour graph is computed exactly with faiss
(inner product on unit-normalised vectors, i.e. cosine) and handed to UMAP through ``precomputed_knn``, which skips
pynndescent (and its numba compilation); see benchmarks/bench_umap.py for the measured effect. Catalogs larger than
``cap`` points are randomly subsampled (fixed seed), and results are cached on disk by content hash.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import fsutil
from .errors import DataError
from .geometry import unit_normalise

_CACHE_VERSION = "umap-v1"


@dataclass
class UmapConfig:
    n_neighbors: int = 15   # UMAP default neighbourhood size
    min_dist: float = 0.1   # UMAP default
    cap: int = 5000         # at most this many points are projected (random subsample above it)
    seed: int = 0           # subsample + UMAP random_state (makes the layout reproducible, single-threaded)
    faiss_knn: bool = True  # exact kNN graph with faiss instead of pynndescent
    n_epochs: int | None = None  # None = UMAP's default (500 below 10k points, 200 above)


def subsample_indices(n: int, cap: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``cap`` of ``n`` rows, drawn uniformly without replacement (all rows if n <= cap)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def exact_knn(z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosine kNN of unit rows with faiss: (indices int64 [n, k], distances 1 - cos float32 [n, k]).

    The first column is the point itself (UMAP's convention); duplicates may take its place, which UMAP tolerates.
    """
    import faiss

    index = faiss.IndexFlatIP(z.shape[1])
    index.add(np.ascontiguousarray(z, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(z, dtype=np.float32), k)  # [n, k]
    # put the query itself first when a duplicate displaced it
    self_col = idx == np.arange(len(z))[:, None]
    has_self = self_col.any(axis=1)
    idx[~has_self, 0] = np.flatnonzero(~has_self)
    sims[~has_self, 0] = 1.0
    return idx.astype(np.int64), np.maximum(0.0, 1.0 - sims).astype(np.float32)


def umap_embed(x: np.ndarray, cfg: UmapConfig | None = None) -> np.ndarray:
    """UMAP 2-D coordinates float32 [n, 2] of the unit-normalised rows of ``x`` (no subsampling, no cache)."""
    import umap

    cfg = cfg or UmapConfig()
    z = unit_normalise(x)  # [n, d]
    if len(z) <= cfg.n_neighbors + 1:
        raise DataError(f"A UMAP map needs more than {cfg.n_neighbors + 1} items; got {len(z)}.")
    kw = {"n_neighbors": cfg.n_neighbors, "min_dist": cfg.min_dist, "random_state": cfg.seed, "metric": "cosine",
          "n_epochs": cfg.n_epochs}
    if cfg.faiss_knn:
        idx, dist = exact_knn(z, cfg.n_neighbors)
        kw["precomputed_knn"] = (idx, dist, None)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", "precomputed_knn without index"
        return umap.UMAP(**kw).fit_transform(z).astype(np.float32)


def umap_map(x: np.ndarray, cfg: UmapConfig | None = None, cache_dir: str | Path | None = None,
             progress: fsutil.Progress | None = None) -> pd.DataFrame:
    """Subsample to ``cfg.cap``, project, cache. Returns DataFrame: index (row of ``x``), x, y."""
    cfg = cfg or UmapConfig()
    x = np.asarray(x, dtype=np.float32)
    keep = subsample_indices(len(x), cfg.cap, cfg.seed)
    key = fsutil.content_hash(_CACHE_VERSION, x, asdict(cfg))
    path = Path(cache_dir) / f"umap_{key}.npy" if cache_dir is not None else None
    if path is not None and path.exists():
        xy = fsutil.load_npy(path)
        fsutil.report(progress, 1.0, "UMAP map loaded from cache")
    else:
        fsutil.report(progress, 0.0, f"UMAP on {len(keep)} items (the first call in a process compiles numba, ~30 s)")
        xy = umap_embed(x[keep], cfg)
        if path is not None:
            fsutil.atomic_save_npy(path, xy)
        fsutil.report(progress, 1.0, "UMAP map done")
    return pd.DataFrame({"index": keep, "x": xy[:, 0], "y": xy[:, 1]})


def scatter_figure(df: pd.DataFrame, title: str, color: str = "domain", hover: str = "title"):
    """A plotly scatter of a map DataFrame (x, y, + colour and hover columns), one trace per colour value."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for value, part in df.groupby(color, sort=False):
        fig.add_trace(go.Scattergl(x=part["x"], y=part["y"], mode="markers", name=str(value),
                                   text=part.get(hover), hoverinfo="text+name",
                                   marker={"size": 4, "opacity": 0.6}))
    fig.update_layout(title=title, xaxis={"visible": False}, yaxis={"visible": False}, legend_title=color,
                      height=520, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def time_umap(x: np.ndarray, cfg: UmapConfig) -> float:
    """Wall seconds of one ``umap_embed`` call (for the benchmark)."""
    t = time.perf_counter()
    umap_embed(x, cfg)
    return time.perf_counter() - t

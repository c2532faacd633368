"""Discrete item codes: text vector -> D digits of b bits each (VQ-Rec's "text -> code" step).

Reference: Hou et al., "Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders"
(WWW 2023), which encodes each item's text vector with faiss OPQ (``OPQ{D},IVF1,PQ{D}x{b}``, inner product, D=32,
b=8) trained on the training-split items only ("strict"); all items are then encoded. OPQ itself is Ge et al.,
"Optimized Product Quantization" (TPAMI 2014): alternate per-sub-space k-means and an orthogonal Procrustes
update of the rotation.

Methods (``CodeConfig.method``):
  * ``"opq"`` (default, ours): the non-parametric OPQ of Ge et al. in numpy, initialised with a random
    orthogonal rotation (as faiss; ``init="pca"`` = eigenvalue allocation), then alternations of a warm-started
    k-means step and a Procrustes rotation update (SVD); the training mean is subtracted first, which is exactly
    what faiss' single IVF list (``IVF1``) does. Much faster than faiss at its default settings on 2 cores at
    equal or lower reconstruction error (docs/codes.md has the figures).
  * ``"faiss_opq"``: faiss ``index_factory``: ``OPQ{D},IVF1,PQ{D}x{b}np`` by default; ``faiss_variant="ivf1"`` is
    upstream's exact ``OPQ{D},IVF1,PQ{D}x{b}``, whose extra polysemous-training pass only relabels codewords (same
    reconstruction) and costs ~70 s on 2 cores; ``"np"`` is ``OPQ{D},PQ{D}x{b}np`` (no centring).
  * ``"pq"``: plain product quantization without rotation (ablation); centred like ``"opq"``.
  * ``"random"``: uniform random codes (ablation). Its "reconstruction" uses the per-digit mean of the training
    vectors that drew each codeword, and ``CodeResult.encode`` maps new vectors to the nearest such mean.

Deliberate deviations from upstream: our default method is our own OPQ (same objective, same centring, different
optimiser and iteration counts); thread counts are set explicitly (default 1) because faiss' OpenMP pool, its
bundled OpenBLAS and torch's pool contend on a 2-core machine.

Every method yields a quantizer of the same form -- ``mean`` [d], orthogonal ``rotation`` [d, d], ``centroids``
[D, M, d/D] -- so encoding is ``argmin_m ||((x - mean) @ rotation)_k - centroids[k, m]||`` per digit k and
reconstruction is ``mean + concat_k(centroids[k, code_k]) @ rotation.T``. Arrays are stored as .npy + JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import CheckpointError, ConfigError, DataError
from .fsutil import (
    Progress,
    atomic_save_npy,
    atomic_write_json,
    content_hash,
    load_npy,
    report,
)

METHODS = ("opq", "faiss_opq", "pq", "random")
MIN_POINTS_PER_CODEWORD = 39  # faiss warns below 39 training points per centroid; used to pick b automatically
_CACHE_VERSION = "codes-v1"


@dataclass
class CodeConfig:
    D: int | None = None  # digits per item (upstream 32); None = the largest divisor of d that is <= min(32, d/2)
    b: int | None = None  # bits per digit, M = 2**b codewords (upstream 8); None = largest b in [2, 8] with
    #                          n_train >= 39 * M
    method: str = "opq"  # "opq" (ours) | "faiss_opq" (upstream) | "pq" (no rotation) | "random"
    seed: int = 0
    init: str = "random"  # ours: initial rotation, "random" orthogonal (as faiss) | "pca" (eigenvalue allocation)
    opq_iters: int = 40  # ours: alternations of (Procrustes rotation update, k-means); faiss niter 50
    kmeans_iters: int = 1  # ours: warm-started k-means iterations per alternation (faiss niter_pq 4)
    init_kmeans_iters: int = 4  # ours/pq: k-means iterations before the first rotation update (faiss 40)
    final_kmeans_iters: int = 6  # ours/pq: k-means iterations after the last rotation update (faiss 25)
    max_train_points: int = 65536  # subsample the training items above this (faiss OPQ's default, 256 * 256)
    threads: int = 1  # BLAS / OpenMP (faiss, torch) threads while training; capped at torch.get_num_threads()
    faiss_variant: str = "ivf1np"  # faiss_opq: "ivf1np" = OPQ{D},IVF1,PQ{D}x{b}np | "ivf1" = upstream's exact
    #                                OPQ{D},IVF1,PQ{D}x{b} (adds polysemous training: same codes up to a per-digit
    #                                relabelling, ~70 s more) | "np" = OPQ{D},PQ{D}x{b}np (no centring)
    faiss_opq_niter: int | None = None  # faiss_opq: OPQMatrix.niter (None = faiss default 50)
    faiss_opq_niter_pq: int | None = None  # faiss_opq: k-means iterations per OPQ step (None = faiss default 4)

    @property
    def M(self) -> int:
        if self.b is None:
            raise ConfigError("The number of bits b is not resolved yet; call resolve_config(cfg, n_train, d).")
        return 2 ** int(self.b)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class CodeResult:
    codes: np.ndarray  # uint8 [n, D]
    M: int
    D: int
    method: str
    config: CodeConfig  # resolved (D and b filled in)
    recon_error: float  # mean over all items of ||x - x_hat||^2
    train_seconds: float  # training + encoding wall time (0 work when read from the cache: the stored figure)
    mean: np.ndarray  # float32 [d]      subtracted before rotation (the IVF1 centroid)
    rotation: np.ndarray  # float32 [d, d]  orthogonal; rotated = (x - mean) @ rotation
    centroids: np.ndarray  # float32 [D, M, d // D]
    n_train: int = 0  # training items actually used (after subsampling)
    warnings: list[str] = field(default_factory=list)
    cache_key: str = ""
    from_cache: bool = False

    # ---------------------------------------------------------------- quantizer use
    def encode(self, emb: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """uint8 [n, D] nearest-codeword codes of new vectors under this quantizer."""
        return _encode_np(_as_float32_2d(emb, "emb"), self.mean, self.rotation, self.centroids, chunk)

    def reconstruct(self, codes: np.ndarray | None = None) -> np.ndarray:
        """float32 [n, d] vectors the codes stand for (defaults to this result's own codes)."""
        codes = self.codes if codes is None else np.asarray(codes)
        return _decode_np(codes, self.mean, self.rotation, self.centroids)

    def diagnostics(self) -> dict:
        return code_diagnostics(self.codes, self.M, recon_error=self.recon_error)

    # ---------------------------------------------------------------- persistence (npy + json, never pickle)
    def save(self, folder: str | os.PathLike) -> Path:
        """Write codes.npy, mean.npy, rotation.npy, centroids.npy, then meta.json last (its presence = complete)."""
        folder = Path(folder)
        atomic_save_npy(folder / "codes.npy", np.ascontiguousarray(self.codes, dtype=np.uint8))
        atomic_save_npy(folder / "mean.npy", self.mean.astype(np.float32))
        atomic_save_npy(folder / "rotation.npy", self.rotation.astype(np.float32))
        atomic_save_npy(folder / "centroids.npy", self.centroids.astype(np.float32))
        meta = {
            "kind": "vqrec-codes",
            "version": _CACHE_VERSION,
            "M": self.M,
            "D": self.D,
            "method": self.method,
            "config": self.config.to_dict(),
            "recon_error": self.recon_error,
            "train_seconds": self.train_seconds,
            "n_train": self.n_train,
            "warnings": self.warnings,
            "cache_key": self.cache_key,
        }
        atomic_write_json(folder / "meta.json", meta)
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> CodeResult:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            if meta.get("kind") != "vqrec-codes":
                raise CheckpointError(f"{folder / 'meta.json'} is not a saved code result.")
            known = {f.name for f in dataclasses.fields(CodeConfig)}
            cfg = CodeConfig(**{k: v for k, v in meta["config"].items() if k in known})
            res = cls(
                codes=load_npy(folder / "codes.npy"),
                M=int(meta["M"]),
                D=int(meta["D"]),
                method=str(meta["method"]),
                config=cfg,
                recon_error=float(meta["recon_error"]),
                train_seconds=float(meta["train_seconds"]),
                mean=load_npy(folder / "mean.npy"),
                rotation=load_npy(folder / "rotation.npy"),
                centroids=load_npy(folder / "centroids.npy"),
                n_train=int(meta.get("n_train", 0)),
                warnings=list(meta.get("warnings", [])),
                cache_key=str(meta.get("cache_key", "")),
                from_cache=True,
            )
        except CheckpointError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"The saved codes in {folder} are missing or damaged ({e}); delete the folder "
                                  "and build the codes again.") from e
        d = res.mean.shape[0]
        if (res.codes.dtype != np.uint8 or res.codes.ndim != 2 or res.codes.shape[1] != res.D
                or res.rotation.shape != (d, d) or res.centroids.shape != (res.D, res.M, d // max(res.D, 1))):
            raise CheckpointError(f"The saved codes in {folder} have inconsistent shapes; delete the folder and "
                                  "build the codes again.")
        return res


# ==================================================================== configuration


def resolve_config(cfg: CodeConfig, n_train: int, d: int) -> tuple[CodeConfig, list[str]]:
    """Fill in D and b for ``n_train`` training vectors of dimension ``d``; raise ConfigError if impossible."""
    warnings: list[str] = []
    if cfg.method not in METHODS:
        raise ConfigError(f"Unknown code method {cfg.method!r}; choose one of {', '.join(METHODS)}.")
    if cfg.init not in ("random", "pca"):
        raise ConfigError(f"Unknown OPQ init {cfg.init!r}; choose 'random' or 'pca'.")
    if cfg.faiss_variant not in ("ivf1np", "ivf1", "np"):
        raise ConfigError(f"Unknown faiss_variant {cfg.faiss_variant!r}; choose 'ivf1np', 'ivf1' or 'np'.")
    if n_train < 1:
        raise ConfigError("No training items: the training mask selects none of the items, so no quantizer can "
                          "be trained. Check that the interaction log's training split covers catalog items.")
    D = cfg.D
    if D is None:  # upstream 32 digits; never fewer than 2 dimensions per digit (a 1-d sub-space is a plain scalar
        #            quantizer and small test encoders, e.g. 32-d, would otherwise get one)
        D = max(k for k in range(1, max(1, min(32, d // 2)) + 1) if d % k == 0)
    if D < 1 or D > d or d % D != 0:
        divisors = [k for k in range(1, min(d, 64) + 1) if d % k == 0]
        raise ConfigError(f"D={D} digits must divide the embedding dimension d={d}; valid choices include "
                          f"{divisors}.")
    b = cfg.b
    if b is None:
        fitting = [k for k in range(8, 1, -1) if n_train >= MIN_POINTS_PER_CODEWORD * 2**k]
        if fitting:
            b = fitting[0]
        else:
            b = 2
            warnings.append(f"Only {n_train} training items: even b=2 (M=4) wants {MIN_POINTS_PER_CODEWORD * 4}; "
                            "codewords will be poorly estimated.")
    if not 1 <= b <= 8:
        raise ConfigError(f"b={b} bits per digit is out of range; codes are stored as uint8, so use 1 <= b <= 8.")
    M = 2**b
    if n_train < M:
        raise ConfigError(f"Too few training items for b={b}: {n_train} training items cannot define M={M} "
                          f"codewords per digit. Use fewer bits (b <= {max(1, int(math.log2(n_train)))}) or a "
                          "larger training split.")
    if cfg.b is not None and n_train < MIN_POINTS_PER_CODEWORD * M:
        warnings.append(f"{n_train} training items for M={M} codewords is below the ~{MIN_POINTS_PER_CODEWORD}"
                        f" per codeword faiss recommends ({MIN_POINTS_PER_CODEWORD * M}); consider fewer bits.")
    for name in ("opq_iters", "kmeans_iters", "init_kmeans_iters", "final_kmeans_iters"):
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(cfg, name)}.")
    if cfg.max_train_points < M:
        raise ConfigError(f"max_train_points={cfg.max_train_points} is below M={M} codewords.")
    if cfg.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {cfg.threads}.")
    return dataclasses.replace(cfg, D=int(D), b=int(b)), warnings


# ==================================================================== public entry point


def build_codes(
    emb: np.ndarray,
    train_mask: np.ndarray | None,
    cfg: CodeConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> CodeResult:
    """Train a quantizer on ``emb[train_mask]`` only (strict), encode all rows -> CodeResult (codes uint8 [n, D]).

    With ``cache_dir``, the result is stored under ``cache_dir/codes-<hash of (emb, mask, config)>`` and a second
    call with the same inputs only reads it back.
    """
    cfg = cfg or CodeConfig()
    emb = _as_float32_2d(emb, "emb")  # [n, d]
    n, d = emb.shape
    if train_mask is None:
        mask = np.ones(n, dtype=bool)
    else:
        mask = np.asarray(train_mask)
        if mask.dtype != bool or mask.shape != (n,):
            raise DataError(f"train_mask must be a boolean array of shape ({n},) matching the embeddings; got "
                            f"dtype {mask.dtype} and shape {mask.shape}.")
    n_train = int(mask.sum())
    rcfg, warnings = resolve_config(cfg, n_train, d)

    key_cfg = {k: v for k, v in rcfg.to_dict().items() if k != "threads"}  # threads never change the result
    key = content_hash(_CACHE_VERSION, emb, mask, key_cfg)
    folder = Path(cache_dir) / f"codes-{key}" if cache_dir is not None else None
    if folder is not None and (folder / "meta.json").exists():
        try:
            res = CodeResult.load(folder)
            report(progress, 1.0, "codes read from cache")
            return res
        except CheckpointError:
            pass  # damaged cache entry: train again and overwrite it

    t0 = time.perf_counter()
    train_idx = np.flatnonzero(mask)
    if n_train > rcfg.max_train_points:
        rng = np.random.default_rng(rcfg.seed)
        train_idx = np.sort(rng.choice(train_idx, size=rcfg.max_train_points, replace=False))
    xtrain = emb[train_idx]  # [n_t, d]
    report(progress, 0.0, f"training {rcfg.method} on {len(train_idx)} items (D={rcfg.D}, M={rcfg.M})")
    threads = _effective_threads(rcfg.threads)
    with _thread_limit(threads):
        if rcfg.method in ("opq", "pq"):
            mean, rot, cents = _train_opq(xtrain, rcfg, rotate=rcfg.method == "opq", progress=progress)
            codes = _encode_np(emb, mean, rot, cents)
        elif rcfg.method == "faiss_opq":
            mean, rot, cents, codes, fw = _train_faiss(xtrain, emb, rcfg, threads)
            warnings += fw
        else:
            codes, mean, rot, cents = _random_codes(emb, train_idx, rcfg)
    report(progress, 0.95, "measuring reconstruction error")
    recon = reconstruction_error(emb, codes, mean, rot, cents)
    seconds = time.perf_counter() - t0
    res = CodeResult(codes=codes, M=rcfg.M, D=rcfg.D, method=rcfg.method, config=rcfg, recon_error=recon,
                     train_seconds=seconds, mean=mean, rotation=rot, centroids=cents, n_train=len(train_idx),
                     warnings=warnings, cache_key=key)
    if folder is not None:
        res.save(folder)
    report(progress, 1.0, f"codes ready (reconstruction error {recon:.4f})")
    return res


# ==================================================================== flat ids and diagnostics


def flat_code_ids(codes: np.ndarray, M: int) -> np.ndarray:
    """int64 [n, D] embedding-table ids: code + 1 + k * (M + 1) for digit k; 0 is reserved for padding."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise DataError(f"codes must be a 2-D array [n, D]; got shape {codes.shape}.")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= M):
        raise DataError(f"codes must lie in [0, {M}) for M={M}; found values in [{codes.min()}, {codes.max()}].")
    offsets = np.arange(codes.shape[1], dtype=np.int64) * (M + 1) + 1  # [D]
    return codes.astype(np.int64) + offsets[None, :]  # [n, D]


def codes_from_flat_ids(flat: np.ndarray, M: int) -> np.ndarray:
    """Inverse of flat_code_ids: uint8 [n, D] (flat ids must not be padding)."""
    flat = np.asarray(flat, dtype=np.int64)
    offsets = np.arange(flat.shape[1], dtype=np.int64) * (M + 1) + 1  # [D]
    codes = flat - offsets[None, :]
    if codes.size and (codes.min() < 0 or codes.max() >= M):
        raise DataError("These flat ids are not of the form code + 1 + k * (M + 1) (padding or wrong M).")
    return codes.astype(np.uint8)


def code_diagnostics(codes: np.ndarray, M: int, recon_error: float | None = None) -> dict:
    """Code-space diagnostics (DESIGN.md section 3).

    Keys: n_items, D, M; usage int64 [D, M] (items per codeword per digit); used_codewords int [D];
    entropy_bits float [D] (Shannon entropy of each digit's usage, in bits) against max_entropy_bits = log2 M;
    mean_entropy_bits; mean_entropy_ratio (mean entropy / log2 M); n_distinct_codes; n_colliding_items (items whose
    full D-digit code equals at least one other item's) and collision_share (= that / n_items); recon_error.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise DataError(f"codes must be a 2-D array [n, D]; got shape {codes.shape}.")
    n, D = codes.shape
    if n and int(codes.max()) >= M:
        raise DataError(f"codes contain {int(codes.max())}, which is not below M={M}.")
    usage = np.zeros((D, M), dtype=np.int64)
    for k in range(D):
        usage[k] = np.bincount(codes[:, k].astype(np.int64), minlength=M)
    p = usage / max(n, 1)  # [D, M]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)  # [D]
    if n:
        _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
        n_distinct = len(counts)
        n_coll = int((counts[inverse.reshape(-1)] > 1).sum())
    else:
        n_distinct, n_coll = 0, 0
    max_ent = float(math.log2(M)) if M > 1 else 0.0
    mean_ent = float(ent.mean()) if D else 0.0
    return {
        "n_items": int(n),
        "D": int(D),
        "M": int(M),
        "usage": usage,
        "used_codewords": (usage > 0).sum(axis=1),
        "entropy_bits": ent,
        "max_entropy_bits": max_ent,
        "mean_entropy_bits": mean_ent,
        "mean_entropy_ratio": mean_ent / max_ent if max_ent > 0 else 0.0,
        "n_distinct_codes": n_distinct,
        "n_colliding_items": n_coll,
        "collision_share": n_coll / n if n else 0.0,
        "recon_error": None if recon_error is None else float(recon_error),
    }


def diagnostics_to_jsonable(diag: dict) -> dict:
    """Arrays -> lists so the diagnostics can be written as JSON."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in diag.items()}


def format_diagnostics(diag: dict) -> str:
    ent = np.asarray(diag["entropy_bits"])
    lines = [
        f"items: {diag['n_items']}   digits D: {diag['D']}   codewords M: {diag['M']}",
        (f"entropy per digit: mean {diag['mean_entropy_bits']:.3f} bits of max {diag['max_entropy_bits']:.3f} "
         f"({100 * diag['mean_entropy_ratio']:.1f}%), min {ent.min() if ent.size else 0:.3f}, "
         f"max {ent.max() if ent.size else 0:.3f}"),
        f"codewords used per digit: min {int(np.min(diag['used_codewords']))} of {diag['M']}",
        (f"distinct codes: {diag['n_distinct_codes']}   colliding items: {diag['n_colliding_items']} "
         f"({100 * diag['collision_share']:.2f}%)"),
    ]
    if diag.get("recon_error") is not None:
        lines.append(f"reconstruction error (mean ||x - x_hat||^2): {diag['recon_error']:.5f}")
    return "\n".join(lines)


def reconstruction_error(emb: np.ndarray, codes: np.ndarray, mean: np.ndarray, rotation: np.ndarray,
                         centroids: np.ndarray, chunk: int = 8192) -> float:
    """Mean over items of ||x - x_hat||^2 (sum over dimensions, mean over rows)."""
    total = 0.0
    for s in range(0, len(emb), chunk):
        x = emb[s:s + chunk].astype(np.float64)
        xh = _decode_np(codes[s:s + chunk], mean, rotation, centroids).astype(np.float64)
        total += float(((x - xh) ** 2).sum())
    return total / max(len(emb), 1)


# ==================================================================== helpers: validation, threads


def _as_float32_2d(emb: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(emb)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty 2-D array [n_items, d]; got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{name} must hold floating-point vectors; got dtype {arr.dtype}.")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))[:5].tolist()
        raise DataError(f"{name} contains NaN or infinite values (e.g. rows {bad}); re-encode those items.")
    return arr


def _effective_threads(requested: int) -> int:
    """``requested`` capped at the CPU count and, if torch is loaded, at torch.get_num_threads() (CONTRACTS.md)."""
    cap = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    if torch is not None:
        cap = min(cap, torch.get_num_threads())
    return max(1, min(int(requested), cap))


@contextlib.contextmanager
def _thread_limit(n: int) -> Iterator[None]:
    """Limit BLAS, every loaded OpenMP runtime (torch's and faiss' own libgomp) and torch to ``n`` threads."""
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    limiter: Any = contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=n)
    except (ImportError, OSError, RuntimeError):  # no threadpoolctl / a runtime it cannot drive: faiss' limit holds
        limiter = contextlib.nullcontext()
    try:
        with limiter:
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)


# ==================================================================== our OPQ / PQ (numpy)


def _eigen_allocation(xc: np.ndarray, D: int) -> np.ndarray:
    """PCA rotation whose columns are grouped so each of the D sub-spaces gets a balanced product of variances.

    Ge et al. 2014, non-parametric OPQ initialisation ("eigenvalue allocation"). Returns an orthogonal [d, d].
    """
    d = xc.shape[1]
    s = d // D
    cov = (xc.astype(np.float64).T @ xc.astype(np.float64)) / max(len(xc), 1)  # [d, d]
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    log_ev = np.log(np.maximum(evals[order], 1e-12))
    buckets: list[list[int]] = [[] for _ in range(D)]
    score = np.zeros(D)
    for i, le in zip(order, log_ev, strict=True):
        open_b = [k for k in range(D) if len(buckets[k]) < s]
        k = min(open_b, key=lambda j: score[j])
        buckets[k].append(int(i))
        score[k] += le
    perm = [i for bkt in buckets for i in bkt]
    return evecs[:, perm]  # [d, d]


def _assign(xs: np.ndarray, cents: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Nearest codeword per digit: xs [D, n, s], cents [D, M, s] -> int64 [D, n].

    argmin_m ||x - c_m||^2 = argmax_m (x . c_m - ||c_m||^2 / 2), computed as one batched matmul of x augmented with
    a constant 1 against the centroids augmented with -||c||^2 / 2 (row chunks keep the [D, chunk, M] block in cache).
    """
    D, n, _ = xs.shape
    ca = np.concatenate([cents.transpose(0, 2, 1), -0.5 * (cents * cents).sum(-1)[:, None, :]], axis=1)  # [D, s+1, M]
    ca = np.ascontiguousarray(ca, dtype=np.float32)
    out = np.empty((D, n), dtype=np.int64)
    ones = np.ones((D, min(chunk, n), 1), dtype=np.float32)
    for a in range(0, n, chunk):
        xb = xs[:, a:a + chunk]  # [D, c, s]
        xa = np.concatenate([xb, ones[:, : xb.shape[1]]], axis=2)  # [D, c, s+1]
        out[:, a:a + chunk] = np.matmul(xa, ca).argmax(-1)  # [D, c]
    return out


def _update_centroids(xs: np.ndarray, cents: np.ndarray, assign: np.ndarray, rng: np.random.Generator) -> None:
    """One Lloyd update of cents [D, M, s] (in place) from assign [D, n]; empty codewords re-seeded at random points."""
    D, n, s = xs.shape
    M = cents.shape[1]
    idx = (assign + (np.arange(D) * M)[:, None]).ravel()  # [D*n]
    counts = np.bincount(idx, minlength=D * M).astype(np.float64)  # [D*M]
    flat = xs.reshape(D * n, s)
    sums = np.stack([np.bincount(idx, weights=flat[:, j], minlength=D * M) for j in range(s)], axis=1)  # [D*M, s]
    new = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        pick = rng.integers(0, n, size=len(empty))
        noise = 1 + 1e-3 * rng.standard_normal((len(empty), s)).astype(np.float32)
        new[empty] = xs[empty // M, pick] * noise
    cents[...] = new.reshape(D, M, s)


def _procrustes(m: np.ndarray) -> np.ndarray:
    """The orthogonal R maximising trace(R^T m), i.e. the polar factor U V^T of m = U S V^T (float32 [d, d]).

    (m (m^T m)^(-1/2) through eigh would be faster but loses orthogonality when m is ill-conditioned, as it is here.)
    """
    u, _, vt = np.linalg.svd(m.astype(np.float64))
    return (u @ vt).astype(np.float32)


def _kmeans_steps(xs: np.ndarray, cents: np.ndarray, iters: int, rng: np.random.Generator) -> np.ndarray | None:
    """``iters`` batched Lloyd iterations over the D sub-spaces (cents updated in place); returns the last assignment
    (made before the last update), or None if iters == 0."""
    assign = None
    for _ in range(iters):
        assign = _assign(xs, cents)  # [D, n]
        _update_centroids(xs, cents, assign, rng)
    return assign


def _split(x: np.ndarray, D: int) -> np.ndarray:
    """[n, d] -> [D, n, d/D] contiguous."""
    n, d = x.shape
    return np.ascontiguousarray(x.reshape(n, D, d // D).transpose(1, 0, 2))


def _train_opq(xtrain: np.ndarray, cfg: CodeConfig, rotate: bool, progress: Progress | None):
    D, M = int(cfg.D), cfg.M
    n, d = xtrain.shape
    rng = np.random.default_rng(int(cfg.seed))
    mean = xtrain.mean(axis=0, dtype=np.float64).astype(np.float32)  # [d]
    xc = np.ascontiguousarray(xtrain - mean, dtype=np.float32)  # [n, d]
    if not rotate:
        rot = np.eye(d, dtype=np.float32)  # [d, d]
    elif cfg.init == "pca":
        rot = _eigen_allocation(xc, D).astype(np.float32)
    else:  # random orthogonal (as faiss): on clustered text vectors it converges much faster than PCA + allocation
        rot = np.linalg.qr(rng.standard_normal((d, d)))[0].astype(np.float32)
    n_outer = cfg.opq_iters if rotate else 0
    xs = _split(xc @ rot, D)  # [D, n, s]
    cents = np.ascontiguousarray(xs[:, rng.permutation(n)[:M]])  # [D, M, s] init at random training points
    assign = _kmeans_steps(xs, cents, cfg.init_kmeans_iters, rng)
    for it in range(n_outer):
        # Procrustes: the orthogonal R minimising ||xc @ R - y||_F for the current reconstruction y (codes from the
        # last assignment, centroids after the last update -- never worse than before that update).
        if assign is None:
            assign = _assign(xs, cents)
        y = np.take_along_axis(cents, assign[:, :, None], axis=1)  # [D, n, s]
        y = y.transpose(1, 0, 2).reshape(n, d)  # [n, d]
        rot = _procrustes(xc.T @ y)  # [d, d]
        xs = _split(xc @ rot, D)
        assign = _kmeans_steps(xs, cents, cfg.kmeans_iters, rng)
        report(progress, 0.1 + 0.7 * (it + 1) / max(n_outer, 1), f"OPQ alternation {it + 1}/{n_outer}")
    _kmeans_steps(xs, cents, cfg.final_kmeans_iters, rng)
    report(progress, 0.85, "encoding all items")
    return mean, rot, cents


def _encode_np(emb: np.ndarray, mean, rot, cents, chunk: int = 8192) -> np.ndarray:
    D = cents.shape[0]
    out = np.empty((len(emb), D), dtype=np.uint8)
    for a in range(0, len(emb), chunk):
        xs = _split((emb[a:a + chunk] - mean) @ rot, D)  # [D, c, s]
        out[a:a + chunk] = _assign(xs, cents).T.astype(np.uint8)  # [c, D]
    return out


def _decode_np(codes: np.ndarray, mean, rot, cents) -> np.ndarray:
    codes = np.asarray(codes).astype(np.int64)  # [n, D]
    D = cents.shape[0]
    parts = cents[np.arange(D)[None, :], codes]  # [n, D, s]
    return (parts.reshape(len(codes), -1) @ rot.T + mean).astype(np.float32)  # [n, d]


# ==================================================================== random codes (ablation)


def _random_codes(emb: np.ndarray, train_idx: np.ndarray, cfg: CodeConfig):
    D, M = int(cfg.D), cfg.M
    n, d = emb.shape
    s = d // D
    rng = np.random.default_rng(cfg.seed)
    codes = rng.integers(0, M, size=(n, D)).astype(np.uint8)  # [n, D]
    xt = emb[train_idx]
    mean = xt.mean(axis=0, dtype=np.float64).astype(np.float32)  # [d]
    xs = (xt - mean).reshape(len(xt), D, s)  # [n_t, D, s]
    cents = np.zeros((D, M, s), dtype=np.float64)
    for k in range(D):
        ck = codes[train_idx, k].astype(np.int64)
        cnt = np.bincount(ck, minlength=M)
        np.add.at(cents[k], ck, xs[:, k])
        cents[k] /= np.maximum(cnt, 1)[:, None]
    return codes, mean, np.eye(d, dtype=np.float32), cents.astype(np.float32)


# ==================================================================== faiss (upstream)


@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what C++ code writes to file descriptor 2 (faiss prints one warning per sub-quantizer k-means)."""
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def faiss_factory_string(cfg: CodeConfig) -> str:
    D, b = int(cfg.D), int(cfg.b)
    return {"ivf1np": f"OPQ{D},IVF1,PQ{D}x{b}np", "ivf1": f"OPQ{D},IVF1,PQ{D}x{b}"}.get(cfg.faiss_variant,
                                                                                      f"OPQ{D},PQ{D}x{b}np")


def _unpack_codes(packed: np.ndarray, D: int, b: int) -> np.ndarray:
    """faiss packs b-bit codes least-significant bit first; -> uint8 [n, D]."""
    if b == 8:
        return np.ascontiguousarray(packed[:, :D], dtype=np.uint8)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : D * b].reshape(len(packed), D, b)  # [n, D, b]
    return (bits.astype(np.int64) * (1 << np.arange(b))).sum(-1).astype(np.uint8)


def _train_faiss(xtrain: np.ndarray, emb: np.ndarray, cfg: CodeConfig, threads: int):
    import faiss

    D, b = int(cfg.D), int(cfg.b)
    d = xtrain.shape[1]
    old_threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        index = faiss.index_factory(d, faiss_factory_string(cfg), faiss.METRIC_INNER_PRODUCT)
        opq = faiss.downcast_VectorTransform(index.chain.at(0))
        if cfg.faiss_opq_niter is not None:
            opq.niter = int(cfg.faiss_opq_niter)
        if cfg.faiss_opq_niter_pq is not None:
            opq.niter_pq = int(cfg.faiss_opq_niter_pq)
        with _captured_stderr() as err:
            index.train(np.ascontiguousarray(xtrain, dtype=np.float32))
        codes = _unpack_codes(index.sa_encode(np.ascontiguousarray(emb, dtype=np.float32)), D, b)
    finally:
        faiss.omp_set_num_threads(old_threads)
    A = faiss.vector_to_array(opq.A).reshape(opq.d_out, opq.d_in)  # y = A x
    inner = faiss.downcast_index(index.index)
    pq = inner.pq
    cents = faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub).astype(np.float32)
    if cfg.faiss_variant in ("ivf1", "ivf1np"):
        c_rot = inner.quantizer.reconstruct(0)  # [d] the single IVF centroid, in rotated space
        mean = (c_rot @ A).astype(np.float32)  # back to input space: A^T c
    else:
        mean = np.zeros(d, dtype=np.float32)
    warns = [ln for ln in err if "WARNING" in ln]
    out = []
    if warns:
        out.append(f"faiss printed {len(warns)} warnings while training, e.g. {warns[0].strip()!r}.")
    return mean, A.T.astype(np.float32), cents, codes, out


# ==================================================================== CLI


def register_cli(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "codes",
        help="Quantize item vectors into discrete codes (OPQ) and print code diagnostics.",
        description="Train a product quantizer on the training items' vectors and encode every item into D "
                    "digits of b bits (uint8 codes). Writes codes.npy and diagnostics.json to --out and prints "
                    "per-digit entropy, codeword usage, full-code collisions and reconstruction error.",
    )
    p.add_argument("--embeddings", required=True, metavar="FILE.npy", help="float32 array [n_items, d] (.npy).")
    p.add_argument("--train-mask", metavar="FILE.npy", default=None,
                   help="optional bool array [n_items]: items of the training split (the quantizer is trained on "
                        "these only). Default: all items.")
    p.add_argument("--D", type=int, default=None, help="digits per item; must divide d (default: 32 if possible).")
    p.add_argument("--bits", type=int, default=None,
                   help="bits per digit b, M = 2**b codewords (default: largest b <= 8 with >= 39*M training "
                        "items).")
    p.add_argument("--method", choices=METHODS, default="opq",
                   help="opq = our fast OPQ (default); faiss_opq = faiss OPQ{D},IVF1,PQ{D}x{b} as upstream; "
                        "pq = no rotation (ablation); random = random codes (ablation).")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0).")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for training (default 1).")
    p.add_argument("--cache-dir", default=None, help="folder for cached quantizers (default: none).")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for codes.npy and diagnostics.json.")
    p.set_defaults(func=_cli_codes)
    return p


def _load_user_npy(path: str, what: str) -> np.ndarray:
    try:
        return load_npy(path)
    except FileNotFoundError as e:
        raise DataError(f"The {what} file {path} does not exist.") from e
    except ValueError as e:
        raise DataError(f"The {what} file {path} is not a plain .npy array (object arrays are refused): {e}") from e
    except OSError as e:
        raise DataError(f"The {what} file {path} cannot be read: {e}") from e


def _cli_codes(args) -> int:
    emb = _load_user_npy(args.embeddings, "embeddings")
    mask = None
    if args.train_mask:
        mask = _load_user_npy(args.train_mask, "train-mask")
        if mask.dtype != bool:
            raise DataError(f"The train-mask file {args.train_mask} must hold a bool array; got {mask.dtype}.")
    cfg = CodeConfig(D=args.D, b=args.bits, method=args.method, seed=args.seed, threads=args.threads)

    def prog(frac: float, msg: str) -> None:
        print(f"[{100 * frac:5.1f}%] {msg}", file=sys.stderr)

    res = build_codes(emb, mask, cfg, cache_dir=args.cache_dir, progress=prog)
    out = Path(args.out)
    atomic_save_npy(out / "codes.npy", res.codes)
    diag = res.diagnostics()
    payload = diagnostics_to_jsonable(diag)
    payload.update(method=res.method, config=res.config.to_dict(), train_seconds=res.train_seconds,
                   n_train=res.n_train, warnings=res.warnings)
    atomic_write_json(out / "diagnostics.json", payload)
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(format_diagnostics(diag))
    print(f"method {res.method}, {res.train_seconds:.2f} s{' (cached)' if res.from_cache else ''}; "
          f"wrote {out / 'codes.npy'} and {out / 'diagnostics.json'}")
    return 0

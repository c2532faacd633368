"""Full-ranking evaluation over the whole catalog: Recall@K and NDCG@K with one held-out item per user, and top-K.

Reference: the RecBole full-sort protocol used by VQ-Rec (Hou et al., WWW 2023). With one target per user,
Recall@K is the hit rate and NDCG@K = 1 / log2(rank + 2) for the 0-based rank of the target if rank < K, else 0.
Rank = number of items scoring strictly higher than the target (ties resolved in the target's favour).
History items are NOT masked by default (upstream behaviour); ``mask_history=True`` sets the scores of every item in
the input sequence to -inf (the target too if it repeats a history item: a masked list cannot contain it).
Scoring is batched over users so at most ``chunk`` user x item scores exist at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .fsutil import Progress, report

DEFAULT_KS = (10, 50)


def metrics_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean Recall@K and NDCG@K from 0-based target ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"recall@{k}"] = float(hit.mean()) if len(ranks) else 0.0
        ndcg = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
        out[f"ndcg@{k}"] = float(ndcg.mean()) if len(ranks) else 0.0
    return out


def _as_tensor(a, dtype=torch.long) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def _mask_history(scores: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(scores.shape[0], scores.shape[1] + 1, dtype=torch.bool)  # [B, n+1], column 0 = padding
    mask.scatter_(1, seq.long(), True)
    return scores.masked_fill(mask[:, 1:], float("-inf"))  # [B, n]


def _iter_batches(n_users: int, n_items: int, chunk: int):
    step = max(1, int(chunk) // max(1, n_items))
    for start in range(0, n_users, step):
        yield start, min(n_users, start + step)


@torch.no_grad()
def target_ranks(model, seq, length, target, chunk: int = 2_000_000, mask_history: bool = False,
                 progress: Progress | None = None) -> np.ndarray:
    """0-based rank of each target over the full catalog. ``seq`` int [n, L], ``length`` [n], ``target`` [n]."""
    seq_t, len_t, tgt_t = _as_tensor(seq), _as_tensor(length), _as_tensor(target)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        fn = model.scoring_fn() if hasattr(model, "scoring_fn") else model.score_batch
        n_items = int(model.n_items)
        ranks = np.empty(len(tgt_t), dtype=np.int64)
        for a, b in _iter_batches(len(tgt_t), n_items, chunk):
            scores = fn(seq_t[a:b], len_t[a:b]).float()  # [B, n]
            if mask_history:
                scores = _mask_history(scores, seq_t[a:b])
            t = scores.gather(1, tgt_t[a:b].unsqueeze(1))  # [B, 1]
            ranks[a:b] = (scores > t).sum(dim=1).numpy()
            report(progress, b / max(1, len(tgt_t)), "ranking")
    finally:
        if was_training:
            model.train()
    return ranks


def evaluate(model, samples, ks: Sequence[int] = DEFAULT_KS, chunk: int = 2_000_000, mask_history: bool = False,
             max_users: int | None = None, seed: int = 0, progress: Progress | None = None) -> dict[str, float]:
    """Recall@K / NDCG@K of ``model`` on ``samples`` (a data.SeqSamples: seq, length, target).

    ``max_users`` evaluates a fixed random subset (for fast early stopping); None = everyone.
    """
    seq, length, target = np.asarray(samples.seq), np.asarray(samples.length), np.asarray(samples.target)
    if max_users is not None and len(target) > max_users:
        idx = np.sort(np.random.default_rng(seed).choice(len(target), size=max_users, replace=False))
        seq, length, target = seq[idx], length[idx], target[idx]
    ranks = target_ranks(model, seq, length, target, chunk=chunk, mask_history=mask_history, progress=progress)
    out = metrics_from_ranks(ranks, ks)
    out["n_users"] = len(ranks)
    return out


@torch.no_grad()
def topk(model, seq, length, k: int = 10, chunk: int = 2_000_000, mask_history: bool = False,
         exclude: Sequence[Sequence[int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices (0-based) and scores per row, best first: (int64 [n, k], float32 [n, k]).

    ``exclude`` optionally lists, per row, extra 0-based item indices to leave out.
    """
    seq_t, len_t = _as_tensor(seq), _as_tensor(length)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        fn = model.scoring_fn() if hasattr(model, "scoring_fn") else model.score_batch
        n_items = int(model.n_items)
        k = min(int(k), n_items)
        idx_out = np.empty((len(seq_t), k), dtype=np.int64)
        val_out = np.empty((len(seq_t), k), dtype=np.float32)
        for a, b in _iter_batches(len(seq_t), n_items, chunk):
            scores = fn(seq_t[a:b], len_t[a:b]).float()  # [B, n]
            if mask_history:
                scores = _mask_history(scores, seq_t[a:b])
            if exclude is not None:
                for r in range(a, b):
                    if len(exclude[r]):
                        scores[r - a, _as_tensor(exclude[r])] = float("-inf")
            vals, idx = torch.topk(scores, k, dim=1)  # [B, k]
            idx_out[a:b], val_out[a:b] = idx.numpy(), vals.numpy()
    finally:
        if was_training:
            model.train()
    return idx_out, val_out

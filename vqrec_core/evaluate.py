"""Full-ranking evaluation over the whole catalog: Recall@K and NDCG@K with one held-out item per user, and top-K.

Reference: the RecBole full-sort protocol used by VQ-Rec (Hou et al., WWW 2023). With one target per user,
Recall@K is the hit rate and NDCG@K = 1 / log2(rank + 2) for the 0-based rank of the target if rank < K, else 0.
Rank = number of items scoring strictly higher than the target: items tied with the target (equal float32 scores)
do not count, so ties are resolved in the target's favour; a NaN score never counts as higher, and a target scored
-inf has as rank the number of items with a finite or +inf score.
History items are NOT masked by default (upstream behaviour); ``mask_history=True`` sets the scores of every item in
the input sequence to -inf (the target too if it repeats a history item: a masked list cannot contain it).

Speed (docs/benchmarks.md, section 4): scoring is batched over users so at most ``chunk`` user x item scores exist
at once; ``model.scoring_fn()`` prepares the item side once per call (models.py). The rank count overwrites each
score chunk in place with ``scores.gt_(t)`` (1.0 where higher, else 0.0) and sums it in float32: the same comparison
as ``(scores > t).sum(1)``, whose bool -> int64 reduction costs several times the matmul on CPU. Exact below 2**24
items (float32 integers). A scorer's ``scoring_fn`` / ``score_batch`` must therefore return a new tensor per call,
never a view of its own state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

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


def _mask_history(scores: torch.Tensor, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Set the score of every history item (the first ``length`` entries of ``seq``) to -inf, in place (O(B L), not
    O(B n)); returns ``scores``."""
    seq = seq.long()  # [B, L], item index + 1, 0 = padding
    valid = (seq > 0) & (torch.arange(seq.shape[1]).unsqueeze(0) < length.unsqueeze(1))  # [B, L]
    rows, cols = valid.nonzero(as_tuple=True)  # [P], [P]
    scores[rows, seq[rows, cols] - 1] = float("-inf")  # [B, n]
    return scores


def count_higher(scores: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Per row, the number of entries of ``scores`` [B, n] strictly greater than ``t`` [B, 1]; int64 [B].

    Equal to ``(scores > t).sum(1)`` (same comparison: ties and NaN never count) but OVERWRITES ``scores`` with the
    0/1 comparison result; float32 sums are exact below 2**24 columns, above that the sum runs in float64.
    """
    acc = torch.float32 if scores.shape[1] < 2**24 else torch.float64
    return scores.gt_(t).sum(dim=1, dtype=acc).long()  # [B]


def _iter_batches(n_users: int, n_items: int, chunk: int):
    step = max(1, int(chunk) // max(1, n_items))
    for start in range(0, n_users, step):
        yield start, min(n_users, start + step)


@contextmanager
def _scoring(model) -> Iterator[tuple[Callable, int]]:
    """(batch scoring function, n_items) with the model in eval mode; its training mode is restored afterwards."""
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        fn = model.scoring_fn() if hasattr(model, "scoring_fn") else model.score_batch
        yield fn, int(model.n_items)
    finally:
        if was_training:
            model.train()


@torch.no_grad()
def target_ranks(model, seq, length, target, chunk: int = 2_000_000, mask_history: bool = False,
                 progress: Progress | None = None) -> np.ndarray:
    """0-based rank of each target over the full catalog. ``seq`` int [n, L], ``length`` [n], ``target`` [n]."""
    seq_t, len_t, tgt_t = _as_tensor(seq), _as_tensor(length), _as_tensor(target)
    ranks = np.empty(len(tgt_t), dtype=np.int64)
    with _scoring(model) as (fn, n_items):
        for a, b in _iter_batches(len(tgt_t), n_items, chunk):
            scores = fn(seq_t[a:b], len_t[a:b]).float()  # [B, n]
            if mask_history:
                scores = _mask_history(scores, seq_t[a:b], len_t[a:b])
            t = scores.gather(1, tgt_t[a:b].unsqueeze(1))  # [B, 1]
            ranks[a:b] = count_higher(scores, t).numpy()  # scores is overwritten from here on
            report(progress, b / max(1, len(tgt_t)), "ranking")
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
    with _scoring(model) as (fn, n_items):
        k = min(int(k), n_items)
        idx_out = np.empty((len(seq_t), k), dtype=np.int64)
        val_out = np.empty((len(seq_t), k), dtype=np.float32)
        for a, b in _iter_batches(len(seq_t), n_items, chunk):
            scores = fn(seq_t[a:b], len_t[a:b]).float()  # [B, n]
            if mask_history:
                scores = _mask_history(scores, seq_t[a:b], len_t[a:b])
            if exclude is not None:
                for r in range(a, b):
                    if len(exclude[r]):
                        scores[r - a, _as_tensor(exclude[r])] = float("-inf")
            vals, idx = torch.topk(scores, k, dim=1)  # [B, k]
            idx_out[a:b], val_out[a:b] = idx.numpy(), vals.numpy()
    return idx_out, val_out

"""Full-ranking evaluation benchmark: ``vqrec_core.evaluate`` against a bare ``torch.matmul`` of the same shape.

For a catalog of ``size`` items and U users (the real Beauty validation histories, item indices folded into the
catalog), with a VQ-Rec model of the preset's size (h) and random codes:
  * ``eval``: end-to-end ``evaluate(model, samples)`` (encode every history, score every item, rank the target) in
    users per second; baseline = the floor for the same work: ``model.encode`` of the same chunks + a bare
    ``torch.matmul`` [B, h] x [h, n] per chunk (speedup < 1: the share of that floor we reach).
  * ``eval_scoring``: the scoring + ranking part alone (``evaluate.target_ranks`` on precomputed sequence vectors,
    through the model's own evaluation path: items normalised once, query / tau, one matmul per chunk, gather the
    target, count higher scores in place) in GFLOP/s (2 U n h flops), against the bare matmul in the same chunks:
    ``speedup`` = fraction of the matmul figure, the physical limit here (the goal is >= 0.5).
  * ``eval_scoring_before``: the same work with the kernel ``vqrec_core`` had before (commit 5f86bf5: cosine scores
    normalising the item matrix in every chunk, dividing the [B, n] scores by tau, ``(scores > t).sum(1)``), kept
    as a reference: the before/after ratio in the same run, and a check that both give the same ranks.
Chunks: ``chunk`` user x item scores at a time (the evaluate default), i.e. B = chunk // n users per matmul.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .common import interleaved, load_split, median, peak_rss_mb, row


class _Precomputed:
    """A scorer whose 'sequences' are row indices into precomputed sequence vectors (so only scoring is timed)."""

    def __init__(self, model, s: torch.Tensor):
        self.model, self.s, self.n_items = model, s, model.n_items

    def scoring_fn(self):  # the model's scoring_fn with encode replaced by a row lookup
        items_t = self.model.item_operand(self.model.item_matrix())  # [h, n]
        return lambda idx, length: self.model.query(self.s[idx[:, 0]]) @ items_t  # [B, n]


def _samples(split, n_items: int, n_users: int):
    from types import SimpleNamespace

    v = split.valid
    k = min(n_users, len(v.target))
    seq = v.seq[:k].copy()
    seq = np.where(seq > 0, (seq - 1) % n_items + 1, 0)  # fold item indices into the catalog
    return SimpleNamespace(seq=seq, length=v.length[:k].copy(), target=v.target[:k] % n_items)


def run(sizes=(10000,), repeats: int = 3, quick: bool = False, preset_name: str = "standard",
        n_users: int | None = None, chunk: int = 2_000_000) -> list[dict]:
    from vqrec_core.experiment import preset

    cfg = preset(preset_name)
    n_users = n_users or (500 if quick else 3000)
    split = load_split(max_users=None if not quick else 2 * n_users, seed=0)
    rows = []
    for n in sizes:
        rows += _one(cfg, split, int(n), n_users, repeats, preset_name, chunk)
    return rows


def _one(cfg, split, n: int, n_users: int, repeats: int, preset_name: str, chunk: int) -> list[dict]:
    from vqrec_core.codes import flat_code_ids
    from vqrec_core.evaluate import evaluate, target_ranks
    from vqrec_core.models import VQRec, VQRecConfig

    D, b = int(cfg.D or 32), int(cfg.b or 8)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    model = VQRec(VQRecConfig(D=D, M=2**b, tau=cfg.tau, h=cfg.h, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
                              ffn=cfg.ffn, dropout=cfg.dropout, max_len=cfg.max_len),
                  flat_code_ids(rng.integers(0, 2**b, size=(n, D)).astype(np.uint8), 2**b)).eval()
    smp = _samples(split, n, n_users)
    U, h = len(smp.target), cfg.h
    B = max(1, chunk // n)
    seq_t, len_t = torch.as_tensor(smp.seq), torch.as_tensor(smp.length)
    with torch.no_grad():
        s_all = torch.cat([model.encode(seq_t[a:a + B], len_t[a:a + B]) for a in range(0, U, B)])  # [U, h]
        items_t = model.item_matrix().T.contiguous()  # [h, n]
    idx = torch.arange(U).unsqueeze(1)  # [U, 1] row indices standing in for histories
    pre = _Precomputed(model, s_all)

    def e2e():
        return evaluate(model, smp, chunk=chunk)

    @torch.no_grad()
    def encode_only():
        for a in range(0, U, B):
            model.encode(seq_t[a:a + B], len_t[a:a + B])

    def scoring():
        return target_ranks(pre, idx, torch.ones(U, dtype=torch.long), smp.target, chunk=chunk)

    tgt_t = torch.as_tensor(smp.target)
    tau = cfg.tau

    @torch.no_grad()
    def before():
        """The kernel of vqrec_core before the fix (commit 5f86bf5), for the before/after ratio and a rank check."""
        items = model.item_matrix()  # [n, h], once per call as before
        ranks = np.empty(U, dtype=np.int64)
        for a in range(0, U, B):
            sc = F.normalize(s_all[a:a + B], dim=-1) @ F.normalize(items, dim=-1).T / tau  # [B, n], per chunk
            t = sc.gather(1, tgt_t[a:a + B].unsqueeze(1))  # [B, 1]
            ranks[a:a + B] = (sc > t).sum(dim=1).numpy()
        return ranks

    @torch.no_grad()
    def matmul():
        for a in range(0, U, B):
            torch.matmul(s_all[a:a + B], items_t)  # [B, n]

    e2e()  # warm-up; our peak memory
    rss = peak_rss_mb()
    r_before, r_ours = before(), scoring()
    agree = float(np.mean(r_before == r_ours))  # differs only where rounding reorders near-ties (1/tau applied first)
    if np.mean(np.abs(r_before - r_ours) <= max(1, n // 1000)) < 0.99:
        raise AssertionError("evaluate.target_ranks disagrees with the previous ranking kernel")
    t_e2e, t_enc, t_score, t_bef, t_mm = interleaved([e2e, encode_only, scoring, before, matmul], repeats)
    e, enc, sc, bf, mm = (median(x) for x in (t_e2e, t_enc, t_score, t_bef, t_mm))
    gflop = 2.0 * U * n * h / 1e9
    conf = f"{preset_name} (h={h}, D={D}, M={2**b}), U={U}"
    rows = []
    rows.append(row("eval", n, e, enc + mm, config=conf, ours_rate=round(U / e, 1),
                    baseline_rate=round(U / (enc + mm), 1), unit="users/s", peak_rss_mb=rss, repeats=repeats,
                    note=f"baseline = encode + bare matmul (the floor); {B} users per chunk"))
    rows.append(row("eval_scoring", n, sc, mm, config=conf, ours_rate=round(gflop / sc, 2),
                    baseline_rate=round(gflop / mm, 2), unit="GFLOP/s", peak_rss_mb=rss, repeats=repeats,
                    note=f"speedup = share of torch.matmul GFLOP/s; {B} users per chunk; encode alone {enc:.3g} s; "
                         f"{bf / sc:.1f}x faster than the kernel before (eval_scoring_before)"))
    rows.append(row("eval_scoring_before", n, bf, mm, config=conf, ours_rate=round(gflop / bf, 2),
                    baseline_rate=round(gflop / mm, 2), unit="GFLOP/s", peak_rss_mb=rss, repeats=repeats,
                    note=f"previous kernel (commit 5f86bf5), reference only; same rank as eval_scoring for "
                         f"{agree:.1%} of users"))
    return rows

"""Training-throughput benchmark: our ``vqrec_core.train.Trainer`` vs a plain PyTorch loop over the same model.

Stages (each with the real loss of ``vqrec_core.train`` and the preset's batch size and model size from
``vqrec_core.experiment.preset``):
  * ``train_vqrec``   -- VQ-Rec pre-training step (InfoNCE, in-batch + semi-synthetic negatives, all parameters);
  * ``train_textseq`` -- text-embedding model (MoE adaptor) pre-training step (InfoNCE, all parameters);
  * ``train_sasrec``  -- SASRec-ID on the target (full softmax over the catalog, all parameters);
  * ``adapt_vqrec``   -- VQ-Rec adaptation (full softmax; only the code table + input LayerNorm train; the
    alignment phase is not included).
Ours = ``Trainer(...).fit()`` for one epoch capped at ``steps`` optimiser steps, no validation (its batches are
length-bucketed, see ``train.iterate_batches``). Baseline = the loop a user would write: Adam, a random permutation,
``steps`` consecutive batches, the same loss function and the same parameters. Rates are training sequences per
second; ``epoch_s`` = training sequences of the split / our rate (an epoch extrapolated from the measured steps, not a
full epoch: a full one costs minutes per row on this machine).

Data: the real Beauty leave-one-out split on ``size`` randomly chosen users (bundled sample data without shared/).
Item codes are uniform random and text vectors random unit vectors: neither changes the amount of work per step.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from .common import interleaved, load_split, median, peak_rss_mb, row

STAGES = ("train_vqrec", "train_textseq", "train_sasrec", "adapt_vqrec")


def _setup(stage: str, preset_name: str, split, seed: int = 0):
    """(model, trainable params, loss_fn(model, batch), batch_size) for one stage."""
    from vqrec_core.codes import flat_code_ids
    from vqrec_core.experiment import preset
    from vqrec_core.models import SASRecID, SASRecIDConfig, TextSeq, TextSeqConfig, VQRec, VQRecConfig
    from vqrec_core.train import full_softmax_loss, pretrain_loss

    cfg = preset(preset_name)
    enc = {"h": cfg.h, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "ffn": cfg.ffn, "dropout": cfg.dropout,
           "max_len": cfg.max_len}
    rng = np.random.default_rng(seed)
    n = split.n_items
    D, b = int(cfg.D or 32), int(cfg.b or 8)
    torch.manual_seed(seed)
    if stage in ("train_vqrec", "adapt_vqrec"):
        codes = rng.integers(0, 2**b, size=(n, D)).astype(np.uint8)  # [n, D]
        model = VQRec(VQRecConfig(D=D, M=2**b, tau=cfg.tau, **enc), flat_code_ids(codes, 2**b))
    elif stage == "train_textseq":
        t = rng.standard_normal((n, 384)).astype(np.float32)  # [n, 384]
        model = TextSeq(TextSeqConfig(n_experts=cfg.n_experts, tau=cfg.tau, **enc), t / np.linalg.norm(t, axis=1,
                                                                                                      keepdims=True))
    elif stage == "train_sasrec":
        model = SASRecID(SASRecIDConfig(**enc), n)
    else:
        raise ValueError(f"unknown training stage {stage!r}; choose one of {STAGES}")
    if stage == "adapt_vqrec":
        params = list(model.code_embedding.parameters()) + list(model.encoder.input_norm.parameters())
        tcfg, loss = cfg.target, full_softmax_loss
    elif stage == "train_sasrec":
        params, tcfg, loss = list(model.parameters()), cfg.target, full_softmax_loss
    else:
        params, tcfg = list(model.parameters()), cfg.pretrain
        loss = lambda m, batch: pretrain_loss(m, batch, tcfg.rho)  # noqa: E731
    keep = {id(p) for p in params}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return model, loss, tcfg


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _ours(model, loss, tcfg, arrays, steps: int):
    from vqrec_core.train import TrainConfig, Trainer

    cfg = TrainConfig(epochs=1, batch_size=tcfg.batch_size, lr=tcfg.lr, rho=tcfg.rho, max_steps_per_epoch=steps,
                      seed=tcfg.seed)
    return Trainer(model, _params(model), loss, arrays, cfg, valid=None).fit()


def _plain(model, loss, tcfg, arrays, steps: int, rng: np.random.Generator):
    seq, length, target = arrays
    opt = torch.optim.Adam(_params(model), lr=tcfg.lr)
    order = rng.permutation(len(target))
    B = tcfg.batch_size
    model.train()
    for i in range(steps):
        idx = order[i * B:(i + 1) * B]
        batch = (torch.from_numpy(seq[idx]), torch.from_numpy(length[idx]), torch.from_numpy(target[idx]))
        opt.zero_grad(set_to_none=True)
        loss(model, batch).backward()
        opt.step()


def run(sizes=(2000,), repeats: int = 3, quick: bool = False, stages=STAGES, presets=("quick", "standard"),
        steps: int | None = None) -> list[dict]:
    steps = steps or (3 if quick else 6)
    rows = []
    for n_users in sizes:
        split = load_split(max_users=int(n_users), seed=0)
        for stage in stages:
            for pname in presets:
                rows.append(_one(stage, pname, split, int(n_users), repeats, steps))
    return rows


def _one(stage: str, pname: str, split, n_users: int, repeats: int, steps: int) -> dict:
    arrays = (split.train.seq, split.train.length, split.train.target)
    n_train = len(split.train.target)
    model, loss, tcfg = _setup(stage, pname, split)
    base_model = copy.deepcopy(model)
    k = min(steps, -(-n_train // tcfg.batch_size))  # Trainer caps steps at one pass over the data
    seqs = min(k * tcfg.batch_size, n_train)  # sequences per timed call (both loops)
    _ours(model, loss, tcfg, arrays, 1)  # warm-up: allocator, kernels
    rss = peak_rss_mb()
    rng = np.random.default_rng(1)
    ours, base = interleaved([lambda: _ours(model, loss, tcfg, arrays, k),
                              lambda: _plain(base_model, loss, tcfg, arrays, k, rng)], repeats)
    o, b = median(ours), median(base)
    rate_o, rate_b = seqs / o, seqs / b
    return row(stage, n_users, o, b, config=f"{pname} (h={model.cfg.h}, B={tcfg.batch_size})",
               ours_rate=round(rate_o, 1), baseline_rate=round(rate_b, 1), unit="train seqs/s", peak_rss_mb=rss,
               repeats=repeats, epoch_s=round(n_train / rate_o, 2), baseline_epoch_s=round(n_train / rate_b, 2),
               note=f"{k} steps; {split.n_items} items, {n_train} train seqs; epoch ~{n_train / rate_o:.1f} s")

"""Training: multi-domain pre-training, Gumbel-Sinkhorn code alignment, adaptation, and from-scratch training.

Reference: Hou et al., "Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders"
(WWW 2023) and RUCAIBox/VQ-Rec. Pre-training = sequence-item InfoNCE with in-batch (mixed-domain) negatives plus one
semi-synthetic negative per sample (the positive's code with each digit replaced w.p. rho by a random codeword);
in-batch duplicates of the positive are not used as negatives (as upstream). Adaptation = frozen encoder and
positions, optional per-digit code-embedding alignment, then code table + input LayerNorm trained with full-softmax
cross-entropy over all target items, early stopping on validation NDCG@10.

Deliberate deviations from upstream:
- Alignment learns: the hard assignment is a Hungarian permutation of the Gumbel-Sinkhorn matrix in the forward pass
  and the soft Sinkhorn matrix carries the gradient (straight-through). Upstream rounds with ``ceil`` (zero
  gradient) and takes a row argmax (not always a permutation). It ends with a true permutation (Hungarian on the
  learned log-scores) written into the table. The padding row of each digit block is never permuted.
- Alignment is its own short phase (table and encoder frozen, only the permutation scores train), then the
  permutation is fixed and the table is fine-tuned; upstream trains both inside one fine-tuning run.
- Only the sequence-item loss is used in pre-training (upstream also adds a sequence-sequence term).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from .errors import ConfigError
from .evaluate import evaluate
from .fsutil import Progress, report
from .models import NeuralScorer, TextSeq, VQRec

# --------------------------------------------------------------------------------------------------------------------
# Configs


@dataclass
class TrainConfig:
    epochs: int = 10  # maximum epochs
    batch_size: int = 256  # B (also the number of in-batch negatives + 1 in pre-training)
    lr: float = 1e-3  # Adam learning rate (upstream 1e-3)
    weight_decay: float = 0.0  # Adam weight decay
    patience: int = 2  # early stopping: epochs without a better validation NDCG@10 before stopping
    rho: float = 0.75  # semi-synthetic negatives: probability of replacing each code digit (0 = none)
    valid_max_users: int | None = 5000  # validation users per epoch (fixed random subset); None = all
    max_steps_per_epoch: int | None = None  # cap on optimiser steps per epoch (None = one pass over the data)
    eval_chunk: int = 2_000_000  # at most this many user x item scores in memory during evaluation
    seed: int = 2023  # seeds torch and the batch shuffling
    num_threads: int | None = None  # torch.set_num_threads for the run (None = leave as is)


@dataclass
class AlignConfig:
    temperature: float = 0.7  # Gumbel-Sinkhorn temperature
    sinkhorn_iters: int = 5  # Sinkhorn row/column normalisations
    noise: float = 1.0  # scale of the Gumbel noise (0 = deterministic Sinkhorn)
    steps: int = 60  # optimiser steps on the permutation scores
    lr: float = 0.05  # Adam learning rate of the permutation scores
    batch_size: int = 256  # training samples per step


# --------------------------------------------------------------------------------------------------------------------
# Callbacks, stop requests, results


class Callback:
    """Hooks a progress bar or live curve attaches to. ``info`` dicts are plain floats/ints/str."""

    def on_step(self, info: dict) -> None:  # keys: epoch, step, global_step, loss, frac
        pass

    def on_epoch_end(self, info: dict) -> None:  # keys: epoch, loss, valid (metrics dict or None), best, seconds
        pass


class LambdaCallback(Callback):
    def __init__(self, on_step: Callable[[dict], None] | None = None,
                 on_epoch_end: Callable[[dict], None] | None = None):
        self._step, self._epoch = on_step, on_epoch_end

    def on_step(self, info: dict) -> None:
        if self._step:
            self._step(info)

    def on_epoch_end(self, info: dict) -> None:
        if self._epoch:
            self._epoch(info)


StopSignal = threading.Event | Callable[[], bool] | None


def _stop_requested(stop: StopSignal) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one entry per epoch: epoch, loss, valid metrics
    best_epoch: int = -1  # epoch whose weights the model holds at the end (-1: no validation, last weights)
    best_valid: dict | None = None
    stopped: bool = False  # a stop request ended training
    early_stopped: bool = False  # patience ran out
    seconds: float = 0.0
    steps: int = 0
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------------
# Batches


def iterate_batches(seq: np.ndarray, length: np.ndarray, target: np.ndarray, batch_size: int,
                    rng: np.random.Generator, max_steps: int | None = None, bucket: int = 50
                    ) -> Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Shuffled mini-batches (seq [B, L], length [B], target [B]) covering the samples once.

    With ``bucket`` > 1, the shuffled samples are cut into pools of ``bucket`` batches and each pool is sorted by
    length before batching (batch order shuffled again): batches then hold sequences of similar length, so the
    encoder runs on few padding columns (about 5x less work on Amazon data with mean length ~8 and max 50).
    """
    order = rng.permutation(len(target))
    if bucket > 1:
        pool = batch_size * bucket
        order = np.concatenate([p[np.argsort(length[p], kind="stable")]
                                for p in np.array_split(order, max(1, (len(order) + pool - 1) // pool))])
    n_steps = (len(order) + batch_size - 1) // batch_size
    batch_order = rng.permutation(n_steps)
    if max_steps is not None:
        batch_order = batch_order[:max_steps]
    for i in batch_order:
        idx = order[i * batch_size:(i + 1) * batch_size]
        yield (torch.from_numpy(seq[idx]), torch.from_numpy(length[idx]), torch.from_numpy(target[idx]))


def steps_per_epoch(n: int, cfg: TrainConfig) -> int:
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    return min(steps, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else steps


# --------------------------------------------------------------------------------------------------------------------
# Trainer


class Trainer:
    """A generic epoch loop: Adam on ``params``, ``loss_fn(model, batch)``, validation NDCG@10 early stopping.

    The model ends holding the best-validation weights (or the last weights without validation). A stop request
    (``threading.Event`` or callable) ends training after the current step; the best weights are still restored.
    """

    def __init__(self, model: nn.Module, params: Sequence[nn.Parameter], loss_fn: Callable[[nn.Module, tuple], Any],
                 train_arrays: tuple[np.ndarray, np.ndarray, np.ndarray], cfg: TrainConfig, valid=None,
                 callbacks: Sequence[Callback] = (), stop: StopSignal = None, progress: Progress | None = None,
                 metric: str = "ndcg@10"):
        self.model, self.params, self.loss_fn = model, [p for p in params], loss_fn
        self.seq, self.length, self.target = (np.ascontiguousarray(a) for a in train_arrays)
        self.cfg, self.valid, self.callbacks, self.stop, self.progress = cfg, valid, list(callbacks), stop, progress
        self.metric = metric
        if not self.params:
            raise ConfigError("Nothing to train: no parameter requires a gradient.")
        if len(self.target) == 0:
            raise ConfigError("Nothing to train on: the training split has no samples.")

    def _validate(self) -> dict | None:
        if self.valid is None:
            return None
        return evaluate(self.model, self.valid, ks=(10, 50), chunk=self.cfg.eval_chunk,
                        max_users=self.cfg.valid_max_users, seed=self.cfg.seed)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(int(cfg.num_threads))
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        opt = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        res = TrainResult()
        t0 = time.perf_counter()
        best_score, best_state, bad_epochs = -np.inf, None, 0
        n_steps = steps_per_epoch(len(self.target), cfg)
        total = max(1, cfg.epochs * n_steps)
        for epoch in range(cfg.epochs):
            self.model.train()
            losses = []
            for step, batch in enumerate(iterate_batches(self.seq, self.length, self.target, cfg.batch_size, rng,
                                                         cfg.max_steps_per_epoch)):
                opt.zero_grad(set_to_none=True)
                loss = self.loss_fn(self.model, batch)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
                res.steps += 1
                frac = (epoch * n_steps + step + 1) / total
                info = {"epoch": epoch, "step": step, "global_step": res.steps, "loss": losses[-1], "frac": frac}
                for cb in self.callbacks:
                    cb.on_step(info)
                report(self.progress, frac, f"epoch {epoch + 1}/{cfg.epochs} step {step + 1}/{n_steps} "
                                            f"loss {losses[-1]:.4f}")
                if _stop_requested(self.stop):
                    res.stopped = True
                    break
            valid = self._validate()
            entry = {"epoch": epoch, "loss": float(np.mean(losses)) if losses else float("nan"), "valid": valid,
                     "seconds": time.perf_counter() - t0, "partial": res.stopped}
            improved = False
            if valid is not None and valid[self.metric] > best_score:
                best_score, best_state, bad_epochs, improved = valid[self.metric], _copy_state(self.model), 0, True
                res.best_epoch, res.best_valid = epoch, valid
            elif valid is not None:
                bad_epochs += 1
            entry["best"] = improved
            res.history.append(entry)
            for cb in self.callbacks:
                cb.on_epoch_end(dict(entry))
            if res.stopped:
                break
            if valid is not None and bad_epochs >= cfg.patience:
                res.early_stopped = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        self.model.eval()
        res.seconds = time.perf_counter() - t0
        return res


def _copy_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def set_trainable(model: nn.Module, trainable: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    keep = {id(p) for p in trainable}
    out = []
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        if id(p) in keep:
            out.append(p)
    return out


# --------------------------------------------------------------------------------------------------------------------
# Losses


def semi_synthetic_codes(flat: torch.Tensor, M: int, rho: float, gen: torch.Generator | None = None
                         ) -> torch.Tensor:
    """Replace each digit of flat code ids [B, D] w.p. ``rho`` by a uniformly random codeword of that digit."""
    B, D = flat.shape
    offsets = torch.arange(D, device=flat.device) * (M + 1) + 1  # [D]
    random_ids = torch.randint(0, M, (B, D), generator=gen, device=flat.device) + offsets  # [B, D]
    replace = torch.rand(B, D, generator=gen, device=flat.device) < rho  # [B, D]
    return torch.where(replace, random_ids, flat)  # [B, D]


def pretrain_loss(model: NeuralScorer, batch, rho: float = 0.75) -> torch.Tensor:
    """Sequence-item InfoNCE with in-batch negatives (+ one semi-synthetic negative per sample for VQRec)."""
    seq, length, target = batch
    s = F.normalize(model.encode(seq, length), dim=-1)  # [B, h]
    if isinstance(model, VQRec):
        pos_ids = model.flat_codes[target]  # [B, D]
        pos = model.code_vectors(pos_ids)  # [B, h]
    else:
        pos = model.item_vectors(target)  # [B, h]
    pos = F.normalize(pos, dim=-1)
    tau = model.cfg.tau
    logits = s @ pos.T / tau  # [B, B]
    same = target.unsqueeze(0) == target.unsqueeze(1)  # [B, B]
    same.fill_diagonal_(False)
    logits = logits.masked_fill(same, float("-inf"))
    if isinstance(model, VQRec) and rho > 0:
        fake = F.normalize(model.code_vectors(semi_synthetic_codes(pos_ids, model.cfg.M, rho)), dim=-1)  # [B, h]
        logits = torch.cat([logits, (s * fake).sum(-1, keepdim=True) / tau], dim=1)  # [B, B+1]
    return F.cross_entropy(logits, torch.arange(len(target)))


def full_softmax_loss(model: NeuralScorer, batch) -> torch.Tensor:
    """Cross-entropy over every item of the catalog (adaptation and from-scratch training)."""
    seq, length, target = batch
    logits = model.score(model.encode(seq, length), model.item_matrix())  # [B, n_items]
    return F.cross_entropy(logits, target)


# --------------------------------------------------------------------------------------------------------------------
# Pre-training on one or more source domains


def concat_domains(splits: Sequence, catalogs: Sequence[np.ndarray]) -> tuple[tuple, Any, np.ndarray]:
    """Union item space: item indices of domain j are shifted by the catalog sizes of domains < j.

    Returns ((seq, length, target) of all training samples, valid SeqSamples-like of the union, catalog).
    """
    from types import SimpleNamespace

    if len(splits) != len(catalogs) or not splits:
        raise ConfigError("Give one catalog (codes or text vectors) per source domain, and at least one domain.")
    seqs, lens, tgts, vseq, vlen, vtgt = [], [], [], [], [], []
    offset = 0
    max_len = max(s.max_len for s in splits)
    for sp, cat in zip(splits, catalogs, strict=True):
        if len(cat) != sp.n_items:
            raise ConfigError(f"A catalog has {len(cat)} rows but its domain has {sp.n_items} items.")
        for part, (S, Ln, T) in ((sp.train, (seqs, lens, tgts)), (sp.valid, (vseq, vlen, vtgt))):
            q = np.zeros((len(part.target), max_len), dtype=np.int64)
            q[:, : part.seq.shape[1]] = np.where(part.seq > 0, part.seq + offset, 0)
            S.append(q)
            Ln.append(part.length.astype(np.int64))
            T.append(part.target.astype(np.int64) + offset)
        offset += sp.n_items
    train = (np.concatenate(seqs), np.concatenate(lens), np.concatenate(tgts))
    valid = SimpleNamespace(seq=np.concatenate(vseq), length=np.concatenate(vlen), target=np.concatenate(vtgt))
    return train, valid, np.concatenate([np.asarray(c) for c in catalogs])


def pretrain(model: NeuralScorer, splits: Sequence, catalogs: Sequence[np.ndarray], cfg: TrainConfig,
             callbacks: Sequence[Callback] = (), stop: StopSignal = None, progress: Progress | None = None,
             validate: bool = True) -> TrainResult:
    """Pre-train VQRec (catalogs = flat code ids per domain) or TextSeq (text vectors) on the union of domains.

    All parameters train. Batches are drawn from the shuffled union, so in-batch negatives are mixed-domain.
    Validation (if ``validate``) ranks each source user's validation item over the union catalog.
    """
    train, valid, catalog = concat_domains(splits, catalogs)
    model.set_catalog(catalog)
    params = set_trainable(model, model.parameters())
    trainer = Trainer(model, params, lambda m, b: pretrain_loss(m, b, cfg.rho), train, cfg,
                      valid=valid if validate else None, callbacks=callbacks, stop=stop, progress=progress)
    return trainer.fit()


# --------------------------------------------------------------------------------------------------------------------
# Code-embedding alignment (Gumbel-Sinkhorn with a straight-through Hungarian permutation)


def sinkhorn(log_alpha: torch.Tensor, iters: int) -> torch.Tensor:
    """Alternate row/column normalisation in log space: [..., M, M] -> doubly-stochastic matrix."""
    for _ in range(iters):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


def hungarian(scores: torch.Tensor) -> torch.Tensor:
    """Maximum-score assignment per matrix: [K, M, M] -> permutation indices int64 [K, M] (row a -> column)."""
    s = scores.detach().cpu().numpy()
    return torch.from_numpy(np.stack([linear_sum_assignment(-m)[1] for m in s]).astype(np.int64))


def permutation_matrix(perm: torch.Tensor, M: int) -> torch.Tensor:
    return F.one_hot(perm, M).to(torch.float32)  # [K, M, M]


class CodeAlignment(nn.Module):
    """Learnable per-digit permutation of the M codeword rows of a pre-trained table (padding rows stay)."""

    def __init__(self, D: int, M: int, cfg: AlignConfig):
        super().__init__()
        self.D, self.M, self.cfg = D, M, cfg
        self.log_alpha = nn.Parameter(torch.zeros(D, M, M))  # [D, M, M] permutation scores

    def soft(self, noise: bool = True) -> torch.Tensor:
        la = self.log_alpha  # [D, M, M]
        if noise and self.cfg.noise > 0:
            u = torch.rand_like(la).clamp(1e-9, 1 - 1e-9)
            la = la - self.cfg.noise * torch.log(-torch.log(u))  # + Gumbel noise
        return sinkhorn(la / self.cfg.temperature, self.cfg.sinkhorn_iters)  # [D, M, M]

    def forward(self) -> torch.Tensor:
        """Straight-through permutation: hard (Hungarian) in value, soft Sinkhorn in gradient. [D, M, M]"""
        soft = self.soft(noise=self.training)  # [D, M, M]
        hard = permutation_matrix(hungarian(soft), self.M)  # [D, M, M]
        return hard + (soft - soft.detach())  # exactly `hard` in value

    def final_permutation(self) -> np.ndarray:
        """A true permutation per digit from the learned scores (no noise): int64 [D, M]."""
        return hungarian(self.log_alpha).numpy()


def permute_table(weight: torch.Tensor, P: torch.Tensor, D: int, M: int) -> torch.Tensor:
    """New table whose codeword row a of digit k is sum_b P[k, a, b] * old row b. weight [D*(M+1), h]."""
    blocks = weight.view(D, M + 1, -1)  # [D, M+1, h]
    moved = torch.bmm(P, blocks[:, 1:])  # [D, M, h]
    return torch.cat([blocks[:, :1], moved], dim=1).reshape(D * (M + 1), -1)  # [D*(M+1), h]


def apply_permutation(model: VQRec, perm: np.ndarray) -> None:
    """Write a hard permutation (int64 [D, M]) into the model's code table in place."""
    D, M = model.cfg.D, model.cfg.M
    perm = np.asarray(perm)
    if perm.shape != (D, M) or any(sorted(p) != list(range(M)) for p in perm.tolist()):
        raise ConfigError("The alignment result is not a permutation of each digit's codewords.")
    with torch.no_grad():
        P = permutation_matrix(torch.as_tensor(perm), M)  # [D, M, M]
        model.code_embedding.weight.copy_(permute_table(model.code_embedding.weight, P, D, M))


def align_codes(model: VQRec, split, cfg: AlignConfig, seed: int = 2023, callbacks: Sequence[Callback] = (),
                stop: StopSignal = None, progress: Progress | None = None) -> tuple[np.ndarray, dict]:
    """Learn per-digit permutations on the target's training samples (everything else frozen), then apply them.

    The model's catalog must already be the target's flat codes. Returns (permutation int64 [D, M], info dict
    with the first/last losses, steps and the share of codewords moved).
    """
    D, M = model.cfg.D, model.cfg.M
    align = CodeAlignment(D, M, cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(align.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    seq, length, target = split.train.seq, split.train.length, split.train.target
    losses = []
    model.train()
    align.train()
    weight = model.code_embedding.weight.detach()  # [D*(M+1), h]
    batches = iterate_batches(seq, length, target, cfg.batch_size, rng)
    for step in range(cfg.steps):
        try:
            b_seq, b_len, b_tgt = next(batches)
        except StopIteration:
            batches = iterate_batches(seq, length, target, cfg.batch_size, rng)
            b_seq, b_len, b_tgt = next(batches)
        opt.zero_grad(set_to_none=True)
        table = permute_table(weight, align(), D, M)  # [D*(M+1), h]
        s = model.encode(b_seq, b_len, table=table)  # [B, h]
        loss = F.cross_entropy(model.score(s, model.item_matrix(table)), b_tgt)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        info = {"epoch": 0, "step": step, "global_step": step + 1, "loss": losses[-1], "frac": (step + 1) / cfg.steps}
        for cb in callbacks:
            cb.on_step(info)
        report(progress, (step + 1) / cfg.steps, f"alignment step {step + 1}/{cfg.steps} loss {losses[-1]:.4f}")
        if _stop_requested(stop):
            break
    perm = align.final_permutation()
    apply_permutation(model, perm)
    model.eval()
    moved = float((perm != np.arange(M)[None, :]).mean())
    return perm, {"steps": len(losses), "first_loss": losses[0] if losses else None,
                  "last_loss": losses[-1] if losses else None, "moved_fraction": moved}


# --------------------------------------------------------------------------------------------------------------------
# Adaptation and from-scratch training on a target domain


def adapt(model: NeuralScorer, split, catalog: np.ndarray, cfg: TrainConfig, align: AlignConfig | None = None,
          callbacks: Sequence[Callback] = (), stop: StopSignal = None, progress: Progress | None = None
          ) -> TrainResult:
    """Adapt a pre-trained VQRec / TextSeq to a target: swap the catalog, freeze encoder + positions, optionally
    align code embeddings (VQRec), then train the code table (VQRec) or adaptor (TextSeq) + input LayerNorm."""
    model.set_catalog(catalog)
    info: dict = {}
    if isinstance(model, VQRec):
        if align is not None:
            t0 = time.perf_counter()
            _, info = align_codes(model, split, align, seed=cfg.seed, stop=stop)
            info["seconds"] = time.perf_counter() - t0
        trainable = list(model.code_embedding.parameters())
    elif isinstance(model, TextSeq):
        trainable = list(model.adaptor.parameters())
    else:
        raise ConfigError(f"Adaptation applies to VQRec and TextSeq models, not {type(model).__name__}.")
    trainable += list(model.encoder.input_norm.parameters())
    params = set_trainable(model, trainable)
    res = Trainer(model, params, full_softmax_loss, (split.train.seq, split.train.length, split.train.target), cfg,
                  valid=split.valid, callbacks=callbacks, stop=stop, progress=progress).fit()
    res.extra["align"] = info
    if "seconds" in info:
        res.seconds += info["seconds"]
    return res


def train_target(model: NeuralScorer, split, cfg: TrainConfig, callbacks: Sequence[Callback] = (),
                 stop: StopSignal = None, progress: Progress | None = None) -> TrainResult:
    """Train every parameter on the target alone with full-softmax cross-entropy (SASRec-ID, VQ-Rec from scratch)."""
    params = set_trainable(model, model.parameters())
    return Trainer(model, params, full_softmax_loss, (split.train.seq, split.train.length, split.train.target), cfg,
                   valid=split.valid, callbacks=callbacks, stop=stop, progress=progress).fit()


def clone_model(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model)

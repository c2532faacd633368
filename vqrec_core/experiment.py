"""The transfer experiment: pre-train on source domain(s), adapt to a target, compare with every baseline.

Reference: Hou et al., "Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders"
(WWW 2023), Tables 3 and 5 (cross-domain transfer and ablations), at CPU size. Every row is trained and evaluated on
the same target split (leave-one-out, full ranking, history not masked, test numbers of the best-validation epoch):

  pop, text_knn, sasrec_id, text_seq_pretrained (no adaptation), text_seq_adapted, vqrec_scratch,
  vqrec_pretrained (no adaptation), vqrec_adapted_noalign, vqrec_adapted, vqrec_random_codes, vqrec_pq_no_rotation.

Deliberate deviations: CPU-sized presets (see ``PRESETS``); the two code ablations (random codes, PQ without rotation)
replace the *target* codes only and reuse the OPQ-pre-trained encoder, then follow the vqrec_adapted_noalign recipe
(table + LayerNorm fine-tuning, no alignment): they test what the target-side text->code mapping contributes, not a
pre-training with other codes (that would double the pre-training cost). In the standard preset an "epoch" is a
capped number of steps (``max_steps_per_epoch``), so every target model gets the same small training budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .checkpoint import save_checkpoint
from .codes import CodeConfig, build_codes, flat_code_ids
from .data import Domain, Split, load_domain, split_leave_one_out
from .errors import ConfigError, DataError
from .evaluate import evaluate
from .fsutil import Progress, atomic_write_json, atomic_write_text, report
from .models import (
    Popularity,
    SASRecID,
    SASRecIDConfig,
    TextKNN,
    TextSeq,
    TextSeqConfig,
    VQRec,
    VQRecConfig,
    popularity_counts,
)
from .text import encode_texts, get_encoder
from .train import (
    AlignConfig,
    Callback,
    LambdaCallback,
    StopSignal,
    TrainConfig,
    adapt,
    clone_model,
    pretrain,
    train_target,
)

ROWS = ("pop", "text_knn", "sasrec_id", "text_seq_pretrained", "text_seq_adapted", "vqrec_scratch",
        "vqrec_pretrained", "vqrec_adapted_noalign", "vqrec_adapted", "vqrec_random_codes", "vqrec_pq_no_rotation")
COLUMNS = ("model", "recall@10", "recall@50", "ndcg@10", "ndcg@50", "train_seconds")
# ../shared/datasets beside the checkout ($VQREC_DATASETS overrides), the same folder benchmarks/common.py uses
DATASETS_ROOT = Path(os.environ.get("VQREC_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
NAMED_DOMAINS = {"beauty": "amazon2014-beauty", "toys": "amazon2014-toy", "toy": "amazon2014-toy"}


@dataclass
class ExperimentConfig:
    h: int = 64  # hidden size h of every neural model
    n_layers: int = 2  # L
    n_heads: int = 2
    ffn: int = 256
    dropout: float = 0.2
    max_len: int = 50  # sequence truncation
    tau: float = 0.07  # cosine temperature (VQRec, TextSeq)
    n_experts: int = 4  # TextSeq adaptor experts
    D: int | None = 32  # code digits (None = codes.py chooses)
    b: int | None = 8  # bits per digit, M = 2**b (None = chosen from the number of training items)
    code_method: str = "opq"  # quantizer of the main VQ-Rec rows
    encoder: str = "minilm"  # text encoder spec (text.get_encoder)
    pretrain: TrainConfig = field(default_factory=TrainConfig)  # source pre-training (InfoNCE)
    target: TrainConfig = field(default_factory=TrainConfig)  # adaptation / target-only training (full softmax)
    align: AlignConfig = field(default_factory=AlignConfig)  # Gumbel-Sinkhorn alignment
    test_max_users: int | None = None  # None = every evaluable target user
    seed: int = 2023

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def preset(name: str, threads: int | None = None) -> ExperimentConfig:
    """'standard': the CPU-sized run behind results/ (~20-30 min per direction on 1 shared core);
    'long': standard with a 3x target budget and longer pre-training (docs/experiment.md, "a longer budget");
    'quick': a minutes-long smoke run for sample data and tests."""
    if name == "long":
        # Declared before running, judged on validation only: 12 target epochs of 60 steps (~2.8 passes over
        # Beauty's training samples, ~3.4 over Toys') with patience 3, and up to 5 pre-training epochs (VQ-Rec's
        # source validation NDCG was still rising steeply at the end of standard's 3; patience 1 stops TextSeq,
        # which peaked at epoch 2 of 3, as before). Everything else as 'standard'.
        cfg = preset("standard", threads)
        cfg.pretrain = dataclasses.replace(cfg.pretrain, epochs=5)
        cfg.target = dataclasses.replace(cfg.target, epochs=12, patience=3)
        return cfg
    if name == "standard":
        # lr 5e-3 in pre-training: at 1e-3 VQ-Rec stays on the chance-level plateau (loss ~ ln B) for the few
        # hundred steps a CPU budget allows; at 1e-2 it never leaves it (docs/experiment.md).
        return ExperimentConfig(
            ffn=128,
            pretrain=TrainConfig(epochs=3, batch_size=512, lr=5e-3, patience=1, rho=0.75, valid_max_users=2000,
                                 max_steps_per_epoch=200, num_threads=threads),
            target=TrainConfig(epochs=4, batch_size=512, lr=3e-3, patience=2, valid_max_users=2000,
                               max_steps_per_epoch=60, num_threads=threads),
            align=AlignConfig(steps=20, batch_size=512),
        )
    if name == "quick":
        return ExperimentConfig(
            h=32, ffn=64, D=8, b=None,
            pretrain=TrainConfig(epochs=2, batch_size=256, patience=1, valid_max_users=500, num_threads=threads),
            target=TrainConfig(epochs=2, batch_size=256, lr=2e-3, patience=1, valid_max_users=500,
                               num_threads=threads),
            align=AlignConfig(steps=5, batch_size=128),
        )
    raise ConfigError(f"Unknown preset {name!r}; choose 'quick', 'standard' or 'long'.")


def _seq_cfg(cfg: ExperimentConfig) -> dict:
    return {"h": cfg.h, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "ffn": cfg.ffn, "dropout": cfg.dropout,
            "max_len": cfg.max_len}


@dataclass
class Prepared:
    domain: Domain
    split: Split
    emb: np.ndarray  # float32 [n_items, d] text vectors
    codes: dict = field(default_factory=dict)  # method -> CodeResult


def _prepare(domain: Domain, cfg: ExperimentConfig, cache_dir, methods: Sequence[str], log) -> Prepared:
    split = split_leave_one_out(domain, cfg.max_len)
    t0 = time.perf_counter()
    emb = encode_texts(get_encoder(cfg.encoder), domain.items["text"].tolist(), cache_dir=cache_dir)
    log(f"{domain.name}: {domain.n_items} items, {len(split.train)} training samples, {len(split.test)} evaluable "
        f"users; text vectors {emb.shape} in {time.perf_counter() - t0:.1f}s")
    p = Prepared(domain, split, emb)
    for m in methods:
        t0 = time.perf_counter()
        p.codes[m] = build_codes(emb, split.train_item_mask, CodeConfig(D=cfg.D, b=cfg.b, method=m, seed=cfg.seed),
                                 cache_dir=cache_dir)
        log(f"{domain.name}: {m} codes D={p.codes[m].D} M={p.codes[m].M} in {time.perf_counter() - t0:.1f}s")
    return p


class _Stopped(Exception):
    """Internal: a stop request ended the run (``interrupted`` = the row whose training it cut short, if any)."""

    def __init__(self, interrupted: str | None = None):
        super().__init__(interrupted or "")
        self.interrupted = interrupted


def _stop_set(stop: StopSignal) -> bool:
    if stop is None:
        return False
    return stop.is_set() if hasattr(stop, "is_set") else bool(stop())


def run_experiment(sources: Sequence[Domain], target: Domain, cfg: ExperimentConfig, out_dir: str | Path,
                   checkpoint_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                   rows: Sequence[str] = ROWS, progress: Progress | None = None,
                   log: Callable[[str], None] = print, stop: StopSignal = None,
                   callbacks: Sequence[Callback] = (), on_phase: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run every row of ``rows`` and write ``out_dir/<source>_to_<target>.csv`` and ``.md`` (after each row, so a
    crash keeps what is done). Trained models go to ``checkpoint_dir/<row>/``. Returns the results table.

    ``stop`` (``threading.Event`` or callable) is handed to every training phase, which ends after its current step
    with its best weights; the run then records nothing more: the row being trained and every row not started are
    listed as not run in the .md table and in ``summary.json``, and the finished rows stay saved. ``callbacks``
    (train.Callback: ``on_step``, ``on_epoch_end``) are attached to every training phase. ``on_phase(name)`` is
    called as each phase starts: "prepare <domain>", a row name, or "<model> pre-train".
    """
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"Unknown experiment rows {unknown}; choose from {', '.join(ROWS)}.")
    if not sources:
        raise ConfigError("Give at least one source domain to pre-train on.")
    torch.manual_seed(cfg.seed)
    if cfg.target.num_threads:
        torch.set_num_threads(int(cfg.target.num_threads))
    src_name = "+".join(d.name for d in sources)
    tag = f"{src_name}_to_{target.name}"
    out_dir = Path(out_dir)
    ckpt = Path(checkpoint_dir) if checkpoint_dir else None
    t_start = time.perf_counter()
    extra_cbs = list(callbacks)
    results: list[dict] = []
    details: dict = {"config": cfg.to_dict(), "source": src_name, "target": target.name, "rows": {}}

    def run_rows() -> None:  # the run itself; raises _Stopped when a stop request ends it

        def phase(name: str) -> None:
            if _stop_set(stop):
                raise _Stopped()
            if on_phase is not None:
                on_phase(name)

        def finished(name: str, res):
            if res.stopped:
                raise _Stopped(name)
            return res

        srcs = []
        for d in sources:
            phase(f"prepare {d.name}")
            srcs.append(_prepare(d, cfg, cache_dir, [cfg.code_method], log))
        ablations = (("random", "vqrec_random_codes"), ("pq", "vqrec_pq_no_rotation"))
        tgt_methods = [cfg.code_method] + [m for m, r in ablations if r in rows]
        phase(f"prepare {target.name}")
        tgt = _prepare(target, cfg, cache_dir, tgt_methods, log)
        sp = tgt.split
        codes = tgt.codes[cfg.code_method]
        D, M = codes.D, codes.M
        if any(s.codes[cfg.code_method].D != D or s.codes[cfg.code_method].M != M for s in srcs):
            raise ConfigError("Source and target codes differ in D or M; fix D and b in the experiment config.")
        tgt_fc = {m: flat_code_ids(r.codes, r.M) for m, r in tgt.codes.items()}
        src_fc = [flat_code_ids(s.codes[cfg.code_method].codes, M) for s in srcs]
        vq_cfg = VQRecConfig(D=D, M=M, tau=cfg.tau, **_seq_cfg(cfg))
        ts_cfg = TextSeqConfig(text_dim=tgt.emb.shape[1], n_experts=cfg.n_experts, tau=cfg.tau, **_seq_cfg(cfg))

        meta_base = {"target": target.name, "source": src_name, "item_ids": target.items["item_id"].tolist()}
        n_rows = len(rows)

        def record(name: str, model, seconds: float, valid: dict | None = None, extra: dict | None = None):
            t0 = time.perf_counter()
            test = evaluate(model, sp.test, ks=(10, 50), chunk=cfg.target.eval_chunk, max_users=cfg.test_max_users,
                            seed=cfg.seed)
            if valid is None:
                valid = evaluate(model, sp.valid, ks=(10, 50), chunk=cfg.target.eval_chunk,
                                 max_users=cfg.target.valid_max_users, seed=cfg.seed)
            row = {"model": name, **{c: test[c] for c in COLUMNS[1:5]}, "train_seconds": round(seconds, 1)}
            results.append(row)
            details["rows"][name] = {"test": test, "valid": valid, **(extra or {})}
            if ckpt is not None:
                save_checkpoint(model, ckpt / name, meta={**meta_base, "row": name, "test": test, "valid": valid})
            _write_tables(out_dir, tag, results, details, cfg, time.perf_counter() - t_start)
            if ckpt is not None:
                atomic_write_json(ckpt / "summary.json", details)
            log(f"[{len(results)}/{n_rows}] {name}: recall@10 {test['recall@10']:.4f} ndcg@10 {test['ndcg@10']:.4f} "
                f"recall@50 {test['recall@50']:.4f} (valid ndcg@10 {valid['ndcg@10']:.4f}; train {seconds:.0f}s, "
                f"eval {time.perf_counter() - t0:.0f}s)")
            report(progress, len(results) / n_rows, f"{name} done")

        def hist(res) -> dict:
            return {"best_epoch": res.best_epoch, "epochs_run": len(res.history), "steps": res.steps,
                    "history": [{"epoch": h["epoch"], "loss": h["loss"],
                                 "valid_ndcg@10": (h["valid"] or {}).get("ndcg@10")} for h in res.history],
                    **({"align": res.extra["align"]} if res.extra.get("align") else {})}

        def tlog(prefix: str) -> list[Callback]:
            """The epoch log line (its format is parsed by pipeline._EPOCH_LINE) + the caller's callbacks."""
            return [LambdaCallback(on_epoch_end=lambda i: log(
                f"  {prefix} epoch {i['epoch'] + 1}: loss {i['loss']:.4f} valid ndcg@10 "
                f"{(i['valid'] or {}).get('ndcg@10', float('nan')):.4f} ({i['seconds']:.0f}s)"))] + extra_cbs

        # ---- non-neural baselines
        if "pop" in rows:
            phase("pop")
            t0 = time.perf_counter()
            pop = Popularity(popularity_counts(sp.user_items, sp.n_items))
            record("pop", pop, time.perf_counter() - t0)
        if "text_knn" in rows:
            phase("text_knn")
            record("text_knn", TextKNN(tgt.emb), 0.0)

        # Execution order: the method's own rows first (so a slow machine still yields them), baselines and ablations
        # after; the tables are always written in ROWS order.
        def pretrain_source(kind: str, model, features, target_catalog) -> float:
            """Pre-train ``model`` on the sources, save it as ``<kind>_source``, record the zero-shot row
            ``<kind>_pretrained`` if asked; returns the pre-training seconds."""
            name = f"{kind} pre-train"
            res = finished(name, pretrain(model, [s.split for s in srcs], features, cfg.pretrain,
                                          callbacks=tlog(name), stop=stop))
            details[f"{kind}_pretrain"] = hist(res) | {"seconds": res.seconds}
            log(f"{kind} pre-trained on {src_name} in {res.seconds:.0f}s")
            if ckpt is not None:
                save_checkpoint(model, ckpt / f"{kind}_source", meta={"source": src_name, "row": f"{kind}_source"})
            if f"{kind}_pretrained" in rows:
                phase(f"{kind}_pretrained")
                m = clone_model(model)
                m.set_catalog(target_catalog)
                record(f"{kind}_pretrained", m, 0.0, extra={"pretrain_seconds": res.seconds})
            return res.seconds

        def adapt_row(name: str, base, catalog, align, extra: dict) -> None:
            """Adapt a copy of the pre-trained ``base`` to the target catalog and record it as row ``name``."""
            phase(name)
            m = clone_model(base)
            res = finished(name, adapt(m, sp, catalog, cfg.target, align=align, callbacks=tlog(name), stop=stop))
            record(name, m, res.seconds, res.best_valid, hist(res) | extra)

        # ---- VQ-Rec: pre-train once, then zero-shot / adapted variants
        vq_rows = ("vqrec_pretrained", "vqrec_adapted_noalign", "vqrec_adapted", "vqrec_random_codes",
                   "vqrec_pq_no_rotation")
        vq = None
        if any(r in rows for r in vq_rows):
            phase("vqrec pre-train")
            torch.manual_seed(cfg.seed)
            vq = VQRec(vq_cfg, src_fc[0])
            vq_pt_seconds = pretrain_source("vqrec", vq, src_fc, tgt_fc[cfg.code_method])

        def vq_adapt(name: str, method: str, align) -> None:
            adapt_row(name, vq, tgt_fc[method], align, {"pretrain_seconds": vq_pt_seconds, "code_method": method})

        if "vqrec_adapted" in rows:
            vq_adapt("vqrec_adapted", cfg.code_method, cfg.align)
        if "vqrec_adapted_noalign" in rows:
            vq_adapt("vqrec_adapted_noalign", cfg.code_method, None)

        # ---- text -> representation
        if "text_seq_pretrained" in rows or "text_seq_adapted" in rows:
            phase("text_seq pre-train")
            torch.manual_seed(cfg.seed)
            ts = TextSeq(ts_cfg, srcs[0].emb)
            ts_pt_seconds = pretrain_source("text_seq", ts, [s.emb for s in srcs], tgt.emb)
            if "text_seq_adapted" in rows:
                adapt_row("text_seq_adapted", ts, tgt.emb, None, {"pretrain_seconds": ts_pt_seconds})

        # ---- target-only models
        if "vqrec_scratch" in rows:
            phase("vqrec_scratch")
            torch.manual_seed(cfg.seed)
            m = VQRec(vq_cfg, tgt_fc[cfg.code_method])
            res = finished("vqrec_scratch", train_target(m, sp, cfg.target, callbacks=tlog("vqrec_scratch"), stop=stop))
            record("vqrec_scratch", m, res.seconds, res.best_valid, hist(res))
        if "sasrec_id" in rows:
            phase("sasrec_id")
            torch.manual_seed(cfg.seed)
            m = SASRecID(SASRecIDConfig(**_seq_cfg(cfg)), sp.n_items)
            res = finished("sasrec_id", train_target(m, sp, cfg.target, callbacks=tlog("sasrec_id"), stop=stop))
            record("sasrec_id", m, res.seconds, res.best_valid, hist(res))

        # ---- code ablations: other target codes, same pre-trained encoder, the vqrec_adapted_noalign recipe
        if "vqrec_random_codes" in rows:
            vq_adapt("vqrec_random_codes", "random", None)
        if "vqrec_pq_no_rotation" in rows:
            vq_adapt("vqrec_pq_no_rotation", "pq", None)

    try:
        run_rows()
    except _Stopped as e:
        not_run = [r for r in rows if r not in details["rows"]]
        details["stopped"] = {"interrupted": e.interrupted, "not_run": not_run}
        _write_tables(out_dir, tag, results, details, cfg, time.perf_counter() - t_start)
        if ckpt is not None:
            atomic_write_json(ckpt / "summary.json", details)
        log(f"{tag}: stopped by the user after {time.perf_counter() - t_start:.0f}s; {len(results)} of {len(rows)} "
            f"rows finished and saved" + (f"; not run: {', '.join(not_run)}" if not_run else ""))
        return _ordered(results)
    log(f"{tag}: done in {time.perf_counter() - t_start:.0f}s")
    return _ordered(results)


def _ordered(results: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(results, columns=list(COLUMNS))
    return df.sort_values("model", key=lambda c: c.map(ROWS.index), kind="stable").reset_index(drop=True)


def _write_tables(out_dir: Path, tag: str, results: list[dict], details: dict, cfg: ExperimentConfig,
                  seconds: float) -> None:
    df = _ordered(results)
    results = df.to_dict("records")
    atomic_write_text(out_dir / f"{tag}.csv", df.to_csv(index=False, float_format="%.4f"))
    lines = [f"# {details['source']} -> {details['target']}", "",
             "Test metrics of the best-validation epoch; full ranking over the whole target catalog; history not "
             "masked. `train_seconds` is the row's own training (adaptation rows exclude the shared pre-training, "
             "listed below).", "",
             "| model | recall@10 | recall@50 | ndcg@10 | ndcg@50 | train_seconds | valid ndcg@10 | best epoch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        d = details["rows"][r["model"]]
        lines.append(f"| {r['model']} | {r['recall@10']:.4f} | {r['recall@50']:.4f} | {r['ndcg@10']:.4f} | "
                     f"{r['ndcg@50']:.4f} | {r['train_seconds']:.1f} | {d['valid']['ndcg@10']:.4f} | "
                     f"{d.get('best_epoch', '-') if d.get('best_epoch', -1) >= 0 else '-'} |")
    lines += [""]
    for key in ("text_seq_pretrain", "vqrec_pretrain"):
        if key in details:
            lines.append(f"- {key}: {details[key]['seconds']:.0f}s, {details[key]['epochs_run']} epoch(s)")
    for name in ("vqrec_adapted", "vqrec_random_codes", "vqrec_pq_no_rotation"):
        al = details["rows"].get(name, {}).get("align")
        if al:
            lines.append(f"- {name} alignment: {al['steps']} steps, loss {al['first_loss']:.3f} -> "
                         f"{al['last_loss']:.3f}, {100 * al['moved_fraction']:.1f}% of codewords moved")
    st = details.get("stopped")
    if st:
        cut = f"; {st['interrupted']} was stopped during training and is not recorded" if st.get("interrupted") else ""
        lines.append(f"- stopped by the user: {', '.join(st['not_run']) or 'no rows'} not run{cut}")
    lines.append(f"- wall time so far: {seconds:.0f}s; settings: h={cfg.h}, L={cfg.n_layers}, heads={cfg.n_heads}, "
                 f"D={cfg.D}, b={cfg.b}, encoder={cfg.encoder}, pre-train epochs<={cfg.pretrain.epochs} "
                 f"(B={cfg.pretrain.batch_size}), target epochs<={cfg.target.epochs} (B={cfg.target.batch_size}, "
                 f"lr={cfg.target.lr}, patience={cfg.target.patience}), align steps={cfg.align.steps}")
    atomic_write_text(out_dir / f"{tag}.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------------------------------
# CLI


def resolve_domain(spec: str, root: Path = DATASETS_ROOT) -> Domain:
    """A named domain (beauty, toys), a folder holding items.csv[.gz] + interactions.csv[.gz]."""
    folder = Path(spec)
    name = None
    if spec.lower() in NAMED_DOMAINS and not folder.exists():
        folder, name = root / NAMED_DOMAINS[spec.lower()], spec.lower()
        name = "toys" if name == "toy" else name
    if not folder.is_dir():
        raise DataError(f"'{spec}' is neither a known domain name ({', '.join(sorted(NAMED_DOMAINS))}) nor a folder. "
                        "Give a folder holding items.csv and interactions.csv, or use the --*-items/--*-interactions "
                        "flags.")
    files = {}
    for kind in ("items", "interactions"):
        found = [folder / f"{kind}{ext}" for ext in (".csv", ".csv.gz", ".tsv", ".jsonl", ".parquet")
                 if (folder / f"{kind}{ext}").exists()]
        if not found:
            raise DataError(f"The folder '{folder}' has no {kind}.csv (or .csv.gz, .tsv, .jsonl, .parquet).")
        files[kind] = found[0]
    return load_domain(files["items"], files["interactions"], name=name or folder.name)


def register_cli(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "experiment", help="pre-train on source domain(s), adapt to a target, compare with every baseline",
        description="Run the transfer experiment: pre-train VQ-Rec and the text-adaptor model on the source "
                    "domain(s), adapt both to the target, train SASRec-ID and VQ-Rec from scratch, evaluate "
                    "popularity, text-kNN and the code ablations on the same target split, and write "
                    "<out>/<source>_to_<target>.csv and .md (test numbers of the best-validation epoch).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--source", action="append", metavar="DOMAIN",
                   help="source domain: 'beauty', 'toys' (from --datasets-root) or a folder with items.csv and "
                        "interactions.csv; repeat to pre-train on several domains at once")
    p.add_argument("--target", metavar="DOMAIN", help="target domain, same forms as --source")
    p.add_argument("--source-items", metavar="FILE", help="source item catalog (instead of --source)")
    p.add_argument("--source-interactions", metavar="FILE", help="source interaction log (instead of --source)")
    p.add_argument("--target-items", metavar="FILE", help="target item catalog (instead of --target)")
    p.add_argument("--target-interactions", metavar="FILE", help="target interaction log (instead of --target)")
    p.add_argument("--source-name", help="name of the source given by files (default: its folder name)")
    p.add_argument("--target-name", help="name of the target given by files (default: its folder name)")
    p.add_argument("--datasets-root", default=str(DATASETS_ROOT), help="where the named domains live")
    p.add_argument("--preset", default="standard", choices=("quick", "standard", "long"),
                   help="standard = the CPU-sized run behind results/; long = 3x target epochs and 5 pre-training "
                        "epochs (results/long); quick = a smoke run")
    p.add_argument("--out", default="results", help="folder for <source>_to_<target>.csv and .md")
    p.add_argument("--checkpoints", default=None,
                   help="folder for trained models (default: <workspace>/experiments/<source>_to_<target>)")
    p.add_argument("--cache", default=None, help="text-vector and code cache (default: <workspace>/cache)")
    p.add_argument("--encoder", default=None, help="text encoder: minilm, hash:64 or a local model folder "
                                                   "(default: the preset's, minilm)")
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="rows to run")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=2023)
    p.set_defaults(func=_cli)
    return p


def _cli(args) -> int:
    from .cliargs import default_cache_dir, default_workspace

    root = Path(args.datasets_root)
    if args.source_items or args.source_interactions:
        if not (args.source_items and args.source_interactions):
            raise DataError("Give both --source-items and --source-interactions.")
        sources = [load_domain(args.source_items, args.source_interactions, name=args.source_name)]
    elif args.source:
        sources = [resolve_domain(s, root) for s in args.source]
    else:
        raise DataError("Name a source domain with --source (e.g. beauty) or --source-items/--source-interactions.")
    if args.target_items or args.target_interactions:
        if not (args.target_items and args.target_interactions):
            raise DataError("Give both --target-items and --target-interactions.")
        target = load_domain(args.target_items, args.target_interactions, name=args.target_name)
    elif args.target:
        target = resolve_domain(args.target, root)
    else:
        raise DataError("Name a target domain with --target (e.g. toys) or --target-items/--target-interactions.")
    if any(s.name == target.name for s in sources):
        raise ConfigError(f"The target '{target.name}' is also a source; transfer needs a different target domain.")
    cfg = preset(args.preset, threads=args.threads)
    cfg.seed = args.seed
    if args.encoder:
        cfg.encoder = args.encoder
    tag = f"{'+'.join(s.name for s in sources)}_to_{target.name}"
    ckpt = Path(args.checkpoints) if args.checkpoints else default_workspace() / "experiments" / tag
    cache = Path(args.cache) if args.cache else default_cache_dir()
    torch.set_num_threads(max(1, args.threads))

    def log(msg: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {msg}", flush=True)

    df = run_experiment(sources, target, cfg, args.out, ckpt, cache, rows=args.rows, log=log)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {Path(args.out) / (tag + '.csv')} and .md; checkpoints in {ckpt}")
    return 0


def load_summary(checkpoint_dir: str | Path) -> dict:
    """The experiment's summary.json (per-row test/valid metrics, histories, alignment info)."""
    return json.loads((Path(checkpoint_dir) / "summary.json").read_text(encoding="utf-8"))

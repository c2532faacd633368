"""App-facing orchestration over the workspace: code-space analyses, background training runs, run results.

Reference: issue 5 (behaviour): long work reports progress, results are cached on disk, training runs in a
background thread with a stop request and live curves, and a run interrupted by a crash shows as interrupted.
This module only wires existing pieces together -- ``analysis.run_analysis`` (codes, uniformity, domain gap, UMAP,
bias), ``experiment.run_experiment`` (pre-training, adaptation, baselines, checkpoints) and ``store.Workspace``
(files) -- so the Streamlit pages stay thin and everything here is testable without Streamlit.

Run folder (``runs/<run_id>/``): config.json, status.json (see store), progress.json (fraction, ETA, live loss and
validation curves, log lines; rewritten atomically every ~1 s), results/<tag>.csv + .md (metrics, written after each
model), checkpoints/<model>/ (safetensors + config.json, summary.json), analysis/ (bias, examples, domain gap).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, VQRecError
from .fsutil import Progress, atomic_write_json, content_hash, report
from .store import Workspace, load_tables, save_tables

PROGRESS_EVERY_S = 1.0  # progress.json rewrite interval
HEARTBEAT_EVERY_S = 5.0  # status.json heartbeat interval while a run's thread lives
CODE_METHODS = ("opq", "pq", "random")  # the main quantizer and its two ablations shown on the Codes page
# "  vqrec_adapted epoch 2: loss 7.2259 valid ndcg@10 0.0243 (11s)" -- experiment.run_experiment's epoch log line
_EPOCH_LINE = re.compile(r"^\s*(.+?) epoch (\d+): loss ([-\d.naninf]+) valid ndcg@10 ([-\d.naninf]+)")


# ==================================================================================================== domains


@dataclass
class LoadedDomain:
    """A stored domain with its leave-one-out split and text vectors (what every analysis needs)."""

    name: str
    domain: Any  # data.Domain
    split: Any  # data.Split
    emb: np.ndarray  # float32 [n_items, d]


def load_domain_data(ws: Workspace, name: str, encoder: str, max_len: int = 50,
                     progress: Optional[Progress] = None) -> LoadedDomain:
    """Read a stored domain, split it and encode its texts (cached in the workspace by content)."""
    from .data import split_leave_one_out
    from .text import encode_texts, get_encoder

    dom = ws.load_domain(name)
    split = split_leave_one_out(dom, max_len)
    emb = encode_texts(get_encoder(encoder), dom.titles(), cache_dir=ws.cache_dir, progress=progress)
    return LoadedDomain(name, dom, split, emb)


# ==================================================================================================== code analysis


@dataclass
class CodeSpec:
    domains: tuple[str, ...]  # analysed domains (2+ give the domain gap and UMAP maps)
    encoder: str = "minilm"  # text encoder spec (text.get_encoder)
    D: Optional[int] = None  # digits (None = codes.resolve_config chooses)
    b: Optional[int] = None  # bits per digit, M = 2**b (None = chosen from the number of training items)
    method: str = "opq"  # main quantizer (codes.METHODS)
    ablations: bool = True  # also build "pq" (no rotation) and "random" codes and compare them
    umap: bool = True  # UMAP maps of text vs code vectors (needs 2+ domains)
    umap_cap: int = 3000  # points per UMAP map
    seed: int = 0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["domains"] = list(self.domains)
        return d


def code_analysis_key(ws: Workspace, spec: CodeSpec) -> str:
    """Content key: the spec plus each domain's stored version (re-uploading a domain invalidates it)."""
    versions = [ws.domain_meta(d).get("version", "") for d in spec.domains]
    return "codes-" + content_hash("code-analysis-v1", spec.to_dict(), versions)


def load_code_analysis(ws: Workspace, spec: CodeSpec) -> Optional[tuple[dict[str, pd.DataFrame], dict]]:
    """The saved result of ``spec`` if it was computed before (in any session), else None."""
    try:
        return load_tables(ws.analysis_dir(code_analysis_key(ws, spec)))
    except VQRecError:
        return None


def run_code_analysis(ws: Workspace, spec: CodeSpec, progress: Optional[Progress] = None
                      ) -> tuple[dict[str, pd.DataFrame], dict]:
    """Encode, build codes, and measure codes vs text (analysis.run_analysis); save the tables to the workspace.

    Tables: codes, code_digits, uniformity, ablations, items_<domain> (item_id, text, c0..c{D-1}) and, for 2+
    domains, domain_gap, domain_centroids, umap.
    """
    from .analysis import AnalyzeConfig, DomainData, code_tables, domain_spaces, run_analysis
    from .codes import CodeConfig, build_codes
    from .geometry import space_summary

    if not spec.domains:
        raise ConfigError("Choose at least one domain to build codes for.")
    t0 = time.time()
    n = len(spec.domains)
    loaded = []
    for i, name in enumerate(spec.domains):
        report(progress, 0.25 * i / n, f"{name}: reading and encoding item texts")
        loaded.append(load_domain_data(ws, name, spec.encoder, progress=lambda f, m, i=i, name=name: report(
            progress, 0.25 * (i + f) / n, f"{name}: {m}")))
    dds = [DomainData(d.name, d.domain, d.split, d.emb) for d in loaded]
    acfg = AnalyzeConfig(D=spec.D, b=spec.b, method=spec.method, umap=spec.umap and n >= 2, umap_cap=spec.umap_cap,
                         seed=spec.seed, max_users=1000)
    res = run_analysis(dds, acfg, cache_dir=ws.cache_dir,
                       progress=lambda f, m: report(progress, 0.25 + 0.6 * f, m))
    keep = ("codes", "code_digits", "uniformity", "domain_gap", "domain_centroids", "umap")
    tables = {k: v for k, v in res.tables.items() if k in keep}
    # ablations: the same D and b with other quantizers, per domain
    rows, items = [], {}
    methods = [spec.method] + ([m for m in CODE_METHODS if m != spec.method] if spec.ablations else [])
    for i, dd in enumerate(dds):
        for method in methods:
            report(progress, 0.85 + 0.15 * i / n, f"{dd.name}: {method} codes")
            cfg = CodeConfig(D=spec.D, b=spec.b, method=method, seed=spec.seed)
            cr = build_codes(dd.emb, dd.split.train_item_mask, cfg, cache_dir=ws.cache_dir)
            row, _ = code_tables(dd.name, cr)
            summ = space_summary({"code_fresh": domain_spaces(dd, cr, acfg)["code_fresh"]}, acfg.nn_threshold,
                                 spec.seed)
            row.update({"code_uniformity": float(summ["uniformity"].iloc[0]),
                        "code_mean_nn_cos": float(summ["mean_nn_cos"].iloc[0])})
            rows.append(row)
            if method == spec.method:
                codes = pd.DataFrame(cr.codes.astype(np.int64), columns=[f"c{k}" for k in range(cr.D)])
                items[f"items_{dd.name}"] = pd.concat([dd.domain.items[["item_id", "text"]].reset_index(drop=True),
                                                       codes], axis=1)
    tables["ablations"] = pd.DataFrame(rows)
    tables.update(items)
    notes = [n for n in res.notes if "checkpoint" not in n]  # model notes belong to the Results page
    meta = {"spec": spec.to_dict(), "notes": notes, "seconds": round(time.time() - t0, 1), "created": time.time(),
            "summary": res.summary}
    save_tables(ws.analysis_dir(code_analysis_key(ws, spec)), tables, meta)
    report(progress, 1.0, "codes and analysis saved")
    return tables, meta


# ==================================================================================================== presets


def train_presets() -> dict[str, str]:
    """Preset name -> one-line description shown in the Train page. 'smoke' only with $VQREC_SMOKE=1 (tests)."""
    out = {"quick": "quick: small model (h=32, D=8), 2 epochs per phase, ~2-4 min on the samples",
           "standard": "standard: h=64, D=32, b=8, up to 3 pre-training + 5 adaptation epochs (~20+ min)"}
    if os.environ.get("VQREC_SMOKE"):
        out["smoke"] = "smoke: 1 epoch of 15 steps per phase, for automated tests (seconds)"
    return out


def experiment_config(preset: str, encoder: str, threads: int = 1):
    """experiment.ExperimentConfig of a preset with the workspace's encoder; 'smoke' shrinks 'quick' further."""
    from .experiment import preset as exp_preset

    if preset == "smoke":
        cfg = exp_preset("quick", threads=threads)
        for t in (cfg.pretrain, cfg.target):
            t.epochs, t.max_steps_per_epoch, t.valid_max_users = 1, 15, 200
        cfg.align.steps = 2
        cfg.test_max_users = 500
        cfg.D, cfg.b = 4, 4
    else:
        cfg = exp_preset(preset, threads=threads)
    cfg.encoder = encoder
    return cfg


def model_rows() -> dict[str, str]:
    """Experiment row -> a short description for the model picker."""
    from .experiment import ROWS

    desc = {"pop": "Popularity", "text_knn": "Text-kNN (closest titles to the last item)",
            "sasrec_id": "SASRec with item-ID embeddings, target only",
            "text_seq_pretrained": "text -> representation, pre-trained, not adapted",
            "text_seq_adapted": "text -> representation, adapted",
            "vqrec_scratch": "VQ-Rec trained from scratch on the target",
            "vqrec_pretrained": "VQ-Rec pre-trained, not adapted",
            "vqrec_adapted_noalign": "VQ-Rec adapted without code alignment",
            "vqrec_adapted": "VQ-Rec adapted (alignment + code table)",
            "vqrec_random_codes": "ablation: random target codes", "vqrec_pq_no_rotation": "ablation: PQ codes"}
    return {r: desc.get(r, r) for r in ROWS}


DEFAULT_ROWS = ("pop", "text_knn", "sasrec_id", "text_seq_pretrained", "text_seq_adapted", "vqrec_scratch",
                "vqrec_pretrained", "vqrec_adapted")


# ==================================================================================================== training jobs


class StopRequested(Exception):
    """Raised inside a run when the user pressed stop and the experiment cannot stop on its own."""


@dataclass
class Job:
    run_id: str
    thread: threading.Thread
    stop: threading.Event
    state: dict = field(default_factory=dict)


_JOBS: dict[str, Job] = {}
_JOBS_LOCK = threading.Lock()


def active_job(run_id: str) -> Optional[Job]:
    with _JOBS_LOCK:
        job = _JOBS.get(run_id)
    return job if job is not None and job.thread.is_alive() else None


def start_training(ws: Workspace, sources: list[str], target: str, rows: list[str], preset: str,
                   encoder: str, threads: int = 1) -> str:
    """Validate the request, reserve a run folder and start the run in a background thread; returns the run id."""
    if not sources:
        raise ConfigError("Choose at least one source domain to pre-train on.")
    if not target:
        raise ConfigError("Choose a target domain.")
    if target in sources:
        raise ConfigError(f"The target '{target}' is also a source; transfer needs a different target domain.")
    if not rows:
        raise ConfigError("Choose at least one model to train.")
    for d in [*sources, target]:
        if not ws.has_domain(d):
            raise DataError(f"There is no domain called '{d}' in the workspace.")
    if preset not in train_presets():
        raise ConfigError(f"Unknown preset '{preset}'; choose one of {', '.join(train_presets())}.")
    cfg = experiment_config(preset, encoder, threads)
    config = {"sources": list(sources), "target": target, "rows": list(rows), "preset": preset, "encoder": encoder,
              "experiment": cfg.to_dict(), "tag": f"{'+'.join(sources)}_to_{target}"}
    run_id = ws.create_run(config, prefix=f"{'+'.join(sources)}-to-{target}")
    stop = threading.Event()
    job = Job(run_id, threading.Thread(target=_run_job, args=(ws, run_id, config, cfg, stop), daemon=True,
                                       name=f"vqrec-{run_id}"), stop)
    job.state = _new_state(len(rows))
    with _JOBS_LOCK:
        _JOBS[run_id] = job
    job.thread.start()
    return run_id


def request_stop(ws: Workspace, run_id: str) -> bool:
    """Ask a running run to stop after its current step; True if this process runs it."""
    job = active_job(run_id)
    if job is None:
        return False
    job.stop.set()
    ws.heartbeat(run_id, message="stop requested; finishing the current step")
    return True


def _new_state(n_rows: int) -> dict:
    return {"frac": 0.0, "message": "starting", "eta_s": None, "elapsed_s": 0.0, "n_rows": n_rows, "rows_done": 0,
            "phase": "", "steps": [], "epochs": [], "log": [], "started": time.time(), "updated": time.time()}


def _run_job(ws: Workspace, run_id: str, config: dict, cfg, stop: threading.Event) -> None:
    import torch

    from . import experiment

    job = _JOBS[run_id]
    state = job.state
    rdir = ws.run_dir(run_id)
    last_write = [0.0]
    alive = threading.Event()

    def beat() -> None:
        while not alive.wait(HEARTBEAT_EVERY_S):
            try:
                ws.heartbeat(run_id)
            except OSError:
                pass

    threading.Thread(target=beat, daemon=True, name=f"beat-{run_id}").start()

    def flush(force: bool = False) -> None:
        now = time.time()
        if force or now - last_write[0] >= PROGRESS_EVERY_S:
            last_write[0] = now
            state["updated"] = now
            state["elapsed_s"] = now - state["started"]
            f = state["frac"]
            state["eta_s"] = state["elapsed_s"] * (1 - f) / f if f > 0.01 else None
            atomic_write_json(rdir / "progress.json", state)

    def log(msg: str) -> None:
        state["log"].append(f"{time.strftime('%H:%M:%S')} {msg}")
        state["log"] = state["log"][-300:]
        state["message"] = msg.strip()
        if msg.strip().startswith("[") and "]" in msg:  # "[3/11] sasrec_id: ..." = a model finished
            state["rows_done"] = min(state["n_rows"], state["rows_done"] + 1)
            state["frac"] = max(state["frac"], state["rows_done"] / max(1, state["n_rows"]))
        m = _EPOCH_LINE.match(msg)
        if m and "callbacks" not in kwargs:  # no live callbacks: take the curves from the epoch log lines
            v = m.group(4)
            state["epochs"].append({"phase": m.group(1).strip(), "epoch": int(m.group(2)), "loss": float(m.group(3)),
                                    "valid_ndcg@10": None if v == "nan" else float(v)})
        flush(force=True)
        if stop.is_set() and not supports_stop:
            raise StopRequested()

    def on_step(info: dict) -> None:
        state["steps"].append({"phase": state.get("phase", ""), "step": len(state["steps"]), "loss": info["loss"]})
        if len(state["steps"]) > 4000:
            state["steps"] = state["steps"][::2]
        within = float(info.get("frac", 0.0))
        state["frac"] = max(state["frac"], (state["rows_done"] + 0.95 * within) / max(1, state["n_rows"]))
        flush()

    def on_epoch(info: dict) -> None:
        state["epochs"].append({"phase": state.get("phase", ""), "epoch": int(info["epoch"]) + 1,
                                "loss": info["loss"], "valid_ndcg@10": (info.get("valid") or {}).get("ndcg@10")})
        flush(force=True)

    def on_phase(name: str) -> None:
        state["phase"] = name
        flush(force=True)

    def progress(frac: float, msg: str) -> None:
        state["frac"] = max(state["frac"], float(frac))
        state["message"] = msg
        flush()

    params = inspect.signature(experiment.run_experiment).parameters
    supports_stop = "stop" in params
    kwargs: dict = {}
    if supports_stop:
        kwargs["stop"] = stop
    if "callbacks" in params:
        from .train import LambdaCallback

        kwargs["callbacks"] = [LambdaCallback(on_step=on_step, on_epoch_end=on_epoch)]
    if "on_phase" in params:
        kwargs["on_phase"] = on_phase
    status, message = "failed", ""
    try:
        torch.set_num_threads(max(1, int(cfg.target.num_threads or 1)))
        srcs = [ws.load_domain(s) for s in config["sources"]]
        tgt = ws.load_domain(config["target"])
        experiment.run_experiment(srcs, tgt, cfg, rdir / "results", rdir / "checkpoints", ws.cache_dir,
                                  rows=config["rows"], progress=progress, log=log, **kwargs)
        if stop.is_set():
            status, message = "stopped", "stopped by the user; the models finished so far are saved"
        else:
            status, message = "finished", "finished"
            state["frac"] = 1.0
            try:
                log("analysing the run: text-similarity bias, examples, domain gap")
                run_results_analysis(ws, run_id)
            except (VQRecError, ValueError, RuntimeError) as e:  # the run itself is complete and saved
                log(f"the run analysis failed ({e}); open Results to retry")
    except StopRequested:
        status, message = "stopped", "stopped by the user; the models finished so far are saved"
    except VQRecError as e:
        message = str(e)
        log(f"ERROR: {e}")
    except Exception as e:  # noqa: BLE001 - a bug: keep the traceback in the run log, show a sentence
        message = f"the run failed with an internal error ({type(e).__name__}: {e}); see the run log"
        state["log"].append(traceback.format_exc())
    finally:
        alive.set()
        state["message"] = message
        flush(force=True)
        ws.update_status(run_id, status=status, ended=time.time(), heartbeat=time.time(), message=message)


def live_state(ws: Workspace, run_id: str) -> dict:
    """The run's progress: the live in-memory state if this process runs it, else progress.json from disk."""
    import json

    job = active_job(run_id)
    if job is not None:
        return dict(job.state)
    try:
        return json.loads((ws.run_dir(run_id) / "progress.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _new_state(0)


def wait_for(ws: Workspace, run_id: str, timeout: float = 600.0) -> dict:
    """Block until the run's thread ends (tests and scripts); returns its final status."""
    job = _JOBS.get(run_id)
    if job is not None:
        job.thread.join(timeout)
    return ws.run_status(run_id)


# ==================================================================================================== run results


def run_metrics(ws: Workspace, run_id: str) -> pd.DataFrame:
    """The run's metrics table (one row per model finished so far), empty if none yet."""
    cfg = _read_config(ws, run_id)
    path = ws.run_dir(run_id) / "results" / f"{cfg.get('tag', '')}.csv"
    if not path.exists():
        return pd.DataFrame()
    return pd.read_csv(path)


def all_metrics(ws: Workspace) -> pd.DataFrame:
    """Metrics of every run (finished, stopped or interrupted), with run id, status, direction and preset."""
    frames = []
    for st in ws.list_runs():
        df = run_metrics(ws, st["run_id"])
        if df.empty:
            continue
        c = st.get("config", {})
        frames.append(df.assign(run=st["run_id"], status=st.get("status"), source="+".join(c.get("sources", [])),
                                target=c.get("target"), preset=c.get("preset")))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def transfer_gain(metrics: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """Adapted vs from-scratch per run: VQ-Rec adapted vs VQ-Rec scratch, and vs SASRec-ID (relative gain)."""
    rows = []
    pairs = (("vqrec_adapted", "vqrec_scratch"), ("vqrec_adapted", "sasrec_id"), ("text_seq_adapted", "sasrec_id"),
             ("vqrec_adapted", "vqrec_pretrained"), ("vqrec_adapted", "text_seq_adapted"))
    for run, part in metrics.groupby("run", sort=False):
        val = dict(zip(part["model"], part[metric], strict=True))
        for a, b in pairs:
            if a in val and b in val:
                gain = (val[a] - val[b]) / val[b] if val[b] > 0 else float("nan")
                rows.append({"run": run, "direction": f"{part['source'].iloc[0]} -> {part['target'].iloc[0]}",
                             "model": a, "baseline": b, f"{metric} model": val[a], f"{metric} baseline": val[b],
                             "relative gain": gain})
    return pd.DataFrame(rows)


def _read_config(ws: Workspace, run_id: str) -> dict:
    import json

    try:
        return json.loads((ws.run_dir(run_id) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_results_analysis(ws: Workspace, run_id: str, progress: Optional[Progress] = None
                         ) -> tuple[dict[str, pd.DataFrame], dict]:
    """Bias of every trained model on the target (before vs after adaptation), one example user, and the domain
    gap between the run's domains; saved under runs/<id>/analysis/."""
    from .analysis import AnalyzeConfig, DomainData, attach_checkpoints, run_analysis

    cfg = _read_config(ws, run_id)
    if not cfg:
        raise DataError(f"Run '{run_id}' has no readable config.json.")
    exp = cfg.get("experiment", {})
    enc = cfg.get("encoder", "minilm")
    report(progress, 0.05, "loading the target domain and its models")
    tgt = load_domain_data(ws, cfg["target"], enc, max_len=int(exp.get("max_len", 50)))
    dd = DomainData(tgt.name, tgt.domain, tgt.split, tgt.emb)
    notes: list[str] = []
    ck = ws.run_dir(run_id) / "checkpoints"
    if ck.is_dir():
        attach_checkpoints([dd], ck, notes)
    dd.models = {k: v for k, v in dd.models.items() if not k.endswith("_source")}
    acfg = AnalyzeConfig(D=exp.get("D"), b=exp.get("b"), umap=False, max_users=1000)  # compare: every
    # (*pretrained, *adapted) pair of the run, chosen by analysis
    res = run_analysis([dd], acfg, cache_dir=ws.cache_dir, progress=lambda f, m: report(progress, 0.1 + 0.5 * f, m))
    tables = {k: v for k, v in res.tables.items() if k.startswith(("bias_", "example_"))}
    names = [*cfg.get("sources", []), cfg["target"]]
    if len(names) >= 2 and all(ws.has_domain(n) for n in names):
        report(progress, 0.65, "domain gap between the run's domains")
        others = [load_domain_data(ws, n, enc) for n in names[:-1]] + [tgt]
        gres = run_analysis([DomainData(o.name, o.domain, o.split, o.emb) for o in others],
                            AnalyzeConfig(D=exp.get("D"), b=exp.get("b"), umap=False, max_users=200),
                            cache_dir=ws.cache_dir)
        for k in ("domain_gap", "domain_centroids"):
            if k in gres.tables:
                tables[k] = gres.tables[k]
    notes += [n for n in res.notes if "UMAP" not in n]
    meta = {"run_id": run_id, "notes": [n for n in notes if not n.startswith("skipped checkpoint")],
            "created": time.time()}
    save_tables(ws.run_dir(run_id) / "analysis", tables, meta)
    report(progress, 1.0, "run analysis saved")
    return tables, meta


def load_results_analysis(ws: Workspace, run_id: str) -> Optional[tuple[dict[str, pd.DataFrame], dict]]:
    return load_tables(ws.run_dir(run_id) / "analysis")


def run_checkpoints(ws: Workspace, run_id: str) -> dict[str, Path]:
    """Model name -> checkpoint folder of the run's target-domain models (source-only models left out)."""
    ck = ws.run_dir(run_id) / "checkpoints"
    if not ck.is_dir():
        return {}
    return {p.name: p for p in sorted(ck.iterdir())
            if (p / "model.safetensors").exists() and (p / "config.json").exists() and not p.name.endswith("_source")}



# ==================================================================================================== inspection


def inspect_lists(models: dict, history: np.ndarray, emb: np.ndarray, titles, target: Optional[int] = None,
                  K: int = 10) -> dict[str, pd.DataFrame]:
    """Every model's top-K after one history (0-based item indices, oldest first), side by side.

    Returns: history (position, item, title), lists (long: model, rank, item, title, score, text_cos to the last
    history item, is_target), wide (rank x model), and -- when both vqrec_pretrained and vqrec_adapted are given --
    entered / left (what adaptation moved into and out of VQ-Rec's top-K).
    """
    from . import bias
    from .evaluate import topk

    hist = np.asarray(history, dtype=np.int64)
    if hist.size == 0:
        raise DataError("The sequence is empty; choose at least one item.")
    if not models:
        raise ConfigError("Choose at least one model.")
    titles = np.asarray(titles, dtype=object)
    if hist.min() < 0 or hist.max() >= len(titles):
        raise DataError("The sequence names items outside the catalog.")
    lists = {}
    for name, model in models.items():
        if int(model.n_items) != len(titles):
            raise DataError(f"The model '{name}' ranks {int(model.n_items)} items but the domain now has "
                            f"{len(titles)}; the domain changed after training. Train again on it.")
        max_len = int(getattr(getattr(model, "cfg", None), "max_len", 50))
        h = hist[-max_len:]
        items, scores = topk(model, (h + 1)[None, :], np.array([len(h)]), k=K)  # [1, K]
        lists[name] = (items[0], scores[0])
    last = int(hist[-1])
    long = bias.side_by_side(lists, last, emb, titles, target)
    out = {"history": bias.history_table(hist, titles), "lists": long,
           "wide": bias.side_by_side_wide(long).reset_index()}
    if "vqrec_pretrained" in lists and "vqrec_adapted" in lists:
        out["entered"], out["left"] = bias.adaptation_diff(lists["vqrec_pretrained"][0], lists["vqrec_adapted"][0],
                                                           last, emb, titles, target)
    return out


def user_case(split, user: str) -> tuple[np.ndarray, int]:
    """(history as 0-based items, true next item) of an evaluated user's test case."""
    users = np.asarray(split.test.user).astype(str)
    hit = np.flatnonzero(users == str(user))
    if not len(hit):
        raise DataError(f"User '{user}' is not an evaluated user of this domain (users need 3+ interactions).")
    i = int(hit[0])
    return split.test.seq[i, :split.test.length[i]] - 1, int(split.test.target[i])

"""The transfer experiment end to end on tiny synthetic domains, and recommend() / the recommend CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time

import pandas as pd
import pytest
import torch

from tests.test_models import SMALL, synthetic_domain
from vqrec_core.__main__ import main
from vqrec_core.checkpoint import load_checkpoint, save_checkpoint
from vqrec_core.data import load_domain, split_leave_one_out
from vqrec_core.errors import DataError
from vqrec_core.evaluate import evaluate
from vqrec_core.experiment import COLUMNS, ROWS, preset, run_experiment
from vqrec_core.models import SASRecID, SASRecIDConfig
from vqrec_core.recommend import recommend
from vqrec_core.train import LambdaCallback, TrainConfig, train_target


def _write(domain, folder):
    folder.mkdir(parents=True, exist_ok=True)
    domain.items.rename(columns={"text": "title"}).to_csv(folder / "items.csv", index=False)
    domain.interactions.to_csv(folder / "interactions.csv", index=False)
    return folder / "items.csv", folder / "interactions.csv"


def _tiny_cfg():
    cfg = preset("quick", threads=1)
    small = {k: v for k, v in SMALL.items() if k != "max_len"}
    cfg = dataclasses.replace(cfg, **small, D=4, b=2, encoder="hash:16", n_experts=2)
    cfg.pretrain = TrainConfig(epochs=1, batch_size=32, valid_max_users=None)
    cfg.target = TrainConfig(epochs=2, batch_size=32, lr=3e-3, valid_max_users=None)
    cfg.align = dataclasses.replace(cfg.align, steps=2, batch_size=32)
    return cfg


def test_experiment_writes_every_row_and_reloadable_checkpoints(tmp_path):
    src = load_domain(*_write(synthetic_domain(40, 80, seed=1, name="src"), tmp_path / "src"), name="src")
    tgt = load_domain(*_write(synthetic_domain(30, 70, seed=2, name="tgt"), tmp_path / "tgt"), name="tgt")
    logs, phases, steps, epochs = [], [], [], []
    cb = LambdaCallback(on_step=steps.append, on_epoch_end=epochs.append)
    df = run_experiment([src], tgt, _tiny_cfg(), tmp_path / "out", tmp_path / "ck", tmp_path / "cache",
                        log=logs.append, callbacks=[cb], on_phase=phases.append)
    assert df["model"].tolist() == list(ROWS)
    # every phase announced once, in execution order; the callbacks saw every step and epoch of every training phase
    assert phases == ["prepare src", "prepare tgt", "pop", "text_knn", "vqrec pre-train", "vqrec_pretrained",
                      "vqrec_adapted", "vqrec_adapted_noalign", "text_seq pre-train", "text_seq_pretrained",
                      "text_seq_adapted", "vqrec_scratch", "sasrec_id", "vqrec_random_codes", "vqrec_pq_no_rotation"]
    summary = json.loads((tmp_path / "ck" / "summary.json").read_text())
    trained = [summary["vqrec_pretrain"], summary["text_seq_pretrain"]] + [
        summary["rows"][r] for r in ROWS if "steps" in summary["rows"][r]]
    assert len(trained) == 9 and len(steps) == sum(t["steps"] for t in trained) > 0
    assert len(epochs) == sum(t["epochs_run"] for t in trained)
    assert all(math.isfinite(i["loss"]) for i in steps) and "stopped" not in summary
    csv = pd.read_csv(tmp_path / "out" / "src_to_tgt.csv")
    assert tuple(csv.columns) == COLUMNS and csv["model"].tolist() == list(ROWS)
    metrics = csv[["recall@10", "recall@50", "ndcg@10", "ndcg@50"]].to_numpy()
    assert ((metrics >= 0) & (metrics <= 1)).all()
    assert (csv["recall@50"] >= csv["recall@10"]).all() and (csv["recall@10"] >= csv["ndcg@10"] - 1e-9).all()
    assert (tmp_path / "out" / "src_to_tgt.md").read_text().count("| vqrec_") == 6
    # a saved model reproduces its recorded test numbers exactly
    model, meta = load_checkpoint(tmp_path / "ck" / "vqrec_adapted")
    sp = split_leave_one_out(tgt, model.cfg.max_len)
    again = evaluate(model, sp.test)
    assert again["ndcg@10"] == pytest.approx(float(csv.set_index("model").loc["vqrec_adapted", "ndcg@10"]),
                                             abs=1e-4)
    assert meta["item_ids"] == tgt.items["item_id"].tolist()
    assert (tmp_path / "ck" / "vqrec_source" / "model.safetensors").exists()


def test_stop_after_the_first_step_ends_the_run_with_finished_rows_saved(tmp_path):
    src = load_domain(*_write(synthetic_domain(40, 80, seed=1, name="src"), tmp_path / "src"), name="src")
    tgt = load_domain(*_write(synthetic_domain(30, 70, seed=2, name="tgt"), tmp_path / "tgt"), name="tgt")
    cfg = _tiny_cfg()
    cfg.pretrain = TrainConfig(epochs=5, batch_size=8, valid_max_users=None)  # many steps if the stop were ignored
    stop, steps, phases, logs = threading.Event(), [], [], []
    rows = ["pop", "text_knn", "vqrec_adapted", "sasrec_id"]
    t0 = time.perf_counter()
    df = run_experiment([src], tgt, cfg, tmp_path / "out", tmp_path / "ck", tmp_path / "cache", rows=rows,
                        log=logs.append, stop=stop, on_phase=phases.append,
                        callbacks=[LambdaCallback(on_step=lambda i: (steps.append(i), stop.set()))])
    elapsed = time.perf_counter() - t0
    # pop and text_knn finished before the first training step; pre-training stopped after that one step
    assert len(steps) == 1 and phases[-1] == "vqrec pre-train" and "sasrec_id" not in phases
    assert df["model"].tolist() == ["pop", "text_knn"]
    assert pd.read_csv(tmp_path / "out" / "src_to_tgt.csv")["model"].tolist() == ["pop", "text_knn"]
    md = (tmp_path / "out" / "src_to_tgt.md").read_text()
    assert "stopped by the user: vqrec_adapted, sasrec_id not run; vqrec pre-train was stopped" in md
    summary = json.loads((tmp_path / "ck" / "summary.json").read_text())
    assert summary["stopped"] == {"interrupted": "vqrec pre-train", "not_run": ["vqrec_adapted", "sasrec_id"]}
    assert sorted(p.name for p in (tmp_path / "ck").iterdir() if p.is_dir()) == ["pop", "text_knn"]
    assert "stopped by the user" in logs[-1] and elapsed < 60
    # a stop already set (a callable works too) runs nothing and still writes an empty table
    df = run_experiment([src], tgt, cfg, tmp_path / "out2", None, tmp_path / "cache", rows=rows, log=logs.append,
                        stop=lambda: True)
    assert df.empty and pd.read_csv(tmp_path / "out2" / "src_to_tgt.csv").empty


def test_recommend_for_user_and_sequence_and_errors():
    dom = synthetic_domain(30, 60, seed=3)
    sp = split_leave_one_out(dom, 10)
    torch.manual_seed(0)
    model = SASRecID(SASRecIDConfig(**SMALL), dom.n_items)
    train_target(model, sp, TrainConfig(epochs=1, batch_size=32, valid_max_users=None))
    df = recommend(model, dom, user="u0", k=5)
    assert df.columns.tolist() == ["rank", "item_id", "title", "score"] and len(df) == 5
    assert df["score"].is_monotonic_decreasing and df["rank"].tolist() == [1, 2, 3, 4, 5]
    titles = dict(zip(dom.items["item_id"], dom.items["text"], strict=True))
    assert all(titles[i] == t for i, t in zip(df["item_id"], df["title"], strict=True))
    seq_df = recommend(model, dom, item_ids=["i3", "i4"], k=30, exclude_history=True)
    assert not {"i3", "i4"} & set(seq_df["item_id"].head(28))
    with pytest.raises(DataError, match="'nope'"):
        recommend(model, dom, item_ids=["i1", "nope"])
    with pytest.raises(DataError, match="not in the interaction log"):
        recommend(model, dom, user="ghost")


def test_recommend_cli_on_sample_data(sample_paths, tmp_path, capsys):
    items, inter = sample_paths["toys"]
    dom = load_domain(items, inter)
    sp = split_leave_one_out(dom, 20)
    torch.manual_seed(0)
    model = SASRecID(SASRecIDConfig(h=16, n_layers=1, ffn=32, max_len=20), dom.n_items)
    train_target(model, sp, TrainConfig(epochs=1, batch_size=256, max_steps_per_epoch=3, valid_max_users=50))
    save_checkpoint(model, tmp_path / "ck", meta={"item_ids": dom.items["item_id"].tolist()})
    user = str(sp.test.user[0])
    rc = main(["recommend", "--items", str(items), "--interactions", str(inter), "--checkpoint",
               str(tmp_path / "ck"), "--user", user])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 11 and out[1].strip().startswith("1. [")
    catalog_titles = set(dom.items["text"])
    assert all(any(t in line for t in catalog_titles) for line in out[1:4])
    # a checkpoint of another catalog is refused with a message, not a traceback
    other_items, other_inter = sample_paths["beauty"]
    rc = main(["recommend", "--items", str(other_items), "--interactions", str(other_inter), "--checkpoint",
               str(tmp_path / "ck"), "--user", user])
    assert rc == 2 and "different catalog" in capsys.readouterr().err


def test_unknown_preset_and_rows_raise():
    from vqrec_core.errors import ConfigError

    with pytest.raises(ConfigError):
        preset("huge")
    dom = synthetic_domain(10, 20)
    with pytest.raises(ConfigError, match="Unknown experiment rows"):
        run_experiment([dom], dom, _tiny_cfg(), "/tmp/never", rows=["bogus"])


def test_long_preset_is_standard_with_the_declared_larger_budget():
    std, long = preset("standard"), preset("long")
    assert long.target.epochs == 3 * std.target.epochs and long.target.patience == 3
    assert long.pretrain.epochs == 5 and long.target.max_steps_per_epoch == std.target.max_steps_per_epoch
    # nothing else differs: same model, codes, learning rates and alignment
    assert (long.h, long.D, long.b, long.tau, long.align) == (std.h, std.D, std.b, std.tau, std.align)
    assert (long.target.lr, long.pretrain.lr, long.pretrain.rho) == (std.target.lr, std.pretrain.lr, std.pretrain.rho)

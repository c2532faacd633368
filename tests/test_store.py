"""Workspace store and app pipeline: file names, uploads, domains, run status (interrupted), tables, runs, analyses."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from vqrec_core import pipeline, store
from vqrec_core.data import load_domain
from vqrec_core.errors import ConfigError, DataError
from vqrec_core.fsutil import content_hash
from vqrec_core.store import Workspace, open_workspace, sanitize_filename


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="module")
def sample_ws(tmp_path_factory) -> Workspace:
    return open_workspace(tmp_path_factory.mktemp("sample_ws"))


# ------------------------------------------------------------------------------------------------ names and uploads


@pytest.mark.parametrize("name,expected", [
    ("../../x.csv", "x.csv"),
    ("..\\..\\evil.csv.gz", "evil.csv.gz"),
    ("/etc/passwd", "passwd"),
    ("my items (2024).tsv", "my_items_2024_.tsv"),
    ("..", "upload"),
    ("", "upload"),
    (".hidden.csv", "hidden.csv"),
])
def test_sanitize_filename(name, expected):
    assert sanitize_filename(name) == expected


def test_save_upload_stays_inside_uploads_and_refuses_bad_files(ws, monkeypatch):
    p = ws.save_upload(b"item_id,title\n1,a\n", "../../../x.csv", "item catalog")
    assert p.resolve().is_relative_to(ws.uploads_dir.resolve())
    assert p.name == "x.csv" and p.read_bytes() == b"item_id,title\n1,a\n"
    p2 = ws.save_upload(b"a", "../../../x.csv")
    assert p2 != p  # two uploads of the same name never share a path
    with pytest.raises(DataError, match="empty"):
        ws.save_upload(b"", "items.csv", "item catalog")
    monkeypatch.setattr(store, "MAX_UPLOAD_MB", 1)
    with pytest.raises(DataError, match="over the 1 MB upload limit"):
        ws.save_upload(b"x" * (2**20 + 1), "items.csv")


@pytest.mark.parametrize("bad", ["", "../x", "a" * 41, "-lead", "has space", "a/b"])
def test_validate_domain_name_refuses(bad):
    with pytest.raises(ConfigError):
        store.validate_domain_name(bad)


def test_upload_limit_matches_data_layer_and_streamlit_config():
    from pathlib import Path

    from vqrec_core import data

    assert store.MAX_UPLOAD_MB * 2**20 == getattr(data, "MAX_FILE_BYTES", store.MAX_UPLOAD_MB * 2**20)
    cfg = (Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text()
    assert f"maxUploadSize = {store.MAX_UPLOAD_MB}" in cfg


# ------------------------------------------------------------------------------------------------ domains


def test_domain_round_trip_and_delete(ws, tiny_domain_files):
    dom = load_domain(*tiny_domain_files, name="tiny")
    ws.save_domain(dom, sources={"items": "items.csv"})
    assert ws.list_domains() == ["tiny"]
    back = ws.load_domain("tiny")
    assert back.items["item_id"].tolist() == dom.items["item_id"].tolist()
    assert back.titles() == dom.titles() == ["Red lipstick & gloss", "Blue lipstick", "Toy truck", "Toy car"]
    pd.testing.assert_frame_equal(back.interactions.reset_index(drop=True), dom.interactions.reset_index(drop=True),
                                  check_dtype=False)
    meta = ws.domain_meta("tiny")
    assert meta["stats"]["users"] == 3 and meta["stats"]["interactions"] == 9
    with pytest.raises(ConfigError, match="already exists"):
        ws.save_domain(dom)
    ws.delete_domain("tiny")
    assert ws.list_domains() == []
    with pytest.raises(DataError):
        ws.load_domain("tiny")


def test_samples_registered_once_and_minilm_cache_primed(tmp_path):
    ws = open_workspace(tmp_path / "w")
    assert ws.list_domains() == ["beauty", "toys"]
    texts = ws.load_domain("beauty").titles()
    cached = ws.cache_dir / f"emb-{content_hash('all-MiniLM-L6-v2', texts)}.npy"
    shipped = np.load(store.__file__.replace("vqrec_core/store.py", "sample_data/beauty/minilm.npy"))
    assert cached.exists()
    assert np.allclose(np.load(cached), shipped / np.linalg.norm(shipped, axis=1, keepdims=True), atol=1e-5)
    ws.delete_domain("toys")
    assert open_workspace(tmp_path / "w").list_domains() == ["beauty"]  # a deleted sample stays deleted


# ------------------------------------------------------------------------------------------------ runs


def test_run_ids_unique_across_concurrent_sessions(tmp_path):
    ids: list[str] = []
    lock = threading.Lock()

    def session():
        w = Workspace(tmp_path / "shared")  # each browser session builds its own handle
        for _ in range(10):
            rid = w.create_run({"who": threading.get_ident()})
            with lock:
                ids.append(rid)

    threads = [threading.Thread(target=session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 40 and len(set(ids)) == 40
    w = Workspace(tmp_path / "shared")
    assert len(w.list_runs()) == 40
    assert all(json.loads((w.run_dir(r) / "config.json").read_text())["who"] for r in ids)


def test_dead_or_silent_running_run_is_interrupted(ws):
    live = ws.create_run({})
    assert ws.run_status(live)["status"] == "running"  # this process is alive and just beat

    dead = ws.create_run({})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    ws.update_status(dead, pid=proc.pid, proc_started=None)
    st = ws.run_status(dead)
    assert st["status"] == "interrupted" and "process is gone" in st["message"]
    assert json.loads((ws.run_dir(dead) / "status.json").read_text())["status"] == "interrupted"  # rewritten

    silent = ws.create_run({})
    ws.update_status(silent, heartbeat=time.time() - store.HEARTBEAT_STALE_S - 5)
    assert ws.run_status(silent)["status"] == "interrupted"

    reused = ws.create_run({})  # our pid, but a different process start time = pid reuse after a restart
    ws.update_status(reused, proc_started=12345.0)
    assert ws.run_status(reused)["status"] == "interrupted"

    done = ws.create_run({})
    ws.update_status(done, status="finished", pid=proc.pid)
    assert ws.run_status(done)["status"] == "finished"  # only running runs are reconciled
    with pytest.raises(ConfigError, match="still running"):
        ws.delete_run(live)
    ws.delete_run(done)
    assert done not in [r["run_id"] for r in ws.list_runs()]


def test_run_dir_refuses_traversal(ws):
    for bad in ("../x", "", "a/../../b"):
        with pytest.raises(ConfigError):
            ws.run_dir(bad)


def test_tables_round_trip_and_incomplete(tmp_path):
    t = {"a": pd.DataFrame({"x": [1, 2], "y": ["p", "q"]}), "b": pd.DataFrame({"z": [0.5]})}
    store.save_tables(tmp_path / "t", t, {"k": 1})
    back, meta = store.load_tables(tmp_path / "t")
    assert meta["k"] == 1 and sorted(back) == ["a", "b"]
    pd.testing.assert_frame_equal(back["a"], t["a"])
    (tmp_path / "t" / "b.csv").unlink()
    assert store.load_tables(tmp_path / "t") is None  # a half-written result is not shown as complete


# ------------------------------------------------------------------------------------------------ pipeline


def test_transfer_gain_matches_hand_computation():
    m = pd.DataFrame({"run": ["r"] * 3, "source": ["a"] * 3, "target": ["b"] * 3,
                      "model": ["vqrec_adapted", "vqrec_scratch", "sasrec_id"], "ndcg@10": [0.03, 0.02, 0.04]})
    g = pipeline.transfer_gain(m, "ndcg@10").set_index("baseline")
    assert g.loc["vqrec_scratch", "relative gain"] == pytest.approx(0.5)
    assert g.loc["sasrec_id", "relative gain"] == pytest.approx(-0.25)


def test_code_analysis_is_saved_and_reloaded(sample_ws):
    spec = pipeline.CodeSpec(domains=("beauty", "toys"), encoder="hash:64", D=4, b=4, umap=False)
    assert pipeline.load_code_analysis(sample_ws, spec) is None
    seen = []
    tables, meta = pipeline.run_code_analysis(sample_ws, spec, progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    want = {"codes", "code_digits", "uniformity", "ablations", "domain_gap", "items_beauty", "items_toys"}
    assert want <= set(tables)
    assert sorted(tables["ablations"]["method"].unique()) == ["opq", "pq", "random"]
    codes = tables["items_beauty"][[f"c{k}" for k in range(4)]].to_numpy()
    assert codes.shape == (1988, 4) and codes.min() >= 0 and codes.max() < 16
    back, _ = pipeline.load_code_analysis(sample_ws, spec)
    pd.testing.assert_frame_equal(back["codes"], tables["codes"], check_dtype=False)


def test_training_run_finishes_and_saves_everything(sample_ws, monkeypatch):
    monkeypatch.setenv("VQREC_SMOKE", "1")
    rows = ["pop", "text_knn", "vqrec_scratch", "vqrec_pretrained", "vqrec_adapted"]
    rid = pipeline.start_training(sample_ws, ["beauty"], "toys", rows, "smoke", "hash:64")
    assert sample_ws.run_status(rid)["status"] == "running"
    st = pipeline.wait_for(sample_ws, rid, timeout=300)
    assert st["status"] == "finished", st
    m = pipeline.run_metrics(sample_ws, rid)
    assert m["model"].tolist() == rows
    assert ((m["recall@10"] >= 0) & (m["recall@10"] <= m["recall@50"]) & (m["recall@50"] <= 1)).all()
    prog = pipeline.live_state(sample_ws, rid)
    assert prog["frac"] == 1.0 and prog["epochs"]
    assert set(pipeline.run_checkpoints(sample_ws, rid)) == set(rows)
    tables, meta = pipeline.load_results_analysis(sample_ws, rid)
    assert "bias_summary" in tables and "bias_before_after" in tables
    ba = tables["bias_before_after"]
    assert ba[["before", "after"]].values.tolist() == [["vqrec_pretrained", "vqrec_adapted"]]
    # the inspection lists of one evaluated user
    ld = pipeline.load_domain_data(sample_ws, "toys", "hash:64")
    from vqrec_core.checkpoint import load_checkpoint

    models = {n: load_checkpoint(p)[0] for n, p in pipeline.run_checkpoints(sample_ws, rid).items()}
    hist, tgt = pipeline.user_case(ld.split, str(ld.split.test.user[0]))
    out = pipeline.inspect_lists(models, hist, ld.emb, ld.domain.titles(), tgt, K=7)
    assert out["wide"].shape == (7, 1 + len(rows)) and len(out["history"]) == len(hist)
    assert "entered" in out and len(out["entered"]) == len(out["left"])
    assert (out["lists"]["is_target"] == (out["lists"]["item"] == tgt)).all()


def test_training_refuses_bad_requests(sample_ws):
    with pytest.raises(ConfigError, match="also a source"):
        pipeline.start_training(sample_ws, ["toys"], "toys", ["pop"], "quick", "hash:64")
    with pytest.raises(ConfigError, match="at least one model"):
        pipeline.start_training(sample_ws, ["beauty"], "toys", [], "quick", "hash:64")
    with pytest.raises(DataError, match="no domain"):
        pipeline.start_training(sample_ws, ["nope"], "toys", ["pop"], "quick", "hash:64")


def test_stop_request_ends_a_run_as_stopped(sample_ws, monkeypatch):
    monkeypatch.setenv("VQREC_SMOKE", "1")
    rid = pipeline.start_training(sample_ws, ["beauty"], "toys", ["pop", "text_knn", "sasrec_id", "vqrec_scratch"],
                                  "smoke", "hash:64")
    assert pipeline.request_stop(sample_ws, rid)
    st = pipeline.wait_for(sample_ws, rid, timeout=300)
    assert st["status"] == "stopped"
    assert len(pipeline.run_metrics(sample_ws, rid)) < 4


def test_stale_temp_files_of_killed_writes_are_cleared(tmp_path):
    import os
    import time

    from vqrec_core.store import open_workspace

    ws = open_workspace(tmp_path / "ws", samples=False)
    old = ws.root / "cache" / ".emb-x.npy.abc.tmp"
    new = ws.root / "cache" / ".emb-y.npy.def.tmp"
    keep = ws.root / "cache" / "emb-z.npy"
    for f in (old, new, keep):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    past = time.time() - 2 * 3600
    os.utime(old, (past, past))
    os.utime(keep, (past, past))
    assert ws.clear_stale_temp_files() == 1
    assert not old.exists() and new.exists() and keep.exists()  # a fresh temp file may belong to a live write

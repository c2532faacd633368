"""Issue 7 "no lost work": real processes doing encoding, code generation and training are killed with SIGKILL
mid-way; afterwards the cache / workspace is loadable, no partial file sits under a final name, earlier results
are byte-identical, and the interrupted training run is reported as "interrupted".

Each test starts a complete job first (the "earlier result"), snapshots the folder, then starts a bigger job in
a subprocess, waits until its progress output says it is mid-way, kills it, and inspects the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import PROJECT

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": str(PROJECT)}
_TEMP = re.compile(r"^\..+\.tmp$")  # fsutil.atomic_write_bytes' mkstemp names: .<final name>.<random>.tmp


# ------------------------------------------------------------------------------------------------ helpers


class Proc:
    """A subprocess whose stdout+stderr are collected by a thread (progress may use '\\r' without newlines)."""

    def __init__(self, args: list[str], cwd: Path = PROJECT, env: dict | None = None):
        self.p = subprocess.Popen(args, cwd=cwd, env=env or ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.out = bytearray()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        while chunk := self.p.stdout.read1(4096):
            self.out += chunk

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace")

    def wait_until(self, cond, timeout: float = 240.0, what: str = "") -> None:
        end = time.time() + timeout
        while time.time() < end:
            if cond():
                return
            if self.p.poll() is not None:
                pytest.fail(f"the process ended (rc {self.p.returncode}) before {what}:\n{self.text[-2000:]}")
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"timed out waiting for {what}:\n{self.text[-2000:]}")

    def max_percent(self) -> float:
        vals = [float(v) for v in re.findall(r"\[\s*(\d+(?:\.\d+)?)%\]", self.text)]
        return max(vals, default=0.0)

    def kill(self) -> int:
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)  # only the process this test started
        rc = self.p.wait(timeout=60)
        self.t.join(timeout=10)
        return rc


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vqrec_core", *map(str, args)]


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` except temp files."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not _TEMP.match(p.name)}


def _temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and _TEMP.match(p.name)]


def _assert_all_loadable(folder: Path) -> int:
    """Every non-temp file under ``folder`` parses completely in its format; returns how many were checked."""
    from safetensors.numpy import load as st_load

    from vqrec_core.fsutil import load_npy

    n = 0
    for p in folder.rglob("*"):
        if not p.is_file() or _TEMP.match(p.name):
            continue
        if p.suffix == ".npy":
            load_npy(p)
        elif p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        elif p.suffix == ".csv":
            pd.read_csv(p)
        elif p.suffix == ".safetensors":
            st_load(p.read_bytes())
        else:
            continue
        n += 1
    return n


def _catalog(folder: Path, n_items: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    words = np.array("red blue lipstick gloss toy truck car puzzle doll brush cream soap lotion kit mini".split())
    titles = [" ".join(rng.choice(words, 6)) + f" model {seed}-{i}" for i in range(n_items)]
    ip, lp = folder / f"items{seed}.csv", folder / f"inter{seed}.csv"
    pd.DataFrame({"item_id": np.arange(n_items), "title": titles}).to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u"] * 3, "item_id": [0, 1, 2], "timestamp": [1, 2, 3]}).to_csv(lp, index=False)
    return ip, lp


# ------------------------------------------------------------------------------------------------ encoding


def test_kill_during_encoding_leaves_the_cache_loadable(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    ip_a, lp_a = _catalog(tmp_path, 300, seed=1)
    ip_b, lp_b = _catalog(tmp_path, 40000, seed=2)
    done = subprocess.run(_cli("encode", "--items", ip_a, "--interactions", lp_a, "--encoder", "hash:32",
                               "--cache-dir", cache, "--out", out / "a.npy", "--quiet"),
                          cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before_cache, before_out = _snapshot(cache), _snapshot(out)
    assert len(before_cache) == 1

    job = Proc(_cli("encode", "--items", ip_b, "--interactions", lp_b, "--encoder", "hash:32", "--cache-dir", cache,
                    "--out", out / "b.npy"))
    job.wait_until(lambda: job.max_percent() >= 10.0, what="encoding to reach 10%")
    assert job.max_percent() < 100.0, "the job finished before it could be killed; use a bigger catalog"
    assert job.kill() == -signal.SIGKILL

    assert not (out / "b.npy").exists()  # nothing under the final name
    assert _snapshot(cache) == before_cache and _snapshot(out) == before_out  # earlier results byte-identical
    assert _assert_all_loadable(tmp_path) >= 2
    # the earlier entry is still a cache hit: an encoder that cannot encode proves nothing is recomputed
    from vqrec_core.data import load_domain
    from vqrec_core.text import encode_texts

    class Refuse:
        name, dim = "hash:32", 32

        def encode(self, *a, **k):
            raise AssertionError("cache miss")

    emb = encode_texts(Refuse(), load_domain(ip_a, lp_a).titles(), cache_dir=cache)
    assert np.array_equal(emb, np.load(out / "a.npy"))


# ------------------------------------------------------------------------------------------------ codes


def test_kill_during_code_generation_leaves_the_cache_loadable(tmp_path):
    from vqrec_core.codes import CodeConfig, CodeResult, build_codes

    cache, out = tmp_path / "cache", tmp_path / "out"
    rng = np.random.default_rng(0)
    np.save(tmp_path / "small.npy", rng.standard_normal((2000, 32)).astype(np.float32))
    np.save(tmp_path / "big.npy", rng.standard_normal((40000, 64)).astype(np.float32))
    done = subprocess.run(_cli("codes", "--embeddings", tmp_path / "small.npy", "--D", 4, "--bits", 4,
                               "--cache-dir", cache, "--out", out / "small"),
                          cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    before_cache, before_out = _snapshot(cache), _snapshot(out)

    job = Proc(_cli("codes", "--embeddings", tmp_path / "big.npy", "--D", 8, "--bits", 8, "--cache-dir", cache,
                    "--out", out / "big"))
    job.wait_until(lambda: "OPQ alternation 3/" in job.text, what="OPQ training to be under way")
    assert "codes ready" not in job.text
    assert job.kill() == -signal.SIGKILL

    assert not (out / "big" / "codes.npy").exists() and not (out / "big" / "diagnostics.json").exists()
    after = _snapshot(cache)
    assert {k: v for k, v in after.items() if k in before_cache} == before_cache  # earlier entry intact
    # any new cache folder is incomplete (no meta.json) and therefore ignored, never half-read
    new_dirs = {k.split("/")[0] for k in after} - {k.split("/")[0] for k in before_cache}
    assert all(not (cache / d / "meta.json").exists() for d in new_dirs)
    assert _snapshot(out) == before_out
    _assert_all_loadable(tmp_path)
    (folder,) = [cache / d for d in {k.split("/")[0] for k in before_cache}]
    res = CodeResult.load(folder)
    assert np.array_equal(res.codes, np.load(out / "small" / "codes.npy"))
    again = build_codes(np.load(tmp_path / "small.npy"), None, CodeConfig(D=4, b=4), cache_dir=cache)
    assert again.from_cache and np.array_equal(again.codes, res.codes)


# ------------------------------------------------------------------------------------------------ training

_DRIVER = r"""
import os, sys
os.environ["VQREC_SMOKE"] = "1"
from vqrec_core.store import open_workspace
from vqrec_core.pipeline import start_training, wait_for
ws = open_workspace(sys.argv[1])
rid = start_training(ws, ["beauty"], "toys", sys.argv[2].split(","), sys.argv[3], encoder="hash:32")
print("RUN", rid, flush=True)
st = wait_for(ws, rid, timeout=900)
print("STATUS", st["status"], flush=True)
"""


def test_kill_during_training_marks_the_run_interrupted(tmp_path):
    pytest.importorskip("vqrec_core.pipeline")
    from vqrec_core.checkpoint import load_checkpoint
    from vqrec_core.store import Workspace

    ws_dir = tmp_path / "ws"
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    first = subprocess.run([sys.executable, str(driver), str(ws_dir), "pop", "smoke"], cwd=PROJECT, env=ENV,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0 and "STATUS finished" in first.stdout, first.stdout + first.stderr
    run1 = re.search(r"RUN (\S+)", first.stdout).group(1)
    before = _snapshot(ws_dir / "runs" / run1)
    domains_before = _snapshot(ws_dir / "domains")

    job = Proc([sys.executable, str(driver), str(ws_dir), "pop,sasrec_id,vqrec_scratch", "quick"])
    job.wait_until(lambda: "RUN " in job.text, what="the run to start")
    run2 = re.search(r"RUN (\S+)", job.text).group(1)
    progress = ws_dir / "runs" / run2 / "progress.json"

    def mid_training() -> bool:  # 'pop' is done and a trained model has finished its first epoch
        try:
            st = json.loads(progress.read_text())
            return st["rows_done"] >= 1 and len(st["epochs"]) >= 1
        except (OSError, ValueError, KeyError):
            return False

    job.wait_until(mid_training, what="a model's first epoch in progress.json")
    assert job.kill() == -signal.SIGKILL
    assert "STATUS" not in job.text

    ws = Workspace(ws_dir)
    st = ws.run_status(run2)
    assert st["status"] == "interrupted" and "interrupted" in st["message"]
    assert json.loads((ws_dir / "runs" / run2 / "status.json").read_text())["status"] == "interrupted"
    assert ws.run_status(run1)["status"] == "finished"
    statuses = {r["run_id"]: r["status"] for r in ws.list_runs()}
    assert statuses == {run1: "finished", run2: "interrupted"}
    assert _snapshot(ws_dir / "runs" / run1) == before and _snapshot(ws_dir / "domains") == domains_before
    assert _assert_all_loadable(ws_dir) >= 5
    saved = list((ws_dir / "runs").rglob("checkpoints/*/config.json"))
    assert ws_dir / "runs" / run2 / "checkpoints" / "pop" / "config.json" in saved  # finished before the kill: kept
    for cfg in saved:  # every saved checkpoint loads completely
        model, _ = load_checkpoint(cfg.parent)
        assert model.n_items > 0
    ws.load_domain("toys")  # the workspace is still usable

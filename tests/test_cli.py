"""The command line: validate's exit codes and messages, encode's output, --help for every command."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import PROJECT


def run(*args, cwd=PROJECT):
    return subprocess.run([sys.executable, "-m", "vqrec_core", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_validate_sample_data_exits_0_with_statistics(sample_paths):
    ip, lp = sample_paths["beauty"]
    r = run("validate", "--items", ip, "--interactions", lp)
    assert r.returncode == 0, r.stderr
    assert "usable" in r.stdout and "users" in r.stdout and "3000" in r.stdout


def test_validate_unknown_items_exits_2_naming_them(tmp_path):
    (tmp_path / "i.csv").write_text("item_id,title\n1,a\n2,b\n")
    (tmp_path / "l.csv").write_text("user_id,item_id,timestamp\nu,1,1\nu,42,2\nu,77,3\n")
    r = run("validate", "--items", tmp_path / "i.csv", "--interactions", tmp_path / "l.csv")
    assert r.returncode == 2
    assert "'42'" in r.stderr and "'77'" in r.stderr and "not in the catalog" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_missing_file_exits_2_without_traceback(tmp_path):
    r = run("encode", "--items", tmp_path / "nope.csv", "--interactions", tmp_path / "nope2.csv", "--out",
            tmp_path / "x.npy", "--encoder", "hash:8")
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_encode_writes_unit_vectors(tiny_domain_files, tmp_path):
    ip, lp = tiny_domain_files
    out = tmp_path / "emb.npy"
    r = run("encode", "--items", ip, "--interactions", lp, "--encoder", "hash:16", "--out", out, "--cache-dir",
            tmp_path / "cache", "--quiet")
    assert r.returncode == 0, r.stderr
    emb = np.load(out)
    assert emb.shape == (4, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert list((tmp_path / "cache").glob("emb-*.npy"))


@pytest.mark.parametrize("cmd", ["validate", "encode"])
def test_help_documents_every_flag(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0
    for flag in ("--items", "--interactions", "--item-id-col", "--text-cols", "--user-col", "--time-col",
                 "--encoding"):
        assert flag in r.stdout

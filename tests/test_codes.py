"""Tests for vqrec_core.codes: quantizers, flat ids, diagnostics, cache, strict training, CLI (small, 1 thread)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from vqrec_core import codes as C
from vqrec_core.codes import (
    CodeConfig,
    CodeResult,
    build_codes,
    code_diagnostics,
    codes_from_flat_ids,
    flat_code_ids,
    resolve_config,
)
from vqrec_core.errors import CheckpointError, ConfigError, DataError


@pytest.fixture(autouse=True)
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def anisotropic(n: int = 600, d: int = 32, seed: int = 0) -> np.ndarray:
    """Gaussian data with variances spread over 3 orders of magnitude, hidden by a random rotation."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(0.5, -1.5, d)  # [d]
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return ((rng.standard_normal((n, d)) * scales) @ q + 0.3).astype(np.float32)  # [n, d]


FAST = dict(opq_iters=4, kmeans_iters=2, init_kmeans_iters=6, final_kmeans_iters=6)


def test_shapes_dtypes_ranges_and_self_consistency():
    x = anisotropic()
    res = build_codes(x, None, CodeConfig(D=8, b=4, **FAST))
    assert res.codes.dtype == np.uint8 and res.codes.shape == (600, 8)
    assert res.M == 16 and res.D == 8 and res.method == "opq"
    assert int(res.codes.max()) < 16
    assert res.centroids.shape == (8, 16, 4) and res.mean.shape == (32,)
    np.testing.assert_allclose(res.rotation @ res.rotation.T, np.eye(32), atol=1e-4)
    # re-encoding the same vectors gives the same codes; recon_error is the mean squared norm of x - x_hat
    assert (res.encode(x) == res.codes).mean() > 0.99
    xh = res.reconstruct()
    assert xh.shape == x.shape
    assert res.recon_error == pytest.approx(float(((x.astype(np.float64) - xh) ** 2).sum(1).mean()), rel=1e-4)
    # every codeword is nearest to its own reconstruction: encoding the reconstruction returns the codes
    assert (res.encode(xh) == res.codes).mean() > 0.99


def test_flat_ids_hand_case_range_and_round_trip():
    codes = np.array([[0, 3], [2, 0]], dtype=np.uint8)
    np.testing.assert_array_equal(flat_code_ids(codes, 4), [[1, 9], [3, 6]])  # code + 1 + k * (M + 1), M = 4
    rng = np.random.default_rng(1)
    M, D = 16, 6
    cd = rng.integers(0, M, size=(200, D)).astype(np.uint8)
    flat = flat_code_ids(cd, M)
    assert flat.dtype == np.int64
    for k in range(D):
        assert flat[:, k].min() >= k * (M + 1) + 1 and flat[:, k].max() <= k * (M + 1) + M
    assert flat.min() >= 1 and flat.max() < D * (M + 1)  # 0 never used: padding
    np.testing.assert_array_equal(codes_from_flat_ids(flat, M), cd)
    with pytest.raises(DataError):
        flat_code_ids(np.array([[16]]), 16)
    with pytest.raises(DataError):
        codes_from_flat_ids(np.zeros((1, 2), dtype=np.int64), 16)  # padding is not a code


def test_opq_beats_random_and_plain_pq_on_anisotropic_data():
    x = anisotropic(n=800)
    errs = {m: build_codes(x, None, CodeConfig(D=8, b=4, method=m, **FAST)).recon_error
            for m in ("opq", "pq", "random")}
    total_var = float(((x - x.mean(0)) ** 2).sum(1).mean())
    assert errs["opq"] <= errs["pq"]
    assert errs["opq"] < 0.8 * errs["random"]
    assert errs["random"] < total_var * 1.01  # random-code reconstruction is no better than the mean (roughly)
    assert errs["opq"] < 0.5 * total_var
    # the PCA + eigenvalue-allocation start is orthogonal, and OPQ from it also beats plain PQ
    r = C._eigen_allocation(x - x.mean(0), 8)
    np.testing.assert_allclose(r.T @ r, np.eye(32), atol=1e-8)
    assert build_codes(x, None, CodeConfig(D=8, b=4, init="pca", **FAST)).recon_error <= errs["pq"]


def test_strict_training_ignores_items_outside_the_mask():
    x = anisotropic(n=500)
    mask = np.zeros(500, dtype=bool)
    mask[:300] = True
    cfg = CodeConfig(D=8, b=4, **FAST)
    a = build_codes(x, mask, cfg)
    x2 = x.copy()
    x2[300:] = 10.0 * np.random.default_rng(5).standard_normal((200, 32)).astype(np.float32)
    b = build_codes(x2, mask, cfg)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.rotation, b.rotation)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.codes[:300], b.codes[:300])
    assert a.n_train == 300
    assert not np.array_equal(a.codes[300:], b.codes[300:])  # the other items are still encoded (differently)
    # a changed training item does change the quantizer
    x3 = x.copy()
    x3[0] += 5.0
    assert not np.array_equal(build_codes(x3, mask, cfg).mean, a.mean)


def test_cache_hit_reads_from_disk_without_training(tmp_path, monkeypatch):
    x = anisotropic(n=300)
    cfg = CodeConfig(D=8, b=4, **FAST)
    first = build_codes(x, None, cfg, cache_dir=tmp_path)
    assert not first.from_cache
    folders = list(tmp_path.glob("codes-*"))
    assert len(folders) == 1 and (folders[0] / "meta.json").exists()

    def boom(*a, **k):
        raise AssertionError("trainer called despite a cache hit")

    monkeypatch.setattr(C, "_train_opq", boom)
    msgs = []
    second = build_codes(x, None, cfg, cache_dir=tmp_path, progress=lambda f, m: msgs.append((f, m)))
    assert second.from_cache
    np.testing.assert_array_equal(second.codes, first.codes)
    np.testing.assert_array_equal(second.centroids, first.centroids)
    assert second.recon_error == pytest.approx(first.recon_error)
    assert msgs[-1][0] == 1.0
    # threads do not change the key; the seed does (and then training runs -> boom)
    assert build_codes(x, None, CodeConfig(D=8, b=4, threads=2, **FAST), cache_dir=tmp_path).from_cache
    with pytest.raises(AssertionError, match="trainer called"):
        build_codes(x, None, CodeConfig(D=8, b=4, seed=1, **FAST), cache_dir=tmp_path)


def test_damaged_saved_codes_raise_checkpoint_error(tmp_path):
    x = anisotropic(n=200)
    res = build_codes(x, None, CodeConfig(D=8, b=3, **FAST))
    res.save(tmp_path / "c")
    back = CodeResult.load(tmp_path / "c")
    np.testing.assert_array_equal(back.codes, res.codes)
    assert back.config.b == 3 and back.M == 8
    (tmp_path / "c" / "centroids.npy").write_bytes(b"not an array")
    with pytest.raises(CheckpointError):
        CodeResult.load(tmp_path / "c")


def test_diagnostics_known_cases():
    # all items share one codeword in every digit: entropy 0, all n collide, one distinct code
    d0 = code_diagnostics(np.zeros((10, 3), dtype=np.uint8), 4)
    np.testing.assert_array_equal(d0["entropy_bits"], [0, 0, 0])
    assert d0["n_colliding_items"] == 10 and d0["collision_share"] == 1.0 and d0["n_distinct_codes"] == 1
    assert d0["usage"].tolist() == [[10, 0, 0, 0]] * 3
    # uniform usage: entropy = log2 M in every digit, and these codes are all distinct
    M = 8
    cyc = ((np.arange(M)[:, None] + np.arange(3)[None, :]) % M).astype(np.uint8)  # [M, 3]
    du = code_diagnostics(cyc, M)
    np.testing.assert_allclose(du["entropy_bits"], [3.0, 3.0, 3.0])
    assert du["max_entropy_bits"] == 3.0 and du["mean_entropy_ratio"] == pytest.approx(1.0)
    assert du["n_colliding_items"] == 0 and du["n_distinct_codes"] == M
    # mixed hand case: digit 0 usage (2, 1, 1, 0) -> 1.5 bits; two identical rows collide
    mixed = np.array([[0, 0], [0, 0], [1, 2], [2, 1]], dtype=np.uint8)
    dm = code_diagnostics(mixed, 4, recon_error=0.25)
    assert dm["entropy_bits"][0] == pytest.approx(1.5)
    assert dm["n_colliding_items"] == 2 and dm["collision_share"] == 0.5 and dm["n_distinct_codes"] == 3
    assert dm["used_codewords"].tolist() == [3, 3] and dm["recon_error"] == 0.25
    json.dumps(C.diagnostics_to_jsonable(dm))  # JSON-able


def test_config_errors_and_auto_resolution():
    x = anisotropic(n=100)
    with pytest.raises(ConfigError, match="Too few training items"):
        build_codes(x, None, CodeConfig(D=8, b=8))  # 100 items < M = 256
    with pytest.raises(ConfigError, match="must divide"):
        build_codes(x, None, CodeConfig(D=5, b=2))
    with pytest.raises(ConfigError, match="No training items"):
        build_codes(x, np.zeros(100, dtype=bool), CodeConfig(D=8, b=2))
    with pytest.raises(ConfigError, match="Unknown code method"):
        build_codes(x, None, CodeConfig(method="lsh"))
    with pytest.raises(DataError):
        build_codes(x, np.ones(99, dtype=bool), CodeConfig(D=8, b=2))
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        build_codes(bad, None, CodeConfig(D=8, b=2))
    # auto: b = largest in [2, 8] with n_train >= 39 * 2**b; D = largest divisor of d <= min(32, d / 2)
    r, _ = resolve_config(CodeConfig(), n_train=1000, d=384)
    assert (r.D, r.b) == (32, 4)  # 39 * 16 = 624 <= 1000 < 39 * 32 = 1248
    r, _ = resolve_config(CodeConfig(), n_train=10_000, d=384)
    assert r.b == 8 and r.M == 256
    r, _ = resolve_config(CodeConfig(), n_train=50, d=32)
    assert (r.D, r.b) == (16, 2)
    r, w = resolve_config(CodeConfig(b=6), n_train=100, d=32)
    assert w and "39" in w[0]


def test_progress_is_reported_in_order():
    seen = []
    build_codes(anisotropic(n=200), None, CodeConfig(D=8, b=3, **FAST), progress=lambda f, m: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen) and seen == sorted(seen)


def test_faiss_path_runs_on_a_tiny_case():
    x = anisotropic(n=400, d=16)
    for variant in ("ivf1np", "ivf1", "np"):
        res = build_codes(x, None, CodeConfig(D=4, b=4, method="faiss_opq", faiss_variant=variant,
                                              faiss_opq_niter=5))
        assert res.codes.shape == (400, 4) and res.codes.dtype == np.uint8 and int(res.codes.max()) < 16
        # the extracted quantizer (rotation, mean, centroids) reproduces faiss' own encoding
        assert (res.encode(x) == res.codes).mean() > 0.98
        total_var = float(((x - x.mean(0)) ** 2).sum(1).mean())
        assert res.recon_error < 0.5 * total_var
    assert C.faiss_factory_string(CodeConfig(D=4, b=4)) == "OPQ4,IVF1,PQ4x4np"
    assert C.faiss_factory_string(CodeConfig(D=4, b=4, faiss_variant="ivf1")) == "OPQ4,IVF1,PQ4x4"
    assert C._unpack_codes(np.array([[0x21, 0x43]], dtype=np.uint8), 4, 4).tolist() == [[1, 2, 3, 4]]


def test_cli_writes_codes_and_diagnostics(tmp_path, capsys):
    x = anisotropic(n=300)
    np.save(tmp_path / "emb.npy", x)
    mask = np.arange(300) < 250
    np.save(tmp_path / "mask.npy", mask)
    parser = argparse.ArgumentParser()
    C.register_cli(parser.add_subparsers())
    args = parser.parse_args(["codes", "--embeddings", str(tmp_path / "emb.npy"), "--train-mask",
                              str(tmp_path / "mask.npy"), "--D", "8", "--bits", "3", "--out", str(tmp_path / "o")])
    assert args.func(args) == 0
    codes = np.load(tmp_path / "o" / "codes.npy")
    assert codes.shape == (300, 8) and codes.dtype == np.uint8 and codes.max() < 8
    diag = json.loads((tmp_path / "o" / "diagnostics.json").read_text())
    assert diag["n_items"] == 300 and diag["n_train"] == 250 and diag["M"] == 8
    assert math.isclose(sum(diag["usage"][0]), 300)
    assert "entropy per digit" in capsys.readouterr().out
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    args = parser.parse_args(["codes", "--embeddings", str(tmp_path / "obj.npy"), "--out", str(tmp_path / "o2")])
    with pytest.raises(DataError):
        args.func(args)

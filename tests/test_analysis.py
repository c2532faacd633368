"""Tests of the analyses (geometry, bias, projection, figures, the analyze pipeline and CLI).

Analytic values, hand computations and invariants; UMAP runs once, on 60 points.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vqrec_core import bias, geometry
from vqrec_core.errors import DataError


def _sphere(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------------ uniformity


@pytest.mark.parametrize("d", [3, 16, 128])
def test_uniformity_of_sphere_matches_numerical_integral(d):
    ref = geometry.uniformity_sphere_expected(d)
    exact = geometry.uniformity(_sphere(2000, d, seed=d))
    sampled = geometry.uniformity(_sphere(5000, d, seed=d), max_exact=100, n_pairs=200_000)
    assert exact == pytest.approx(ref, abs=0.02)
    assert sampled == pytest.approx(ref, abs=0.02)


def test_sphere_reference_closed_forms():
    # d=3: the cosine is uniform on [-1, 1], so E[exp(-4 + 4c)] = (1 - e^-8) / 8.
    assert geometry.uniformity_sphere_expected(3) == pytest.approx(np.log((1 - np.exp(-8)) / 8), abs=1e-9)
    # d=2: the angle is uniform on [0, pi], E[exp(-4 + 4 cos a)] = e^-4 I0(4).
    from scipy.special import i0

    assert geometry.uniformity_sphere_expected(2) == pytest.approx(np.log(np.exp(-4) * i0(4.0)), abs=1e-6)


def test_uniformity_identical_vectors_is_zero_and_hand_pairs():
    assert geometry.uniformity(np.tile([[3.0, 4.0]], (7, 1))) == pytest.approx(0.0, abs=1e-12)
    # three points: two identical, one orthogonal -> pairs with ||.||^2 = 0, 2, 2
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    assert geometry.uniformity(x) == pytest.approx(np.log((1 + 2 * np.exp(-4)) / 3))
    # more spread = lower
    assert geometry.uniformity(_sphere(500, 8)) < geometry.uniformity(_sphere(500, 8) + 2.0)


def test_unit_normalise_rejects_zero_rows():
    with pytest.raises(DataError, match="rows \\[1\\]"):
        geometry.uniformity(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))


# ------------------------------------------------------------------------------------------ nearest neighbours, codes


def test_nearest_neighbour_stats_hand_example():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    s = geometry.nearest_neighbour_stats(x, threshold=0.9)
    assert s.nn_cos == pytest.approx([1.0, 1.0, 0.8, 0.8], abs=1e-6)
    assert s.share_identical == 0.5 and s.share_above == 0.5
    assert s.mean_nn_cos == pytest.approx(0.9, abs=1e-6)


def test_code_item_vectors_are_mean_of_digit_rows():
    D, M, h = 3, 4, 5
    table = np.random.default_rng(0).standard_normal((D * (M + 1), h)).astype(np.float32)
    codes = np.array([[0, 3, 1], [2, 2, 2]], dtype=np.uint8)
    v = geometry.code_item_vectors(codes, table, M)
    hand = (table[0 + 1] + table[3 + 1 + 5] + table[1 + 1 + 10]) / 3
    assert v[0] == pytest.approx(hand, abs=1e-6)
    assert v[1] == pytest.approx((table[3] + table[8] + table[13]) / 3, abs=1e-6)
    with pytest.raises(DataError, match="do not belong together"):
        geometry.code_item_vectors(codes, table[:-1], M)
    # items with the same code collapse to one point; the one-hot view agrees with the flat ids
    oh = geometry.code_onehot(codes, M).toarray()
    assert oh.sum(axis=1).tolist() == [3, 3] and oh[0, [1, 9, 12]].tolist() == [1, 1, 1]


# ------------------------------------------------------------------------------------------------------ domain gap


def test_domain_gap_separable_domains_near_one():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 20)) + np.r_[4.0, np.zeros(19)]
    b = rng.standard_normal((300, 20)) - np.r_[4.0, np.zeros(19)]
    g = geometry.domain_gap(np.vstack([a, b]), np.array(["A"] * 300 + ["B"] * 300))
    assert g.balanced_accuracy > 0.97 and g.chance == 0.5
    assert g.centroids.loc[0, "centroid_cos"] < 0  # centroids on opposite sides


def test_domain_gap_same_distribution_near_chance():
    x = np.random.default_rng(1).standard_normal((800, 10))
    g = geometry.domain_gap(x, np.array(["A", "B"] * 400))
    assert abs(g.balanced_accuracy - 0.5) < 0.07
    assert g.centroids.loc[0, "centroid_euclid"] < 0.15


def test_domain_gap_sparse_codes_and_three_domains():
    rng = np.random.default_rng(2)
    M = 8
    codes = np.vstack([rng.integers(0, 4, (200, 4)), rng.integers(4, 8, (200, 4)), rng.integers(0, 8, (200, 4))])
    labels = np.repeat(["a", "b", "c"], 200)
    g = geometry.domain_gap(geometry.code_onehot(codes.astype(np.uint8), M), labels)
    assert g.chance == pytest.approx(1 / 3) and len(g.centroids) == 3
    assert g.balanced_accuracy > 0.8  # a and b use disjoint codewords; c overlaps both
    with pytest.raises(DataError, match="at least two domains"):
        geometry.domain_gap(np.eye(6), np.array(["x"] * 6))


def test_centroid_distances_hand():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    c = geometry.centroid_distances(x, np.array(["p", "p", "q", "q"]))
    assert c.loc[0, "centroid_cos"] == pytest.approx(0.0, abs=1e-7)
    assert c.loc[0, "centroid_euclid"] == pytest.approx(np.sqrt(2))


# ------------------------------------------------------------------------------------------------------------ bias


def _toy_catalog():
    emb = _sphere(60, 8, seed=3).astype(np.float32)
    last = np.array([0, 5, 7, 11])
    return emb, last


def test_text_knn_is_fully_biased_and_matches_hand_cosines():
    emb, last = _toy_catalog()
    knn = bias.text_knn_topk(emb, last, K=10)
    t = bias.text_bias(knn, last, emb, knn_topk=knn, target=np.array([1, 2, 3, 4]))
    assert (t["overlap"] == 1.0).all()
    # hand computation for user 0
    cos0 = [float(emb[i] @ emb[0]) for i in knn[0]]
    assert t.loc[0, "text_cos"] == pytest.approx(np.mean(cos0), abs=1e-6)
    assert t.loc[2, "target_cos"] == pytest.approx(float(emb[3] @ emb[7]), abs=1e-6)
    assert 0 not in knn[0] and np.all(np.diff(emb[knn[0]] @ emb[0]) <= 1e-7)  # sorted, query excluded
    # Text-kNN maximises the mean cosine over any other list of K items
    rand = np.random.default_rng(0).integers(0, 60, (4, 10))
    r = bias.text_bias(rand, last, emb, knn_topk=knn)
    assert (r["text_cos"] <= t["text_cos"] + 1e-6).all() and (r["overlap"] < 1).all()


def test_overlap_hand_and_summary_quartiles():
    emb, last = _toy_catalog()
    knn = np.array([[1, 2, 3, 4]] * 4)
    top = np.array([[1, 2, 9, 8], [4, 3, 2, 1], [10, 11, 12, 13], [1, 20, 21, 22]])
    t = bias.text_bias(top, last, emb, knn_topk=knn)
    assert t["overlap"].tolist() == [0.5, 1.0, 0.0, 0.25]
    s = bias.bias_summary({"m": t}).iloc[0]
    assert s["overlap_mean"] == pytest.approx(0.4375)
    assert s["overlap_median"] == pytest.approx(0.375) and s["overlap_q25"] == pytest.approx(0.1875)
    with pytest.raises(DataError, match="outside the catalog"):
        bias.text_bias(top + 100, last, emb)


def test_compare_bias_paired_deltas():
    before = pd.DataFrame({"user": ["u1", "u2", "u3"], "text_cos": [0.9, 0.8, 0.7], "overlap": [1.0, 0.5, 0.2]})
    after = pd.DataFrame({"user": ["u3", "u2", "u1"], "text_cos": [0.6, 0.8, 0.5], "overlap": [0.1, 0.5, 0.4]})
    j, s = bias.compare_bias(before, after)
    row = j.set_index("user").loc["u1"]
    assert row["delta_text_cos"] == pytest.approx(-0.4) and row["delta_overlap"] == pytest.approx(-0.6)
    assert s["delta_text_cos_mean"] == pytest.approx((-0.4 + 0 - 0.1) / 3)
    assert s["share_overlap_down"] == pytest.approx(2 / 3)


def test_side_by_side_and_adaptation_diff():
    emb, _ = _toy_catalog()
    titles = np.array([f"item {i}" for i in range(60)], dtype=object)
    lists = {"Text-kNN": (np.array([1, 2, 3]), None), "VQ-Rec": (np.array([3, 9, 4]), np.array([2.0, 1.5, 1.0]))}
    long = bias.side_by_side(lists, last_item=0, text_emb=emb, titles=titles, target=9)
    assert len(long) == 6 and long["is_target"].sum() == 1
    vq = long[long.model == "VQ-Rec"].set_index("rank")
    assert vq.loc[2, "title"] == "item 9" and vq.loc[1, "score"] == 2.0
    assert vq.loc[3, "text_cos"] == pytest.approx(float(emb[4] @ emb[0]), abs=1e-6)
    wide = bias.side_by_side_wide(long)
    assert list(wide.columns) == ["Text-kNN", "VQ-Rec"] and wide.loc[2, "VQ-Rec"].startswith("✔ item 9")
    entered, left = bias.adaptation_diff(np.array([1, 2, 3]), np.array([3, 9, 4]), 0, emb, titles, target=9)
    assert entered["item"].tolist() == [9, 4] and entered["rank"].tolist() == [2, 3]
    assert left["item"].tolist() == [1, 2] and bool(entered["is_target"].iloc[0])


def test_textknn_model_through_evaluate_topk_has_overlap_one():
    import torch

    from vqrec_core.data import SeqSamples
    from vqrec_core.models import Popularity, TextKNN

    torch.set_num_threads(1)
    emb, _ = _toy_catalog()
    rng = np.random.default_rng(4)
    seq = np.zeros((6, 5), dtype=np.int64)
    length = np.array([1, 2, 3, 5, 4, 2])
    for u, n in enumerate(length):
        seq[u, :n] = rng.integers(1, 61, n)
    samples = SeqSamples(user=np.array([f"u{i}" for i in range(6)], dtype=object), seq=seq, length=length,
                         target=rng.integers(0, 60, 6))
    knn_items, _, last = bias.model_topk(TextKNN(emb), samples, K=10)
    assert last.tolist() == [seq[u, n - 1] - 1 for u, n in enumerate(length)]
    # same sets as the numpy reference (continuous random vectors: no ties)
    ref = bias.text_knn_topk(emb, last, K=10)
    assert all(set(a) == set(b) for a, b in zip(knn_items, ref, strict=True))
    t = bias.text_bias(knn_items, last, emb, knn_topk=knn_items, users=samples.user)
    assert (t["overlap"] == 1.0).all() and t["user"].tolist() == list(samples.user)
    pop_items, _, _ = bias.model_topk(Popularity(np.arange(60.0)), samples, K=10)
    assert (pop_items == np.arange(59, 49, -1)).all()
    p = bias.text_bias(pop_items, last, emb, knn_topk=knn_items)
    assert (p["overlap"] < 1.0).all() and p["text_cos"].mean() < t["text_cos"].mean()


def test_code_diagnostics_of_a_quantizer_forced_to_one_codeword_has_zero_entropy():
    from vqrec_core.analysis import code_tables
    from vqrec_core.codes import CodeConfig, build_codes

    x = np.tile(np.random.default_rng(0).standard_normal((1, 16)).astype(np.float32), (300, 1))  # one point
    res = build_codes(x, None, CodeConfig(D=4, b=2))
    row, per_digit = code_tables("d", res)
    assert (per_digit["entropy_bits"] == 0).all() and (per_digit["used_codewords"] == 1).all()
    assert row["collision_share"] == 1.0 and row["n_distinct_codes"] == 1


# ---------------------------------------------------------------------------------------------------- projection


def test_exact_knn_matches_brute_force_and_umap_map_is_cached(tmp_path, monkeypatch):
    from vqrec_core import projection

    x = _sphere(60, 8, seed=5).astype(np.float32)
    idx, dist = projection.exact_knn(x, 5)
    brute = np.argsort(-(x @ x.T), axis=1, kind="stable")[:, :5]
    assert (idx[:, 0] == np.arange(60)).all() and (idx == brute).all()
    assert dist[:, 1:] == pytest.approx(1 - np.take_along_axis(x @ x.T, brute, 1)[:, 1:], abs=1e-5)
    assert projection.subsample_indices(100, 30, seed=1).tolist() == projection.subsample_indices(100, 30, 1).tolist()
    assert len(np.unique(projection.subsample_indices(100, 30, 1))) == 30

    cfg = projection.UmapConfig(n_neighbors=5, n_epochs=30, cap=50)
    m1 = projection.umap_map(x, cfg, cache_dir=tmp_path)
    assert len(m1) == 50 and np.isfinite(m1[["x", "y"]].to_numpy()).all() and len(list(tmp_path.glob("umap_*")))

    def boom(*a, **k):
        raise AssertionError("UMAP recomputed although cached")

    monkeypatch.setattr(projection, "umap_embed", boom)
    m2 = projection.umap_map(x, cfg, cache_dir=tmp_path)
    assert m2.equals(m1)


# ------------------------------------------------------------------------------------------ pipeline, checkpoints, CLI


def _write_domain(folder, words, n_items=150, n_users=120, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    titles = [f"{rng.choice(words)} {rng.choice(words)} {rng.choice(words)} no {i}" for i in range(n_items)]
    pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "title": titles}).to_csv(folder / "items.csv",
                                                                                       index=False)
    rows = []
    for u in range(n_users):
        for t, it in enumerate(rng.choice(n_items, size=int(rng.integers(3, 8)), replace=False)):
            rows.append((f"u{u}", f"i{it}", t))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(folder / "interactions.csv", index=False)
    return folder / "items.csv", folder / "interactions.csv"


@pytest.fixture
def two_domains(tmp_path):
    a = _write_domain(tmp_path / "lips", ["lipstick", "gloss", "matte", "shade", "cream", "serum"], seed=0)
    b = _write_domain(tmp_path / "toys", ["truck", "puzzle", "lego", "doll", "robot", "train"], seed=1)
    return [a, b]


def test_run_analysis_with_checkpoints_end_to_end(two_domains, tmp_path):
    import torch

    from vqrec_core import analysis
    from vqrec_core.checkpoint import save_checkpoint
    from vqrec_core.codes import flat_code_ids
    from vqrec_core.models import VQRec, VQRecConfig

    doms = analysis.load_domains([tuple(map(str, p)) for p in two_domains], encoder="hash:32")
    lips = doms[0]
    codes = np.random.default_rng(0).integers(0, 4, (lips.domain.n_items, 4)).astype(np.uint8)
    for name, seed in (("vqrec_pretrained", 0), ("vqrec_adapted", 1)):
        torch.manual_seed(seed)
        m = VQRec(VQRecConfig(D=4, M=4, h=16, n_layers=1), flat_code_ids(codes, 4))
        save_checkpoint(m, tmp_path / "ckpt" / name, meta={"domain": "lips"})
    notes = []
    analysis.attach_checkpoints(doms, tmp_path / "ckpt", notes)
    assert sorted(lips.models) == ["vqrec_adapted", "vqrec_pretrained"] and not doms[1].models and not notes

    cfg = analysis.AnalyzeConfig(D=4, b=2, umap=False, max_users=80)
    res = analysis.run_analysis(doms, cfg)
    t = res.tables
    assert {"codes", "uniformity", "domain_gap", "bias_summary", "bias_before_after"} <= set(t)
    u = t["uniformity"]
    assert set(u.loc[u.domain == "lips", "space"]) == {"text", "opq_recon", "code_fresh", "model:vqrec_pretrained",
                                                       "model:vqrec_adapted"}
    gap = t["domain_gap"].set_index("space")
    assert gap.loc["text", "balanced_accuracy"] > 0.9 and gap.loc["text", "nn10_same_domain"] > 0.9  # disjoint words
    s = t["bias_summary"].set_index(["domain", "model"])
    assert s.loc[("lips", "Text-kNN"), "overlap_mean"] == 1.0 and s.loc[("lips", "Text-kNN"), "n_users"] == 80
    assert ("lips", "vqrec_adapted") in s.index and ("toys", "vqrec_adapted") not in s.index
    ba = t["bias_before_after"].iloc[0]
    assert ba["before"] == "vqrec_pretrained" and ba["after"] == "vqrec_adapted" and ba["n_users"] == 80
    ex = t["example_lists_lips"]
    assert set(ex["model"]) == {"Text-kNN", "Popularity", "vqrec_pretrained", "vqrec_adapted"}
    assert len(ex) == 4 * cfg.K and "example_entered_lips" in t

    written = analysis.write_outputs(res, tmp_path / "out")
    html = (tmp_path / "out" / "bias_lips.html").read_text()
    assert "src='plotly.min.js'" in html and "cdn" not in html.lower()
    assert (tmp_path / "out" / "plotly.min.js").stat().st_size > 1_000_000
    assert pd.read_csv(tmp_path / "out" / "domain_gap.csv").shape[0] == 4 and len(written) > 10
    from vqrec_core.errors import ConfigError

    with pytest.raises(ConfigError, match="do not name two models of one domain"):
        analysis.run_analysis(doms, analysis.AnalyzeConfig(compare=[("vqrec_pretrained", "nope")]))
    with pytest.raises(DataError, match="not among the evaluated users"):
        analysis.run_analysis(doms[:1], analysis.AnalyzeConfig(D=4, b=2, umap=False, user="nobody"))


def test_analyze_cli_runs_and_reports_bad_input(two_domains, tmp_path, capsys):
    from vqrec_core.__main__ import main

    (a_items, a_inter), (b_items, b_inter) = two_domains
    rc = main(["analyze", "--domain", str(a_items), str(a_inter), "--domain", str(b_items), str(b_inter), "--encoder",
               "hash:32", "--D", "4", "--b", "2", "--no-umap", "--out", str(tmp_path / "o"), "--no-cache", "--quiet"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Domain gap" in out.out and "Text-kNN" in out.out and (tmp_path / "o" / "uniformity.csv").exists()
    rc = main(["analyze", "--domain", str(a_items), str(a_inter), "--encoder", "hash:32", "--checkpoints",
               str(tmp_path / "none"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err and "Traceback" not in err
    assert main(["analyze", "--K", "0", "--quiet"]) == 2 and "--K must be at least 1" in capsys.readouterr().err


def test_neighbour_domain_purity_separable_mixed_and_code_hand_case():
    rng = np.random.default_rng(0)
    sep = np.vstack([rng.standard_normal((200, 10)) + 3, rng.standard_normal((200, 10)) - 3])
    lab = np.array(["a"] * 200 + ["b"] * 200)
    p = geometry.neighbour_domain_purity(sep, lab)
    assert p["purity"] == 1.0 and p["chance"] == pytest.approx(0.5)
    mixed = geometry.neighbour_domain_purity(rng.standard_normal((600, 10)), np.array(["a", "b"] * 300))
    assert abs(mixed["purity"] - 0.5) < 0.05
    # codes: domain a uses codewords {0,1}, b uses {2,3} on every digit -> neighbours (shared digits) never cross
    codes = np.vstack([rng.integers(0, 2, (50, 6)), rng.integers(2, 4, (50, 6))]).astype(np.uint8)
    q = geometry.neighbour_domain_purity(geometry.code_onehot(codes, 4), np.repeat(["a", "b"], 50), k=5)
    assert q["purity"] == 1.0

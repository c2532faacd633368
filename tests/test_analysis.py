"""Tests of vqrec_core.analysis, bias and projection: analytic values, invariants and hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vqrec_core import analysis, bias
from vqrec_core.errors import DataError


def _sphere(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------------------ uniformity


@pytest.mark.parametrize("d", [3, 16, 128])
def test_uniformity_of_sphere_matches_numerical_integral(d):
    ref = analysis.uniformity_sphere_expected(d)
    exact = analysis.uniformity(_sphere(2000, d, seed=d))
    sampled = analysis.uniformity(_sphere(6000, d, seed=d), max_exact=100, n_pairs=400_000)
    assert exact == pytest.approx(ref, abs=0.02)
    assert sampled == pytest.approx(ref, abs=0.02)


def test_sphere_reference_closed_forms():
    # d=3: the cosine is uniform on [-1, 1], so E[exp(-4 + 4c)] = (1 - e^-8) / 8.
    assert analysis.uniformity_sphere_expected(3) == pytest.approx(np.log((1 - np.exp(-8)) / 8), abs=1e-9)
    # d=2: the angle is uniform on [0, pi], E[exp(-4 + 4 cos a)] = e^-4 I0(4).
    from scipy.special import i0

    assert analysis.uniformity_sphere_expected(2) == pytest.approx(np.log(np.exp(-4) * i0(4.0)), abs=1e-6)


def test_uniformity_identical_vectors_is_zero_and_hand_pairs():
    assert analysis.uniformity(np.tile([[3.0, 4.0]], (7, 1))) == pytest.approx(0.0, abs=1e-12)
    # three points: two identical, one orthogonal -> pairs with ||.||^2 = 0, 2, 2
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    assert analysis.uniformity(x) == pytest.approx(np.log((1 + 2 * np.exp(-4)) / 3))
    # more spread = lower
    assert analysis.uniformity(_sphere(500, 8)) < analysis.uniformity(_sphere(500, 8) + 2.0)


def test_unit_normalise_rejects_zero_rows():
    with pytest.raises(DataError, match="rows \\[1\\]"):
        analysis.uniformity(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]))


# ------------------------------------------------------------------------------------------ nearest neighbours, codes


def test_nearest_neighbour_stats_hand_example():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    s = analysis.nearest_neighbour_stats(x, threshold=0.9)
    assert s.nn_cos == pytest.approx([1.0, 1.0, 0.8, 0.8], abs=1e-6)
    assert s.share_identical == 0.5 and s.share_above == 0.5
    assert s.mean_nn_cos == pytest.approx(0.9, abs=1e-6)


def test_code_item_vectors_are_mean_of_digit_rows():
    D, M, h = 3, 4, 5
    table = np.random.default_rng(0).standard_normal((D * (M + 1), h)).astype(np.float32)
    codes = np.array([[0, 3, 1], [2, 2, 2]], dtype=np.uint8)
    v = analysis.code_item_vectors(codes, table, M)
    hand = (table[0 + 1] + table[3 + 1 + 5] + table[1 + 1 + 10]) / 3
    assert v[0] == pytest.approx(hand, abs=1e-6)
    assert v[1] == pytest.approx((table[3] + table[8] + table[13]) / 3, abs=1e-6)
    with pytest.raises(DataError, match="do not belong together"):
        analysis.code_item_vectors(codes, table[:-1], M)
    # items with the same code collapse to one point; the one-hot view agrees with the flat ids
    oh = analysis.code_onehot(codes, M).toarray()
    assert oh.sum(axis=1).tolist() == [3, 3] and oh[0, [1, 9, 12]].tolist() == [1, 1, 1]


# ------------------------------------------------------------------------------------------------------ domain gap


def test_domain_gap_separable_domains_near_one():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 20)) + np.r_[4.0, np.zeros(19)]
    b = rng.standard_normal((300, 20)) - np.r_[4.0, np.zeros(19)]
    g = analysis.domain_gap(np.vstack([a, b]), np.array(["A"] * 300 + ["B"] * 300))
    assert g.balanced_accuracy > 0.97 and g.chance == 0.5
    assert g.centroids.loc[0, "centroid_cos"] < 0  # centroids on opposite sides


def test_domain_gap_same_distribution_near_chance():
    x = np.random.default_rng(1).standard_normal((800, 10))
    g = analysis.domain_gap(x, np.array(["A", "B"] * 400))
    assert abs(g.balanced_accuracy - 0.5) < 0.07
    assert g.centroids.loc[0, "centroid_euclid"] < 0.15


def test_domain_gap_sparse_codes_and_three_domains():
    rng = np.random.default_rng(2)
    M = 8
    codes = np.vstack([rng.integers(0, 4, (200, 4)), rng.integers(4, 8, (200, 4)), rng.integers(0, 8, (200, 4))])
    labels = np.repeat(["a", "b", "c"], 200)
    g = analysis.domain_gap(analysis.code_onehot(codes.astype(np.uint8), M), labels)
    assert g.chance == pytest.approx(1 / 3) and len(g.centroids) == 3
    assert g.balanced_accuracy > 0.8  # a and b use disjoint codewords; c overlaps both
    with pytest.raises(DataError, match="at least two domains"):
        analysis.domain_gap(np.eye(6), np.array(["x"] * 6))


def test_centroid_distances_hand():
    x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
    c = analysis.centroid_distances(x, np.array(["p", "p", "q", "q"]))
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
    assert all(set(a) == set(b) for a, b in zip(knn_items, ref))
    t = bias.text_bias(knn_items, last, emb, knn_topk=knn_items, users=samples.user)
    assert (t["overlap"] == 1.0).all() and t["user"].tolist() == list(samples.user)
    pop_items, _, _ = bias.model_topk(Popularity(np.arange(60.0)), samples, K=10)
    assert (pop_items == np.arange(59, 49, -1)).all()
    p = bias.text_bias(pop_items, last, emb, knn_topk=knn_items)
    assert (p["overlap"] < 1.0).all() and p["text_cos"].mean() < t["text_cos"].mean()

"""Full-ranking metrics against hand computations, batched vs brute force, history masking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vqrec_core.evaluate import count_higher, evaluate, metrics_from_ranks, target_ranks, topk


class FixedScores(torch.nn.Module):
    """Scores looked up from a fixed [n_users, n_items] matrix; the user is encoded in seq column 0's value."""

    def __init__(self, scores: np.ndarray):
        super().__init__()
        self.scores = torch.as_tensor(scores, dtype=torch.float32)
        self.calls: list[int] = []

    @property
    def n_items(self) -> int:
        return self.scores.shape[1]

    def score_batch(self, seq, length):
        self.calls.append(len(seq))
        users = seq[:, -1]  # the last column holds the user row (see _samples)
        return self.scores[users]


def _samples(hist: list[list[int]], target: list[int]):
    """seq = history (item index + 1) left-aligned, last column = user row (for FixedScores)."""
    L = max(len(h) for h in hist) + 1
    seq = np.zeros((len(hist), L), dtype=np.int64)
    for u, h in enumerate(hist):
        seq[u, : len(h)] = np.asarray(h) + 1
        seq[u, -1] = u
    from types import SimpleNamespace

    return SimpleNamespace(seq=seq, length=np.array([len(h) for h in hist]), target=np.array(target))


def test_metrics_match_hand_computation():
    # ranks 0, 3, 12, 60 -> recall@10 = 2/4; ndcg@10 = (1 + 1/log2(5)) / 4; @50 adds rank 12.
    m = metrics_from_ranks(np.array([0, 3, 12, 60]), ks=(10, 50))
    assert m["recall@10"] == pytest.approx(0.5)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1.0 / math.log2(5)) / 4)
    assert m["recall@50"] == pytest.approx(0.75)
    assert m["ndcg@50"] == pytest.approx((1.0 + 1.0 / math.log2(5) + 1.0 / math.log2(14)) / 4)


def test_ranks_from_scores_recbole_style():
    # 3 users x 5 items; target ranks by hand: user0 target 2 (score .9 is best) -> 0; user1 target 0 with two
    # higher items -> 2; user2 target 4 tied with item 1 (ties count in the target's favour) and one higher -> 1.
    scores = np.array([[0.1, 0.2, 0.9, 0.3, 0.0],
                       [0.5, 0.7, 0.1, 0.6, 0.2],
                       [0.1, 0.4, 0.9, 0.0, 0.4]])
    s = _samples([[0], [1], [3]], [2, 0, 4])
    ranks = target_ranks(FixedScores(scores), s.seq, s.length, s.target)
    assert ranks.tolist() == [0, 2, 1]
    m = evaluate(FixedScores(scores), s, ks=(1, 2))
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@2"] == pytest.approx(2 / 3)
    assert m["ndcg@2"] == pytest.approx((1.0 + 1.0 / math.log2(3)) / 3)


def test_batched_equals_brute_force_and_bounds_chunk():
    rng = np.random.default_rng(0)
    n_users, n_items = 37, 23
    scores = rng.normal(size=(n_users, n_items))
    hist = [list(rng.choice(n_items, size=rng.integers(1, 5), replace=False)) for _ in range(n_users)]
    s = _samples(hist, list(rng.integers(0, n_items, size=n_users)))
    brute = np.array([(scores[u] > scores[u, s.target[u]]).sum() for u in range(n_users)])
    model = FixedScores(scores)
    ranks = target_ranks(model, s.seq, s.length, s.target, chunk=5 * n_items)
    assert ranks.tolist() == brute.tolist()
    assert max(model.calls) * n_items <= 5 * n_items and sum(model.calls) == n_users
    idx, vals = topk(FixedScores(scores), s.seq, s.length, k=4, chunk=3 * n_items)
    assert idx.tolist() == np.argsort(-scores, axis=1, kind="stable")[:, :4].tolist()
    assert np.allclose(vals, np.sort(scores, axis=1)[:, ::-1][:, :4], atol=1e-6)


def test_mask_history_changes_only_history_items():
    # user 0 history = items 2, 0; item 2 has the best score and is masked -> target 3 moves from rank 1 to 0.
    scores = np.array([[0.5, 0.1, 0.9, 0.8, 0.2]])
    s = _samples([[2, 0]], [3])
    assert target_ranks(FixedScores(scores), s.seq, s.length, s.target).tolist() == [1]
    assert target_ranks(FixedScores(scores), s.seq, s.length, s.target, mask_history=True).tolist() == [0]
    idx, vals = topk(FixedScores(scores), s.seq, s.length, k=5, mask_history=True)
    assert idx[0, :3].tolist() == [3, 4, 1]
    assert np.isinf(vals[0, 3:]).all()  # the two history items fall to the end with -inf
    # a repeated target inside the history is masked too: it can no longer be hit
    s2 = _samples([[2, 0]], [2])
    assert target_ranks(FixedScores(scores), s2.seq, s2.length, s2.target, mask_history=True)[0] >= 3


def test_max_users_subsample_is_fixed_and_bounded():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(50, 8))
    s = _samples([[0]] * 50, list(rng.integers(0, 8, size=50)))
    a = evaluate(FixedScores(scores), s, ks=(3,), max_users=20, seed=5)
    b = evaluate(FixedScores(scores), s, ks=(3,), max_users=20, seed=5)
    assert a == b and a["n_users"] == 20


def test_fast_rank_count_equals_bool_count_with_ties_and_infinities():
    # exact ties with the target, -inf (masked) entries, a masked (-inf) target, +inf and NaN scores
    inf, nan = float("inf"), float("nan")
    scores = torch.tensor([[0.5, 0.5, 0.5, 0.2, 0.9],  # target 0.5 tied twice, one higher -> 1
                           [-inf, 0.3, -inf, 0.3, 0.1],  # target 0.3 tied, masked items -> 0
                           [-inf, -inf, 0.0, -1.0, inf],  # target -inf: every non-masked item is higher -> 3
                           [0.1, nan, 0.7, 0.1, -inf],  # NaN never counts as higher -> 1
                           [1.0, 1.0, 1.0, 1.0, 1.0]])  # all tied -> 0
    t = torch.tensor([[0.5], [0.3], [-inf], [0.1], [1.0]])
    expected = (scores > t).sum(dim=1)
    got = count_higher(scores.clone(), t)
    assert got.dtype == torch.long and got.tolist() == expected.tolist() == [1, 0, 3, 1, 0]
    rng = np.random.default_rng(3)  # many exact ties: scores on a coarse grid
    grid = torch.as_tensor(rng.integers(0, 4, size=(64, 300)).astype(np.float32) / 4)
    tg = grid.gather(1, torch.as_tensor(rng.integers(0, 300, size=(64, 1))))
    assert count_higher(grid.clone(), tg).tolist() == (grid > tg).sum(dim=1).tolist()


def test_target_ranks_with_ties_and_masked_history_equal_brute_force():
    rng = np.random.default_rng(4)
    n_users, n_items = 41, 17
    scores = rng.integers(0, 3, size=(n_users, n_items)).astype(np.float32)  # 3 levels: ties everywhere
    hist = [list(rng.choice(n_items, size=rng.integers(1, 6), replace=False)) for _ in range(n_users)]
    # every 4th target repeats a history item, so the masked target itself is -inf
    target = [h[0] if u % 4 == 0 else int(rng.integers(n_items)) for u, h in enumerate(hist)]
    s = _samples(hist, target)
    for mask in (False, True):
        brute = []
        for u in range(n_users):
            row = scores[u].astype(np.float64).copy()
            if mask:
                row[hist[u]] = -np.inf
            brute.append(int((row > row[target[u]]).sum()))
        got = target_ranks(FixedScores(scores), s.seq, s.length, s.target, chunk=4 * n_items, mask_history=mask)
        assert got.tolist() == brute
    # a masked target ranks behind every unmasked item
    masked = [u for u in range(n_users) if u % 4 == 0]
    got = target_ranks(FixedScores(scores), s.seq, s.length, s.target, mask_history=True)
    assert all(got[u] == n_items - len(hist[u]) for u in masked)


@pytest.mark.parametrize("kind", ["vqrec", "text_seq", "sasrec_id"])
def test_fast_scoring_path_ranks_match_reference_scores(kind):
    """target_ranks (scoring_fn: items prepared once, 1/tau folded into the query, in-place count) against the
    bool count on the reference ``score_batch`` scores; the two may differ only by float rounding of near-ties."""
    from tests.test_models import all_models, synthetic_split

    sp = synthetic_split()
    model = all_models()[kind].eval()
    seq, length, target = sp.test.seq, sp.test.length, sp.test.target
    with torch.no_grad():
        ref = model.score_batch(torch.as_tensor(seq), torch.as_tensor(length)).numpy()  # [U, n]
    t = ref[np.arange(len(target)), target][:, None]
    brute = (ref > t).sum(axis=1)
    near = (np.abs(ref - t) <= 1e-4 * np.maximum(1.0, np.abs(t))).sum(axis=1) - 1  # other items within rounding
    got = target_ranks(model, seq, length, target, chunk=7 * model.n_items)
    assert np.all(np.abs(got - brute) <= near)
    assert np.mean(got == brute) >= 0.9

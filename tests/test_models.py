"""Models: shapes, the shared scoring interface, causal encoding, VQ-Rec item vectors, non-neural baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from vqrec_core.codes import flat_code_ids
from vqrec_core.data import Domain, split_leave_one_out
from vqrec_core.models import (
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

SMALL = {"h": 16, "n_layers": 1, "n_heads": 2, "ffn": 32, "dropout": 0.1, "max_len": 10}


def synthetic_domain(n_items: int = 30, n_users: int = 60, seed: int = 0, name: str = "syn") -> Domain:
    """Users walk the catalog in steps of +1 (mod n) from a random start: a learnable sequential pattern."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, n = int(rng.integers(n_items)), int(rng.integers(4, 9))
        rows += [(f"u{u}", f"i{(start + t) % n_items}", t) for t in range(n)]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                          "text": [f"item number {i} {'red' if i % 2 else 'blue'}" for i in range(n_items)]})
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return Domain(name, items, inter)


def synthetic_split(n_items: int = 30, n_users: int = 60, seed: int = 0, max_len: int = 10):
    return split_leave_one_out(synthetic_domain(n_items, n_users, seed), max_len)


def synthetic_codes(n_items: int, D: int = 4, M: int = 8, seed: int = 0) -> np.ndarray:
    return flat_code_ids(np.random.default_rng(seed).integers(0, M, size=(n_items, D)).astype(np.uint8), M)


def synthetic_text(n_items: int, d: int = 12, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n_items, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def all_models(n_items: int = 30):
    torch.manual_seed(0)
    return {
        "vqrec": VQRec(VQRecConfig(D=4, M=8, **SMALL), synthetic_codes(n_items)),
        "text_seq": TextSeq(TextSeqConfig(text_dim=12, n_experts=2, **SMALL), synthetic_text(n_items)),
        "sasrec_id": SASRecID(SASRecIDConfig(**SMALL), n_items),
        "text_knn": TextKNN(synthetic_text(n_items)),
        "pop": Popularity(np.arange(n_items, dtype=float)),
    }


@pytest.mark.parametrize("name", ["vqrec", "text_seq", "sasrec_id", "text_knn", "pop"])
def test_score_batch_shape_and_finite(name):
    sp = synthetic_split()
    model = all_models()[name].eval()
    seq, length = torch.from_numpy(sp.test.seq[:7]), torch.from_numpy(sp.test.length[:7])
    with torch.no_grad():
        scores = model.score_batch(seq, length)
        fn_scores = model.scoring_fn()(seq, length)
    assert scores.shape == (7, 30)
    assert torch.allclose(scores, fn_scores)
    finite = torch.isfinite(scores)
    if name == "text_knn":  # exactly the query (last) item is excluded per row
        assert (~finite).sum(dim=1).tolist() == [1] * 7
    else:
        assert finite.all()


@pytest.mark.parametrize("name", ["vqrec", "text_seq", "sasrec_id"])
def test_encoder_ignores_padding_and_is_causal(name):
    model = all_models()[name].eval()
    seq = torch.tensor([[3, 5, 7, 0, 0, 0]])
    length = torch.tensor([3])
    with torch.no_grad():
        a = model.encode(seq, length)
        b = model.encode(torch.tensor([[3, 5, 7, 9, 11, 2]]), length)  # items after `length` must not matter
        c = model.encode(torch.tensor([[3, 5, 7]]), length)
        d = model.encode(torch.tensor([[3, 6, 7, 0, 0, 0]]), length)  # a real item changed: s must change
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(a, c, atol=1e-5)
    assert not torch.allclose(a, d, atol=1e-4)


def test_vqrec_item_vector_is_mean_of_code_embeddings_and_catalog_swaps():
    model = all_models()["vqrec"]
    w = model.code_embedding.weight.detach()
    expected = w[model.flat_codes].mean(dim=1)  # [n, h]
    assert torch.allclose(model.item_matrix().detach(), expected, atol=1e-6)
    assert model.code_embedding.weight.shape == (4 * 9, 16)
    model.set_catalog(synthetic_codes(5, seed=3))
    assert model.n_items == 5 and model.score_batch(torch.tensor([[1, 2]]), torch.tensor([2])).shape == (1, 5)
    with pytest.raises(ValueError):
        model.set_catalog(np.zeros((5, 4), dtype=np.int64))  # 0 is padding, never a code


def test_init_is_normal_002():
    model = SASRecID(SASRecIDConfig(h=64, ffn=128), 2000)
    std = float(model.item_embedding.weight.detach()[1:].std())
    assert 0.017 < std < 0.023
    assert float(model.encoder.input_norm.weight.detach().mean()) == 1.0


def test_text_knn_ranks_nearest_text_neighbour_of_last_item_first():
    text = synthetic_text(30, seed=4)
    model = TextKNN(text)
    seq, length = torch.tensor([[4, 9, 0]]), torch.tensor([2])  # last item index = 8
    scores = model.score_batch(seq, length)[0].numpy()
    sims = text @ text[8]
    sims[8] = -np.inf
    assert int(np.argmax(scores)) == int(np.argmax(sims))
    assert np.isneginf(scores[8])


def test_popularity_counts_training_part_only():
    user_items = {"a": np.array([0, 1, 2, 3]), "b": np.array([1, 1, 4]), "c": np.array([2, 3])}
    # a: training part 0, 1 ; b: 1 ; c (2 items, not evaluable): 2, 3
    assert popularity_counts(user_items, 5).tolist() == [1, 2, 1, 1, 0]
    scores = Popularity(popularity_counts(user_items, 5)).score_batch(torch.zeros(2, 3, dtype=torch.long),
                                                                      torch.ones(2, dtype=torch.long))
    assert scores.shape == (2, 5) and int(scores[0].argmax()) == 1

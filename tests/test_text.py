"""Text encoding: the test encoder, the on-disk cache, precomputed vectors, and the real MiniLM end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vqrec_core.data import load_domain
from vqrec_core.errors import ConfigError, DataError
from vqrec_core.text import HashEncoder, encode_texts, get_encoder, load_precomputed, prime_cache


def test_hash_encoder_is_deterministic_unit_norm_and_word_sensitive():
    enc = get_encoder("hash:32")
    a = enc.encode(["red lipstick", "red lipstick", "toy truck", ""])
    assert a.shape == (4, 32) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert np.array_equal(a[0], a[1])
    b = enc.encode(["red lipstick matte"])
    assert float(a[0] @ b[0]) > float(a[0] @ a[2])  # shared words -> closer


def test_cache_hit_skips_the_encoder(tmp_path):
    calls = []

    class Counting(HashEncoder):
        def encode(self, texts, batch_size=64, progress=None):
            calls.append(len(texts))
            return super().encode(texts, batch_size, progress)

    enc = Counting(16)
    texts = ["a b", "c d", "e"]
    first = encode_texts(enc, texts, cache_dir=tmp_path)
    seen = []
    second = encode_texts(enc, texts, cache_dir=tmp_path, progress=lambda f, m: seen.append((f, m)))
    assert calls == [3]  # second call read the cache
    assert np.array_equal(first, second)
    assert seen and seen[-1][0] == 1.0 and "cache" in seen[-1][1]
    encode_texts(enc, texts + ["new"], cache_dir=tmp_path)  # different texts -> a miss
    assert calls == [3, 4]
    # a corrupt cache file is recomputed, not trusted
    for f in tmp_path.glob("emb-*.npy"):
        f.write_bytes(b"garbage")
    again = encode_texts(enc, texts, cache_dir=tmp_path)
    assert np.array_equal(again, first) and len(calls) == 3


def test_prime_cache_makes_the_next_encode_a_hit(tmp_path):
    class Never(HashEncoder):
        def encode(self, *a, **k):
            raise AssertionError("should have been a cache hit")

    vecs = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    prime_cache("hash:8", ["x", "y"], vecs, tmp_path)
    out = encode_texts(Never(8), ["x", "y"], cache_dir=tmp_path)
    assert np.allclose(out, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))


def test_precomputed_vectors(tmp_path):
    v = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    np.save(tmp_path / "v.npy", v)
    out = load_precomputed(tmp_path / "v.npy", ["a", "b", "c"])
    assert np.allclose(out[1], v[1] / np.linalg.norm(v[1]))
    with pytest.raises(DataError, match="expected a numeric array"):
        load_precomputed(tmp_path / "v.npy", ["a", "b"])
    pd.DataFrame({"item_id": ["c", "a", "b"], "vec": [v[2], v[0], v[1]]}).to_parquet(tmp_path / "v.parquet")
    out2 = load_precomputed(tmp_path / "v.parquet", ["a", "b", "c"])
    assert np.allclose(out, out2)
    with pytest.raises(DataError, match="no vector for 1"):
        load_precomputed(tmp_path / "v.parquet", ["a", "b", "zz"])
    np.save(tmp_path / "o.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a plain numeric"):
        load_precomputed(tmp_path / "o.npy", ["a"])


def test_unknown_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="Unknown text encoder"):
        get_encoder("bert-on-the-internet")
    with pytest.raises(ConfigError, match="not a sentence-transformers model folder"):
        get_encoder(str(tmp_path))


@pytest.mark.slow
def test_real_minilm_end_to_end(sample_paths, tmp_path):
    """The bundled all-MiniLM-L6-v2 loads offline, gives 384-d unit vectors, and matches the shipped sample file."""
    dom = load_domain(*sample_paths["toys"])
    enc = get_encoder("minilm")
    texts = dom.titles()[:40]
    emb = encode_texts(enc, texts, cache_dir=tmp_path)
    assert emb.shape == (40, 384) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    shipped = np.load(sample_paths["toys"][0].parent / "minilm.npy")[:40]
    assert np.allclose(emb, shipped, atol=1e-4)  # the shipped vectors are what the model gives
    sims = emb @ emb.T
    # semantic sanity: a title is closer to itself than to the average other title
    assert np.all(np.diag(sims) > sims.mean(axis=1))

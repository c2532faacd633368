"""Text-encoding benchmark: ``vqrec_core.text.encode_texts`` (MiniLM) vs a plain ``SentenceTransformer.encode``.

Both encode the same titles with the same model object and batch size, alternating runs in one process. Rows:
  * ``encode``: a cold encode (no cache), ours (length-sorted chunks + progress) vs the plain call;
  * ``encode_cached``: our second call on the same texts with a cache folder (one hashed file read) vs the plain
    encode again -- what a user pays on the second visit of the same catalog.
Rates are items per second. ``encoder="hash"`` runs the same harness with the test hashing encoder (smoke tests).
"""

from __future__ import annotations

import tempfile

from .common import interleaved, median, peak_rss_mb, row, titles


def run(sizes=(1000,), repeats: int = 3, quick: bool = False, encoder: str = "minilm", batch_size: int = 64
        ) -> list[dict]:
    from vqrec_core.text import get_encoder

    enc = get_encoder(encoder)
    if encoder == "minilm":
        model = enc.model  # load once, outside the timings

        def plain(texts):
            return model.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                show_progress_bar=False)
    else:  # the hashing encoder has no library baseline; compare against its own encode (ratio ~1)
        def plain(texts):
            return enc.encode(texts, batch_size=batch_size)

    rows = []
    for n in sizes:
        rows += _one(enc, plain, int(n), repeats, encoder, batch_size)
    return rows


def _one(enc, plain, n: int, repeats: int, encoder: str, batch_size: int) -> list[dict]:
    from vqrec_core.text import encode_texts, prime_cache

    texts = titles(n, seed=n)
    emb = encode_texts(enc, texts, batch_size=batch_size)  # warm-up: lazy init, kernels; our peak memory
    rss = peak_rss_mb()
    ours, base = interleaved([lambda: encode_texts(enc, texts, batch_size=batch_size), lambda: plain(texts)],
                             repeats)
    o, b = median(ours), median(base)
    conf = f"{encoder} batch {batch_size}"
    rows = [row("encode", n, o, b, config=conf, ours_rate=round(n / o, 1), baseline_rate=round(n / b, 1),
                unit="items/s", peak_rss_mb=rss, repeats=repeats, note="cold: no cache")]
    with tempfile.TemporaryDirectory() as cache:
        prime_cache(enc.name, texts, emb, cache)  # exactly what a first encode_texts(cache_dir=...) leaves
        cached = interleaved([lambda: encode_texts(enc, texts, cache_dir=cache, batch_size=batch_size)],
                             max(3, repeats))[0]
    o2 = median(cached)
    rows.append(row("encode_cached", n, o2, b, config=conf, ours_rate=round(n / o2, 1),
                    baseline_rate=round(n / b, 1), unit="items/s", peak_rss_mb=rss, repeats=repeats,
                    note="second run: cache hit (hash + file read) vs the cold plain encode above"))
    return rows

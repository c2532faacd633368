"""Shared fixtures: tiny hand-made domains, the bundled sample data, one torch/faiss thread."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE = PROJECT / "sample_data"

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture
def tiny_domain_files(tmp_path: Path) -> tuple[Path, Path]:
    """Two users: u1 = a b c d (times 1..4), u2 = d c a (times 5..7); a 2-interaction user u3 = a b."""
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"],
                          "title": ["Red lipstick &amp; gloss", "Blue lipstick", "Toy truck", "Toy car"]})
    inter = pd.DataFrame({
        "user_id": ["u1"] * 4 + ["u2"] * 3 + ["u3"] * 2,
        "item_id": ["a", "b", "c", "d", "d", "c", "a", "a", "b"],
        "timestamp": [1, 2, 3, 4, 5, 6, 7, 1, 2],
    })
    ip, lp = tmp_path / "items.csv", tmp_path / "interactions.csv"
    items.to_csv(ip, index=False)
    inter.to_csv(lp, index=False)
    return ip, lp


@pytest.fixture(scope="session")
def sample_paths() -> dict[str, tuple[Path, Path]]:
    return {d: (SAMPLE / d / "items.csv", SAMPLE / d / "interactions.csv") for d in ("beauty", "toys")}

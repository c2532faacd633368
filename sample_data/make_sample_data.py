"""Regenerate sample_data/ from ../shared/datasets (Amazon 2014 Beauty and Toys & Games).

Selection (deterministic): keep each domain's 2,000 most-interacted items, 5-core filter, then a random 3,000 of
the remaining users (seed 0) with all their interactions on those items; items no kept user touched are dropped.
Writes <domain>/items.csv (item_id,title, titles exactly as upstream), <domain>/interactions.csv
(user_id,item_id,timestamp) and <domain>/minilm.npy, the all-MiniLM-L6-v2 vectors of the HTML-unescaped titles in
catalog order (float32 [n_items, 384]; shipped so the first start of the app does not wait for encoding).

    python sample_data/make_sample_data.py [--shared ../shared/datasets] [--no-embeddings]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SOURCES = {"beauty": "amazon2014-beauty", "toys": "amazon2014-toy"}
N_ITEMS, N_USERS, K, SEED = 2000, 3000, 5, 0


def make(shared: Path, name: str, folder: str, embeddings: bool) -> None:
    items = pd.read_csv(shared / folder / "items.csv.gz", dtype={"item_id": str, "title": str}, keep_default_na=False)
    inter = pd.read_csv(shared / folder / "interactions.csv.gz", dtype={"user_id": str, "item_id": str})
    top = inter["item_id"].value_counts().index[:N_ITEMS]
    x = inter[inter["item_id"].isin(top)]
    while True:  # K-core
        keep = (x.groupby("user_id")["item_id"].transform("size") >= K) & (
            x.groupby("item_id")["user_id"].transform("size") >= K)
        if keep.all():
            break
        x = x[keep]
    users = np.sort(x["user_id"].unique())
    chosen = np.random.default_rng(SEED).choice(users, size=min(N_USERS, len(users)), replace=False)
    x = x[x["user_id"].isin(set(chosen))]  # keeps upstream row order (chronological per user)
    items = items[items["item_id"].isin(set(x["item_id"]))].sort_values("item_id", key=lambda s: s.astype(int))
    out = HERE / name
    out.mkdir(exist_ok=True)
    items[["item_id", "title"]].to_csv(out / "items.csv", index=False)
    x[["user_id", "item_id", "timestamp"]].to_csv(out / "interactions.csv", index=False)
    print(f"{name}: {x['user_id'].nunique()} users, {len(items)} items, {len(x)} interactions")
    if embeddings:
        sys.path.insert(0, str(HERE.parent))
        from vqrec_core.data import load_domain
        from vqrec_core.fsutil import atomic_save_npy
        from vqrec_core.text import encode_texts, get_encoder

        dom = load_domain(out / "items.csv", out / "interactions.csv", name=name)
        emb = encode_texts(get_encoder("minilm"), dom.titles())
        atomic_save_npy(out / "minilm.npy", emb.astype(np.float32))
        print(f"{name}: wrote minilm.npy {emb.shape}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "datasets",
                    help="folder holding amazon2014-beauty/ and amazon2014-toy/")
    ap.add_argument("--no-embeddings", action="store_true", help="skip writing minilm.npy")
    a = ap.parse_args()
    for name, folder in SOURCES.items():
        make(a.shared, name, folder, not a.no_embeddings)


if __name__ == "__main__":
    main()

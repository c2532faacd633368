"""Top-K recommendations for one user of a domain, or for a typed sequence of item ids.

Reference: the scoring interface of models.py (full ranking over the catalog, as in evaluation). The history is the
user's whole log in chronological order (the last ``max_len`` items), i.e. the list continues after the test item.
History items are not removed unless ``exclude_history=True`` (the same default as evaluation).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .data import Domain, Split
from .errors import CheckpointError, DataError
from .evaluate import topk


def _max_len(model) -> int:
    cfg = getattr(model, "cfg", None)
    return int(getattr(cfg, "max_len", 50)) if cfg is not None else 50


def _catalog(split_or_domain) -> tuple[list[str], list[str]]:
    if isinstance(split_or_domain, Domain):
        return split_or_domain.items["item_id"].astype(str).tolist(), split_or_domain.items["text"].tolist()
    if isinstance(split_or_domain, Split):
        ids = [str(i) for i in range(split_or_domain.n_items)]
        return ids, [""] * split_or_domain.n_items
    raise DataError(f"recommend() needs a Domain or a Split, not {type(split_or_domain).__name__}.")


def user_history(split_or_domain, user: str) -> np.ndarray:
    """0-based item indices of ``user``'s whole log, oldest first."""
    user = str(user)
    if isinstance(split_or_domain, Split):
        if user not in split_or_domain.user_items:
            raise DataError(f"The user '{user}' is not in this domain's interaction log.")
        return np.asarray(split_or_domain.user_items[user], dtype=np.int64)
    dom: Domain = split_or_domain
    inter = dom.interactions
    rows = inter[inter["user_id"].astype(str) == user]
    if rows.empty:
        some = ", ".join(map(repr, inter["user_id"].astype(str).unique()[:3]))
        raise DataError(f"The user '{user}' is not in the interaction log of '{dom.name}' (users look like {some}).")
    order = np.lexsort((np.arange(len(rows)), rows["timestamp"].to_numpy()))
    return dom.item_index().reindex(rows["item_id"].to_numpy()[order]).to_numpy().astype(np.int64)


def recommend(model, split_or_domain, user: str | None = None, item_ids: Sequence[str] | None = None, k: int = 10,
              exclude_history: bool = False) -> pd.DataFrame:
    """DataFrame(rank, item_id, title, score) of the top ``k`` items after ``user``'s history or ``item_ids``."""
    ids, titles = _catalog(split_or_domain)
    if int(model.n_items) != len(ids):
        raise CheckpointError(f"The model ranks {model.n_items} items but this catalog has {len(ids)}; use the "
                              "checkpoint trained (or adapted) on this domain.")
    if (user is None) == (item_ids is None):
        raise DataError("Give either a user or a sequence of item ids, not both or neither.")
    if user is not None:
        hist = user_history(split_or_domain, user)
    else:
        pos = {iid: i for i, iid in enumerate(ids)}
        unknown = [str(i) for i in item_ids if str(i) not in pos]
        if unknown:
            raise DataError(f"Unknown item id(s) {', '.join(map(repr, unknown[:5]))}: they are not in the catalog.")
        if not item_ids:
            raise DataError("The item sequence is empty; give at least one item id.")
        hist = np.array([pos[str(i)] for i in item_ids], dtype=np.int64)
    hist = hist[-_max_len(model):]
    seq = torch.as_tensor(hist + 1).unsqueeze(0)  # [1, L]
    length = torch.tensor([len(hist)])  # [1]
    idx, vals = topk(model, seq, length, k=k, mask_history=exclude_history)
    return pd.DataFrame({"rank": np.arange(1, idx.shape[1] + 1), "item_id": [ids[i] for i in idx[0]],
                         "title": [titles[i] for i in idx[0]], "score": vals[0]})


# --------------------------------------------------------------------------------------------------------------------
# CLI


def register_cli(subparsers) -> argparse.ArgumentParser:
    from .cliargs import add_domain_args

    p = subparsers.add_parser(
        "recommend", help="print the top-K items for a user (or an item sequence) with a trained checkpoint",
        description="Load a checkpoint folder (config.json + model.safetensors, e.g. one written by the "
                    "experiment command) and print the top-K titles after a user's history or after a typed "
                    "sequence of item ids. The checkpoint must have been trained or adapted on this catalog.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_domain_args(p)
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="checkpoint folder")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="user id from the interaction log")
    who.add_argument("--sequence", nargs="+", metavar="ITEM_ID", help="item ids, oldest first")
    p.add_argument("--k", type=int, default=10, help="number of items to list")
    p.add_argument("--exclude-history", action="store_true", help="leave the history's items out of the list")
    p.set_defaults(func=_cli)
    return p


def _cli(args) -> int:
    from .checkpoint import load_checkpoint
    from .cliargs import domain_from_args

    if args.k < 1:
        raise DataError("--k must be at least 1.")
    domain = domain_from_args(args)
    model, meta = load_checkpoint(args.checkpoint)
    ids = meta.get("item_ids")
    if ids is not None and list(map(str, ids)) != domain.items["item_id"].astype(str).tolist():
        raise CheckpointError(f"The checkpoint '{args.checkpoint}' was trained on a different catalog "
                              f"({meta.get('target') or meta.get('source') or 'unknown domain'}, {len(ids)} items) "
                              f"than '{args.items}' ({domain.n_items} items).")
    df = recommend(model, domain, user=args.user, item_ids=args.sequence, k=args.k,
                   exclude_history=args.exclude_history)
    who = f"user {args.user}" if args.user else f"sequence {' '.join(args.sequence)}"
    print(f"Top {len(df)} for {who} ({getattr(model, 'kind', type(model).__name__)} model):")
    for r in df.itertuples(index=False):
        print(f"{r.rank:>3}. [{r.item_id}] {r.title}  (score {r.score:.3f})")
    return 0

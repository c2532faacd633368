"""Text-similarity bias of recommenders and side-by-side qualitative comparisons.

Reference: Hou et al. (WWW 2023), §1 and §5.5: text-based transferable recommenders over-rely on text similarity.
We measure it per evaluated user as (a) the mean text cosine between the last history item and each of the top-K
recommendations and (b) overlap@K with the Text-kNN list (the pure text-similarity recommender); for reference the
text cosine between the last history item and the true next item is reported alongside. Everything takes top-K
lists as int arrays [n_users, K] of 0-based item indices, so it does not depend on any model class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError
from .geometry import unit_normalise

SUMMARY_STATS = ("mean", "q25", "median", "q75")


def summarise(values: np.ndarray) -> dict:
    """Mean, quartiles and count of a 1-D sample (NaNs dropped)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "mean": np.nan, "q25": np.nan, "median": np.nan, "q75": np.nan}
    q25, med, q75 = np.quantile(v, [0.25, 0.5, 0.75])
    return {"n": int(v.size), "mean": float(v.mean()), "q25": float(q25), "median": float(med), "q75": float(q75)}


def _check_topk(topk: np.ndarray, n_items: int, name: str) -> np.ndarray:
    topk = np.asarray(topk)
    if topk.ndim != 2:
        raise DataError(f"The {name} lists must be a 2-D array [n_users, K], got shape {topk.shape}.")
    if topk.size and (topk.min() < 0 or topk.max() >= n_items):
        raise DataError(f"The {name} lists contain item index {int(topk.max())} or {int(topk.min())}, "
                        f"outside the catalog of {n_items} items.")
    return topk.astype(np.int64)


def text_knn_topk(text_emb: np.ndarray, last_item: np.ndarray, K: int = 10, exclude_query: bool = True,
                  block: int = 2048) -> np.ndarray:
    """Reference Text-kNN: the K items whose text vectors are closest (cosine) to each last item, int64 [U, K].

    Ties are broken by item index (stable sort), and the query item itself is left out when ``exclude_query``.
    """
    z = unit_normalise(text_emb)  # [n, d]
    last_item = np.asarray(last_item, dtype=np.int64)
    out = np.empty((len(last_item), K), dtype=np.int64)
    for s in range(0, len(last_item), block):
        q = last_item[s:s + block]
        sims = z[q] @ z.T  # [b, n]
        if exclude_query:
            sims[np.arange(len(q)), q] = -np.inf
        out[s:s + block] = np.argsort(-sims, axis=1, kind="stable")[:, :K]
    return out


def model_topk(model, samples, K: int = 10, mask_history: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin wrapper over ``evaluate.topk`` for a data.SeqSamples: (items int64 [U, K], scores [U, K], last [U]).

    ``last`` is each user's last history item (0-based), the query of Text-kNN and of the bias measures.
    """
    from .evaluate import topk

    seq, length = np.asarray(samples.seq), np.asarray(samples.length)
    items, scores = topk(model, seq, length, k=K, mask_history=mask_history)
    last = seq[np.arange(len(seq)), length - 1] - 1  # [U] 0-based
    return items, scores, last


def text_bias(topk: np.ndarray, last_item: np.ndarray, text_emb: np.ndarray, knn_topk: np.ndarray | None = None,
              target: np.ndarray | None = None, users: np.ndarray | None = None) -> pd.DataFrame:
    """Per-user text-similarity bias of one model's top-K lists.

    Columns: user, text_cos (mean cosine of the last history item to each recommendation), text_cos_max,
    overlap (|top-K ∩ Text-kNN top-K| / K, if ``knn_topk`` given), target_cos (cosine of the last item to the true
    next item, if ``target`` given), hit (target in top-K, if given).
    """
    z = unit_normalise(text_emb)  # [n, d]
    topk = _check_topk(topk, z.shape[0], "recommendation")
    last_item = np.asarray(last_item, dtype=np.int64)
    U, K = topk.shape
    if last_item.shape != (U,):
        raise DataError(f"Expected one last history item per user ({U}), got shape {last_item.shape}.")
    cos = np.einsum("ukd,ud->uk", z[topk], z[last_item])  # [U, K]
    df = pd.DataFrame({"user": np.arange(U) if users is None else np.asarray(users),
                       "text_cos": cos.mean(axis=1), "text_cos_max": cos.max(axis=1)})
    if knn_topk is not None:
        knn = _check_topk(knn_topk, z.shape[0], "Text-kNN")
        if knn.shape != topk.shape:
            raise DataError(f"Text-kNN lists have shape {knn.shape}, the model's {topk.shape}; use the same K.")
        df["overlap"] = (topk[:, :, None] == knn[:, None, :]).any(axis=2).sum(axis=1) / K  # [U]
    if target is not None:
        target = np.asarray(target, dtype=np.int64)
        df["target_cos"] = np.einsum("ud,ud->u", z[target], z[last_item])
        df["hit"] = (topk == target[:, None]).any(axis=1)
    return df


def bias_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model: mean and quartiles of text_cos and overlap over users (plus target_cos, hit rate)."""
    rows = []
    for model, df in tables.items():
        row = {"model": model, "n_users": len(df)}
        for col in ("text_cos", "overlap", "target_cos"):
            if col in df:
                s = summarise(df[col].to_numpy())
                row.update({f"{col}_{k}": s[k] for k in SUMMARY_STATS})
        if "hit" in df:
            row["hit_rate"] = float(df["hit"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def compare_bias(before: pd.DataFrame, after: pd.DataFrame, before_name: str = "pretrained",
                 after_name: str = "adapted") -> tuple[pd.DataFrame, dict]:
    """Paired per-user comparison of two bias tables (e.g. pre-trained vs adapted VQ-Rec) on the same users.

    Returns the joined table with ``delta_*`` columns (after - before) and a summary: mean deltas, the share of
    users whose value went down, and a two-sided Wilcoxon signed-rank p-value per column.
    """
    from scipy import stats

    cols = [c for c in ("text_cos", "overlap") if c in before and c in after]
    if not cols:
        raise DataError("The two bias tables share no column to compare (text_cos / overlap).")
    j = before[["user", *cols]].merge(after[["user", *cols]], on="user", suffixes=(f"_{before_name}",
                                                                               f"_{after_name}"))
    if j.empty:
        raise DataError("The two bias tables have no user in common.")
    summary: dict = {"n_users": len(j)}
    for c in cols:
        d = j[f"{c}_{after_name}"] - j[f"{c}_{before_name}"]
        j[f"delta_{c}"] = d
        summary[f"{c}_{before_name}"] = float(j[f"{c}_{before_name}"].mean())
        summary[f"{c}_{after_name}"] = float(j[f"{c}_{after_name}"].mean())
        summary[f"delta_{c}_mean"] = float(d.mean())
        summary[f"share_{c}_down"] = float((d < 0).mean())
        nz = d[d != 0]
        summary[f"wilcoxon_p_{c}"] = float(stats.wilcoxon(nz).pvalue) if len(nz) >= 10 else float("nan")
    return j, summary


# ----------------------------------------------------------------------------------------- qualitative comparison


def history_table(history: np.ndarray, titles: np.ndarray) -> pd.DataFrame:
    """A user's history (oldest first) with titles."""
    history = np.asarray(history, dtype=np.int64)
    return pd.DataFrame({"position": np.arange(1, len(history) + 1), "item": history,
                         "title": np.asarray(titles, dtype=object)[history]})


def side_by_side(lists: dict[str, tuple[np.ndarray, np.ndarray | None]], last_item: int, text_emb: np.ndarray,
                 titles: np.ndarray, target: int | None = None) -> pd.DataFrame:
    """Every model's top-K for one user, long form.

    ``lists`` maps model name -> (items int [K], scores float [K] or None). Columns: model, rank, item, title,
    score, text_cos (to the last history item), is_target.
    """
    z = unit_normalise(text_emb)
    titles = np.asarray(titles, dtype=object)
    frames = []
    for model, (items, scores) in lists.items():
        items = _check_topk(np.asarray(items)[None, :], z.shape[0], model)[0]
        frames.append(pd.DataFrame({
            "model": model, "rank": np.arange(1, len(items) + 1), "item": items, "title": titles[items],
            "score": np.full(len(items), np.nan) if scores is None else np.asarray(scores, dtype=np.float64),
            "text_cos": z[items] @ z[int(last_item)],
            "is_target": (items == target) if target is not None else np.zeros(len(items), dtype=bool)}))
    return pd.concat(frames, ignore_index=True)


def side_by_side_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Rank x model grid of "title (cos 0.83)" strings, the true item marked with a leading check mark."""
    cell = long.apply(lambda r: ("✔ " if r["is_target"] else "") + f"{r['title']} (cos {r['text_cos']:.2f})",
                      axis=1)
    return long.assign(cell=cell).pivot(index="rank", columns="model", values="cell")[list(dict.fromkeys(long.model))]


def adaptation_diff(before: np.ndarray, after: np.ndarray, last_item: int, text_emb: np.ndarray,
                    titles: np.ndarray, target: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items that entered and left a top-K list through adaptation: (entered, left) DataFrames.

    Columns: item, title, rank (in the list it belongs to), text_cos (to the last history item), is_target.
    """
    z = unit_normalise(text_emb)
    titles = np.asarray(titles, dtype=object)
    before, after = np.asarray(before, dtype=np.int64), np.asarray(after, dtype=np.int64)

    def frame(items: np.ndarray, other: np.ndarray) -> pd.DataFrame:
        pos = np.flatnonzero(~np.isin(items, other))
        it = items[pos]
        return pd.DataFrame({"item": it, "title": titles[it], "rank": pos + 1, "text_cos": z[it] @ z[int(last_item)],
                             "is_target": (it == target) if target is not None else np.zeros(len(it), bool)})

    return frame(after, before), frame(before, after)

"""Geometry of item spaces: uniformity, nearest-neighbour distinguishability, codeword usage and the domain gap.

Reference: Hou et al., "Learning Vector-Quantized Item Representation for Transferable Sequential Recommenders"
(WWW 2023), §3 and §5.4 (the claim that text -> code -> representation spreads items more uniformly and narrows the
gap between domains). Uniformity is the measure of Wang & Isola (ICML 2020):
``log E_{i != j} exp(-2 ||x_i - x_j||^2)`` over unit-normalised vectors (lower = more uniform; 0 = all identical;
``uniformity_sphere_expected(d)`` is the value of points drawn uniformly on S^{d-1}).

Every function takes plain arrays so it can be tested without models; ``analysis.py`` glues them to data, codes and
checkpoints (and holds the ``analyze`` command). Deliberate choices: uniformity is exact over all pairs up to
``max_exact`` items and estimated from ``n_pairs`` random pairs (fixed seed) above that; the domain classifier
standardises features and subsamples at most ``max_per_domain`` items per domain so it answers in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import DataError


def unit_normalise(x: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Rows scaled to unit length. A zero row raises DataError: it has no direction."""
    x = np.asarray(x, dtype=dtype)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"Expected a non-empty 2-D array of item vectors, got shape {x.shape}.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)  # [n, 1]
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        bad = np.flatnonzero((norms[:, 0] == 0) | ~np.isfinite(norms[:, 0]))[:5].tolist()
        raise DataError(f"Item vectors at rows {bad} are zero or not finite, so they cannot be unit-normalised.")
    return x / norms


# ----------------------------------------------------------------------------------------------------- uniformity


def _logmeanexp(v: np.ndarray) -> float:
    m = float(np.max(v))
    return m + float(np.log(np.mean(np.exp(v - m))))


def uniformity(x: np.ndarray, max_exact: int = 3000, n_pairs: int = 200_000, seed: int = 0,
               t: float = 2.0) -> float:
    """``log E_{i != j}[exp(-t ||x_i - x_j||^2)]`` of the unit-normalised rows of ``x`` (t = 2 as in Wang & Isola).

    Exact over all unordered pairs when n <= ``max_exact``; otherwise estimated from ``n_pairs`` uniformly drawn
    pairs with i != j (seeded, so repeated calls agree).
    """
    z = unit_normalise(x, np.float64)  # [n, d]
    n = z.shape[0]
    if n < 2:
        raise DataError("Uniformity needs at least two items.")
    if n <= max_exact:
        vals = []
        for s in range(0, n, 1024):
            cos = z[s:s + 1024] @ z.T  # [b, n]
            rows = np.arange(s, min(s + 1024, n))
            mask = np.arange(n)[None, :] > rows[:, None]  # strict upper triangle: i < j
            vals.append(cos[mask])
        cos_pairs = np.concatenate(vals).astype(np.float64)
    else:
        rng = np.random.default_rng(seed)
        i = rng.integers(0, n, n_pairs)
        j = (i + rng.integers(1, n, n_pairs)) % n  # uniform over j != i
        cos_pairs = np.einsum("pd,pd->p", z[i], z[j]).astype(np.float64)  # [P]
    sq = np.clip(2.0 - 2.0 * cos_pairs, 0.0, 4.0)  # ||x - y||^2 for unit vectors
    return _logmeanexp(-t * sq)


def uniformity_sphere_expected(d: int, t: float = 2.0) -> float:
    """The uniformity of points uniform on S^{d-1}: ``log E[exp(-t(2 - 2c))]`` with c the cosine of two points.

    c has density proportional to (1 - c^2)^((d-3)/2) on [-1, 1]; both integrals are done numerically.
    """
    from scipy import integrate

    if d < 2:
        raise DataError("The sphere reference needs dimension d >= 2.")
    a = (d - 3) / 2.0

    def dens(c: float) -> float:
        return (1.0 - c * c) ** a if abs(c) < 1 else 0.0

    opts = {"limit": 200, "points": [0.0]}
    norm, _ = integrate.quad(dens, -1.0, 1.0, **opts)
    num, _ = integrate.quad(lambda c: dens(c) * np.exp(-t * (2.0 - 2.0 * c)), -1.0, 1.0, **opts)
    return float(np.log(num / norm))


# ----------------------------------------------------------------------------------- nearest-neighbour distinction


@dataclass
class NeighbourStats:
    nn_cos: np.ndarray      # float32 [n]  cosine of each item to its nearest other item
    mean_nn_cos: float
    median_nn_cos: float
    share_above: float      # share of items whose nearest neighbour has cosine >= threshold
    share_identical: float  # share of items with an exact duplicate vector (cosine >= 1 - 1e-6)
    threshold: float

    def as_dict(self) -> dict:
        return {"mean_nn_cos": self.mean_nn_cos, "median_nn_cos": self.median_nn_cos,
                "share_nn_above": self.share_above, "nn_threshold": self.threshold,
                "share_identical": self.share_identical}


def nearest_neighbour_stats(x: np.ndarray, threshold: float = 0.95, block: int = 1024) -> NeighbourStats:
    """How distinguishable items are: cosine of every item to its nearest *other* item (exact, blockwise)."""
    z = unit_normalise(x)  # [n, d]
    n = z.shape[0]
    if n < 2:
        raise DataError("Nearest-neighbour statistics need at least two items.")
    nn = np.empty(n, dtype=np.float32)
    for s in range(0, n, block):
        cos = z[s:s + block] @ z.T  # [b, n]
        rows = np.arange(s, min(s + block, n))
        cos[rows - s, rows] = -np.inf  # exclude the item itself (not its duplicates)
        nn[s:s + block] = cos.max(axis=1)
    nn = np.minimum(nn, 1.0)
    return NeighbourStats(nn_cos=nn, mean_nn_cos=float(nn.mean()), median_nn_cos=float(np.median(nn)),
                          share_above=float(np.mean(nn >= threshold)),
                          share_identical=float(np.mean(nn >= 1.0 - 1e-6)), threshold=threshold)


# ------------------------------------------------------------------------------------------ code-based item vectors


def code_item_vectors(codes: np.ndarray, table: np.ndarray, M: int) -> np.ndarray:
    """VQ-Rec item vectors: the mean of each item's D code embeddings.

    ``codes`` uint8 [n, D]; ``table`` [D*(M+1), h] with row ``code + 1 + k*(M+1)`` for digit k (row 0 of each
    block is padding), i.e. the layout of ``codes.flat_code_ids``.
    """
    codes = np.asarray(codes)
    D = codes.shape[1]
    if table.shape[0] != D * (M + 1):
        raise DataError(f"The code table has {table.shape[0]} rows but D*(M+1) = {D}*({M}+1) = {D * (M + 1)} "
                        "were expected; the codes and the checkpoint do not belong together.")
    if codes.size and int(codes.max()) >= M:
        raise DataError(f"Codes contain index {int(codes.max())} but only M={M} codewords exist per digit.")
    flat = codes.astype(np.int64) + 1 + np.arange(D, dtype=np.int64)[None, :] * (M + 1)  # [n, D]
    return np.asarray(table, dtype=np.float32)[flat].mean(axis=1)  # [n, h]


def fresh_code_table(D: int, M: int, h: int = 300, seed: int = 0, std: float = 0.02) -> np.ndarray:
    """A code table as a freshly initialised VQ-Rec has it: N(0, std^2) entries (padding rows included)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((D * (M + 1), h)) * std).astype(np.float32)  # [D*(M+1), h]


def code_onehot(codes: np.ndarray, M: int):
    """Sparse one-hot of the flat code ids, CSR [n, D*(M+1)]: the code itself as a vector, no table involved."""
    from scipy import sparse

    codes = np.asarray(codes)
    n, D = codes.shape
    flat = codes.astype(np.int64) + 1 + np.arange(D, dtype=np.int64)[None, :] * (M + 1)  # [n, D]
    rows = np.repeat(np.arange(n), D)
    return sparse.csr_matrix((np.ones(n * D, dtype=np.float32), (rows, flat.ravel())), shape=(n, D * (M + 1)))


# ------------------------------------------------------------------------------------------------------ domain gap


@dataclass
class DomainGap:
    balanced_accuracy: float  # mean over folds of the domain classifier's balanced accuracy
    balanced_accuracy_std: float
    chance: float             # balanced accuracy of guessing: 1 / number of domains
    n_items: int              # items used (after per-domain subsampling)
    centroids: pd.DataFrame   # domain_a, domain_b, centroid_cos, centroid_euclid (unit-normalised vectors)

    def as_dict(self) -> dict:
        out = {"balanced_accuracy": self.balanced_accuracy, "balanced_accuracy_std": self.balanced_accuracy_std,
               "chance": self.chance, "n_items": self.n_items}
        for r in self.centroids.itertuples():
            out[f"centroid_cos[{r.domain_a}|{r.domain_b}]"] = r.centroid_cos
            out[f"centroid_euclid[{r.domain_a}|{r.domain_b}]"] = r.centroid_euclid
        return out


def _centroid_table(cents: dict) -> pd.DataFrame:
    rows = []
    names = list(cents)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            ca, cb = cents[a], cents[b]
            cos = float(ca @ cb / (np.linalg.norm(ca) * np.linalg.norm(cb) + 1e-12))
            rows.append({"domain_a": a, "domain_b": b, "centroid_cos": cos,
                         "centroid_euclid": float(np.linalg.norm(ca - cb))})
    return pd.DataFrame(rows, columns=["domain_a", "domain_b", "centroid_cos", "centroid_euclid"])


def centroid_distances(x: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Cosine similarity and Euclidean distance between the centroids of each pair of domains.

    Centroids are means of the unit-normalised rows (so the Euclidean distance lies in [0, 2]).
    """
    z = unit_normalise(x)
    labels = np.asarray(labels)
    return _centroid_table({d: z[labels == d].mean(axis=0) for d in dict.fromkeys(labels.tolist())})


def domain_gap(x, labels: np.ndarray, n_folds: int = 5, seed: int = 0, max_per_domain: int = 4000,
               C: float = 1.0) -> DomainGap:
    """How well a linear classifier tells the domains apart (stratified k-fold, balanced accuracy) + centroid gaps.

    ``x`` is dense [n, d] (unit-normalised here) or a scipy sparse matrix (e.g. ``code_onehot``; centroids are
    then taken on its rows normalised to unit length as well). Features are standardised inside each fold.
    """
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    names, counts = np.unique(labels, return_counts=True)
    if len(names) < 2:
        raise DataError("The domain gap needs items from at least two domains.")
    if counts.min() < n_folds:
        raise DataError(f"Every domain needs at least {n_folds} items for {n_folds}-fold cross-validation; "
                        f"domain '{names[counts.argmin()]}' has {counts.min()}.")
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels == d))[:max_per_domain] for d in names]))
    is_sparse = sparse.issparse(x)
    if is_sparse:
        xs = sparse.csr_matrix(x)[keep]
        norms = np.sqrt(np.asarray(xs.multiply(xs).sum(axis=1)))[:, 0]
        dense_for_centroids = None
        xs = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ xs
    else:
        xs = unit_normalise(np.asarray(x)[keep])
        dense_for_centroids = xs
    y = labels[keep]
    clf = make_pipeline(StandardScaler(with_mean=not is_sparse),
                        LogisticRegression(C=C, max_iter=2000, random_state=seed))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(clf, xs, y, cv=cv, scoring="balanced_accuracy", n_jobs=1)
    if dense_for_centroids is None:
        cent_df = _centroid_table({d: np.asarray(xs[y == d].mean(axis=0))[0] for d in names})
    else:
        cent_df = centroid_distances(dense_for_centroids, y)
    return DomainGap(balanced_accuracy=float(scores.mean()), balanced_accuracy_std=float(scores.std()),
                     chance=1.0 / len(names), n_items=len(keep), centroids=cent_df)


# ------------------------------------------------------------------------------------------------------- summaries


def space_summary(spaces: dict[str, np.ndarray], threshold: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """One row per named space of the same items: uniformity, the sphere reference and nearest-neighbour stats."""
    rows = []
    for name, x in spaces.items():
        nn = nearest_neighbour_stats(x, threshold=threshold)
        rows.append({"space": name, "n_items": int(x.shape[0]), "dim": int(x.shape[1]),
                     "uniformity": uniformity(x, seed=seed),
                     "uniformity_sphere": uniformity_sphere_expected(int(x.shape[1])), **nn.as_dict()})
    return pd.DataFrame(rows)


def neighbour_domain_purity(x, labels: np.ndarray, k: int = 10, max_items: int = 6000, seed: int = 0,
                            block: int = 1024) -> dict:
    """Share of each item's k nearest other items (cosine) that come from its own domain, vs the chance level.

    A local view of the domain gap: 1 = every neighbourhood is single-domain, chance = sum of squared domain
    shares = neighbourhoods ignore the domain. ``x`` dense [n, d] or scipy sparse (e.g. ``code_onehot``: there the
    cosine is the share of shared digits). At most ``max_items`` items (seeded subsample) are compared; ties are
    broken by a fixed random jitter.
    """
    from scipy import sparse

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.permutation(len(labels))[:max_items])
    y = labels[keep]
    if sparse.issparse(x):
        xs = sparse.csr_matrix(x)[keep].astype(np.float32)
        norms = np.sqrt(np.asarray(xs.multiply(xs).sum(axis=1)))[:, 0]
        z = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ xs
    else:
        z = unit_normalise(np.asarray(x)[keep])
    n = len(keep)
    if n <= k:
        raise DataError(f"Neighbour purity with k={k} needs more than {k} items; got {n}.")
    jitter = rng.random(n).astype(np.float32) * 1e-6  # [n] deterministic tie-break
    same = np.empty(n)
    for s in range(0, n, block):
        sims = z[s:s + block] @ z.T  # [b, n]
        sims = np.asarray(sims.todense() if sparse.issparse(sims) else sims, dtype=np.float32) + jitter[None, :]
        rows = np.arange(s, min(s + block, n))
        sims[rows - s, rows] = -np.inf
        nn = np.argpartition(-sims, k, axis=1)[:, :k]  # [b, k]
        same[s:s + block] = (y[nn] == y[rows, None]).mean(axis=1)
    _, counts = np.unique(y, return_counts=True)
    return {"purity": float(same.mean()), "chance": float(((counts / n) ** 2).sum()), "k": k, "n_items": n}

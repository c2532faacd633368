"""The ``analyze`` pipeline: code-space uniformity vs text, domain gap, UMAP maps, text-similarity bias, examples.

Reference: DESIGN.md §3, testing the claims of Hou et al. (WWW 2023) that text -> code -> representation makes item
vectors more uniform and more distinguishable, narrows the domain gap, and reduces reliance on text similarity.
This module only orchestrates: the measures live in ``geometry`` (uniformity, neighbours, domain gap), ``bias``
(text-similarity bias, side-by-side lists) and ``projection`` (UMAP); code diagnostics come from ``codes``.

Spaces compared per domain (same items): ``text`` (encoder vectors), ``opq_recon`` (what the code stands for in
text space), ``code_fresh`` (VQ-Rec item vectors with a freshly initialised N(0, 0.02) code table: geometry of the
codes alone) and ``model:<name>`` (the item matrix of each trained checkpoint of that domain: pre-trained, adapted,
text baseline...). The domain gap uses one quantizer trained on the union of the domains' training items, as in
pre-training. Deliberate choice: Text-kNN and Popularity are rebuilt from the data (no checkpoint needed), so the
bias figures of the two references exist even without trained models.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import bias, geometry, projection
from .errors import CheckpointError, ConfigError, DataError
from .fsutil import Progress, atomic_write_text, report

SPACE_ORDER = ("text", "opq_recon", "code_fresh")


@dataclass
class AnalyzeConfig:
    D: int | None = None         # code digits (None = codes.resolve_config picks for the catalog size)
    b: int | None = None         # bits per digit, M = 2**b (None = automatic)
    method: str = "opq"          # quantizer (codes.METHODS)
    h: int = 64                  # width of the fresh code table (models.EncoderConfig.h default)
    K: int = 10                  # list length for bias and examples
    max_users: int | None = 3000  # evaluated users per domain in the bias measures (random subset, None = all)
    nn_threshold: float = 0.95   # cosine above which an item's nearest neighbour counts as "indistinguishable"
    umap: bool = True            # compute UMAP maps (first call compiles numba, ~15-40 s)
    umap_cap: int = 5000         # points per UMAP map (random subsample above)
    seed: int = 0
    user: str | None = None      # user of the qualitative comparison (None = the first test user some model hits)
    compare: list[tuple[str, str]] | None = None  # (before, after) model pairs; None = every *pretrained/*adapted


@dataclass
class DomainData:
    name: str
    domain: object        # data.Domain
    split: object         # data.Split
    emb: np.ndarray       # float32 [n_items, d] unit-norm text vectors
    models: dict = field(default_factory=dict)  # name -> loaded model whose catalog is this domain


@dataclass
class AnalysisResult:
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict[str, list] = field(default_factory=dict)  # html file stem -> plotly figures
    notes: list[str] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------------ checkpoints


def discover_checkpoints(folder: str | Path) -> list[tuple[str, Path]]:
    """(name, path) of every checkpoint folder (holding config.json + model.safetensors) under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"The checkpoint folder '{folder}' does not exist.")
    found = sorted(p.parent for p in folder.rglob("config.json") if (p.parent / "model.safetensors").exists())
    return [(str(p.relative_to(folder)).replace("/", ":") or p.name, p) for p in found]


def attach_checkpoints(domains: list[DomainData], folder: str | Path, notes: list[str]) -> None:
    """Load every checkpoint under ``folder`` and attach it to the domain whose catalog it scores.

    A checkpoint belongs to a domain when its metadata names the domain (``domain``/``target``) or lists the
    domain's item ids, or else when exactly one domain has its number of items.
    """
    from .checkpoint import load_checkpoint

    for name, path in discover_checkpoints(folder):
        try:
            model, meta = load_checkpoint(path)
        except CheckpointError as e:
            notes.append(f"skipped checkpoint {name}: {e}")
            continue
        n = int(model.n_items)
        ids = meta.get("item_ids")
        by_name = [d for d in domains if d.name in (meta.get("domain"), meta.get("target"))]
        by_ids = [d for d in domains if ids is not None and list(map(str, ids)) == d.domain.items["item_id"].tolist()]
        by_n = [d for d in domains if d.domain.n_items == n]
        match = [d for d in (by_ids or by_name or by_n) if d.domain.n_items == n]
        if len(match) != 1:
            notes.append(f"skipped checkpoint {name}: its {n} items match {len(match)} of the analysed domains")
            continue
        match[0].models[name] = model


# ---------------------------------------------------------------------------------------------------------- spaces


def _model_item_matrix(model) -> np.ndarray | None:
    import torch

    if not hasattr(model, "item_matrix"):
        return None  # Text-kNN / Popularity have no item vectors of their own
    with torch.no_grad():
        return model.item_matrix().detach().cpu().numpy().astype(np.float32)


def domain_spaces(dd: DomainData, code_res, cfg: AnalyzeConfig) -> dict[str, np.ndarray]:
    """The item spaces of one domain (same rows = the catalog): text, opq_recon, code_fresh, model:<name>."""
    table = geometry.fresh_code_table(code_res.D, code_res.M, cfg.h, cfg.seed)  # [D*(M+1), h]
    spaces = {"text": dd.emb, "opq_recon": code_res.reconstruct(),
              "code_fresh": geometry.code_item_vectors(code_res.codes, table, code_res.M)}
    for name, model in dd.models.items():
        m = _model_item_matrix(model)
        if m is not None:
            spaces[f"model:{name}"] = m
    return spaces


def code_tables(name: str, code_res) -> tuple[dict, pd.DataFrame]:
    """One summary row and a per-digit table (entropy, used codewords) from codes.code_diagnostics."""
    diag = code_res.diagnostics()
    row = {"domain": name, "method": code_res.method, "D": diag["D"], "M": diag["M"], "n_items": diag["n_items"],
           "mean_entropy_bits": diag["mean_entropy_bits"], "max_entropy_bits": diag["max_entropy_bits"],
           "mean_entropy_ratio": diag["mean_entropy_ratio"], "min_used_codewords": int(diag["used_codewords"].min()),
           "n_distinct_codes": diag["n_distinct_codes"], "collision_share": diag["collision_share"],
           "recon_error": diag["recon_error"]}
    per_digit = pd.DataFrame({"domain": name, "digit": np.arange(diag["D"]), "entropy_bits": diag["entropy_bits"],
                              "used_codewords": diag["used_codewords"], "max_entropy_bits": diag["max_entropy_bits"]})
    return row, per_digit


# ------------------------------------------------------------------------------------------------------------ bias


def _eval_subset(split, max_users: int | None, seed: int):
    s = split.test
    if max_users is not None and len(s) > max_users:
        s = s.subset(np.sort(np.random.default_rng(seed).choice(len(s), size=max_users, replace=False)))
    return s


def domain_bias(dd: DomainData, cfg: AnalyzeConfig) -> tuple[dict[str, pd.DataFrame], dict[str, tuple], object]:
    """Per-model bias tables on the domain's evaluated users, their top-K lists, and the samples used."""
    from .models import Popularity, TextKNN, popularity_counts

    samples = _eval_subset(dd.split, cfg.max_users, cfg.seed)
    models = {"Text-kNN": TextKNN(dd.emb), "Popularity": Popularity(popularity_counts(dd.split.user_items,
                                                                                          dd.domain.n_items))}
    models.update({k: v for k, v in dd.models.items() if getattr(v, "kind", "") not in ("text_knn", "pop")})
    lists = {name: bias.model_topk(m, samples, K=cfg.K) for name, m in models.items()}
    knn = lists["Text-kNN"][0]
    tables = {name: bias.text_bias(items, last, dd.emb, knn_topk=knn, target=samples.target, users=samples.user)
              for name, (items, _scores, last) in lists.items()}
    return tables, lists, samples


def _auto_compare(names: list[str]) -> list[tuple[str, str]]:
    """Every ("<x>pretrained", "<x>adapted") pair of model names, e.g. vqrec_pretrained -> vqrec_adapted."""
    return [(n, n[: -len("pretrained")] + "adapted") for n in names
            if n.endswith("pretrained") and n[: -len("pretrained")] + "adapted" in names]


def qualitative(dd: DomainData, lists: dict, samples, cfg: AnalyzeConfig,
                compare: tuple[str, str] | None) -> dict[str, pd.DataFrame]:
    """History, side-by-side lists (long + wide) and, given a (before, after) pair, the adaptation diff for one
    user."""
    users = np.asarray(samples.user)
    if cfg.user is not None:
        hits = np.flatnonzero(users.astype(str) == str(cfg.user))
        if not len(hits):
            raise DataError(f"User '{cfg.user}' is not among the evaluated users of domain '{dd.name}' "
                            f"(users need at least 3 interactions; {len(users)} were analysed).")
        u = int(hits[0])
    else:  # first user whose true next item some non-text model finds, else the first user
        hit_any = np.zeros(len(users), dtype=bool)
        for name, (items, _, _) in lists.items():
            if name not in ("Text-kNN", "Popularity"):
                hit_any |= (items == samples.target[:, None]).any(axis=1)
        u = int(np.argmax(hit_any)) if hit_any.any() else 0
    titles = dd.domain.items["text"].to_numpy(dtype=object)
    last = int(samples.seq[u, samples.length[u] - 1] - 1)
    target = int(samples.target[u])
    hist = bias.history_table(samples.seq[u, :samples.length[u]] - 1, titles)
    long = bias.side_by_side({n: (it[u], sc[u]) for n, (it, sc, _) in lists.items()}, last, dd.emb, titles, target)
    out = {"history": hist.assign(user=users[u], true_next=titles[target]), "lists": long.assign(user=users[u]),
           "lists_wide": bias.side_by_side_wide(long).reset_index()}
    if compare is not None:
        entered, left = bias.adaptation_diff(lists[compare[0]][0][u], lists[compare[1]][0][u], last, dd.emb,
                                             titles, target)
        out["entered"], out["left"] = entered, left
    return out


# -------------------------------------------------------------------------------------------------------- pipeline


def _codes(emb: np.ndarray, mask: np.ndarray, cfg: AnalyzeConfig, cache_dir):
    from .codes import CodeConfig, build_codes

    return build_codes(emb, mask, CodeConfig(D=cfg.D, b=cfg.b, method=cfg.method, seed=cfg.seed), cache_dir=cache_dir)


def _gap_row(space: str, g: geometry.DomainGap, purity: dict) -> dict:
    return {"space": space, "balanced_accuracy": g.balanced_accuracy, "balanced_accuracy_std": g.balanced_accuracy_std,
            "chance": g.chance, "n_items": g.n_items, "mean_centroid_cos": float(g.centroids["centroid_cos"].mean()),
            "mean_centroid_euclid": float(g.centroids["centroid_euclid"].mean()),
            "nn10_same_domain": purity["purity"], "nn10_same_domain_chance": purity["chance"]}


def run_analysis(domains: list[DomainData], cfg: AnalyzeConfig | None = None, cache_dir=None,
                 progress: Progress | None = None) -> AnalysisResult:
    """Every analysis of DESIGN.md §3 on the given domains (with their attached checkpoints, if any)."""
    from . import figures

    cfg = cfg or AnalyzeConfig()
    if not domains:
        raise DataError("The analysis needs at least one domain.")
    refs = {"Text-kNN", "Popularity"}
    bad = [p for p in (cfg.compare or []) if not any({*p} <= {*d.models, *refs} for d in domains)]
    if bad:
        raise ConfigError(f"--compare pairs {bad} do not name two models of one domain; the loaded checkpoints "
                          f"are {sorted({m for d in domains for m in d.models})}.")
    res = AnalysisResult()
    steps = 2 * len(domains) + 3
    code_rows, digits, spaces_t = [], [], []
    for i, dd in enumerate(domains):
        report(progress, i / steps, f"{dd.name}: codes and item spaces")
        cr = _codes(dd.emb, dd.split.train_item_mask, cfg, cache_dir)
        row, per_digit = code_tables(dd.name, cr)
        code_rows.append(row)
        digits.append(per_digit)
        spaces_t.append(geometry.space_summary(domain_spaces(dd, cr, cfg), cfg.nn_threshold, cfg.seed)
                        .assign(domain=dd.name))
    if len(domains) >= 2:
        report(progress, len(domains) / steps, "joint quantizer and domain gap")
        union = np.concatenate([d.emb for d in domains])  # [N, d]
        labels = np.concatenate([np.full(d.domain.n_items, d.name, dtype=object) for d in domains])
        titles = np.concatenate([d.domain.items["text"].to_numpy(dtype=object) for d in domains])
        jc = _codes(union, np.concatenate([d.split.train_item_mask for d in domains]), cfg, cache_dir)
        row, per_digit = code_tables("joint", jc)
        code_rows.append(row)
        digits.append(per_digit)
        jspaces = {"text": union, "opq_recon": jc.reconstruct(),
                   "code_fresh": geometry.code_item_vectors(jc.codes, geometry.fresh_code_table(jc.D, jc.M, cfg.h,
                                                                                                cfg.seed), jc.M)}
        spaces_t.append(geometry.space_summary(jspaces, cfg.nn_threshold, cfg.seed).assign(domain="joint"))
        gaps, cents = [], []
        for name, x in [*jspaces.items(), ("code_onehot", geometry.code_onehot(jc.codes, jc.M))]:
            g = geometry.domain_gap(x, labels.astype(str), seed=cfg.seed)
            gaps.append(_gap_row(name, g, geometry.neighbour_domain_purity(x, labels.astype(str), seed=cfg.seed)))
            cents.append(g.centroids.assign(space=name))
        res.tables["domain_gap"] = pd.DataFrame(gaps)
        res.tables["domain_centroids"] = pd.concat(cents, ignore_index=True)
        res.figures["domain_gap"] = [figures.domain_gap_figure(res.tables["domain_gap"])]
        if cfg.umap:
            maps = []
            for j, name in enumerate(("text", "code_fresh")):
                report(progress, (len(domains) + 0.3 + 0.3 * j) / steps, f"UMAP of {name} vectors")
                m = projection.umap_map(jspaces[name], projection.UmapConfig(cap=cfg.umap_cap, seed=cfg.seed),
                                        cache_dir=cache_dir)
                m = m.assign(domain=labels[m["index"]], title=titles[m["index"]], space=name)
                maps.append(m)
            res.tables["umap"] = pd.concat(maps, ignore_index=True)
            res.figures["umap"] = [projection.scatter_figure(m, f"UMAP of {m['space'].iloc[0]} item vectors "
                                                                f"({len(m)} items)") for m in maps]
        else:
            res.notes.append("UMAP maps skipped (--no-umap).")
    else:
        res.notes.append("Domain gap and UMAP maps skipped: they need at least two domains.")
    res.tables["codes"] = pd.DataFrame(code_rows)
    res.tables["code_digits"] = pd.concat(digits, ignore_index=True)
    res.tables["uniformity"] = pd.concat(spaces_t, ignore_index=True)
    res.figures["codes"] = [figures.entropy_figure(res.tables["code_digits"])]
    res.figures["uniformity"] = figures.uniformity_figures(res.tables["uniformity"])

    bias_sum, comparisons = [], []
    for i, dd in enumerate(domains):
        report(progress, (len(domains) + 1 + i) / steps, f"{dd.name}: top-{cfg.K} lists and text-similarity bias")
        if len(dd.split.test) == 0:
            res.notes.append(f"{dd.name}: no user has 3 or more interactions, so there is nothing to evaluate.")
            continue
        tables, lists, samples = domain_bias(dd, cfg)
        per_user = pd.concat([t.assign(model=m) for m, t in tables.items()], ignore_index=True)
        res.tables[f"bias_users_{dd.name}"] = per_user
        bias_sum.append(bias.bias_summary(tables).assign(domain=dd.name))
        res.figures[f"bias_{dd.name}"] = figures.bias_figures(per_user, dd.name, cfg.K)
        pairs = _auto_compare(list(dd.models)) if cfg.compare is None else [
            p for p in cfg.compare if p[0] in tables and p[1] in tables]
        for before, after in pairs:
            joined, s = bias.compare_bias(tables[before], tables[after], "before", "after")
            comparisons.append({"domain": dd.name, "before": before, "after": after, **s})
            res.tables[f"bias_compare_{dd.name}_{after.replace(':', '_')}"] = joined
        if not dd.models:
            res.notes.append(f"{dd.name}: no trained checkpoint for this domain, so bias covers only Text-kNN and "
                             "Popularity; pass --checkpoints to add VQ-Rec and the other models.")
        compare = next((p for p in pairs if "vqrec" in p[1]), pairs[0] if pairs else None)
        for key, df in qualitative(dd, lists, samples, cfg, compare).items():
            res.tables[f"example_{key}_{dd.name}"] = df
    if bias_sum:
        res.tables["bias_summary"] = pd.concat(bias_sum, ignore_index=True)
    if comparisons:
        res.tables["bias_before_after"] = pd.DataFrame(comparisons)
    report(progress, 1.0, "analysis done")
    return res


def write_outputs(res: AnalysisResult, out: str | Path) -> list[Path]:
    """Tables as CSV, figures as HTML sharing one embedded-offline ``plotly.min.js``, notes as notes.txt."""
    from . import figures

    out = Path(out)
    written = []
    for name, df in res.tables.items():
        written.append(atomic_write_text(out / f"{name}.csv", df.to_csv(index=False)))
    for name, figs in res.figures.items():
        written.append(figures.write_html(figs, out / f"{name}.html", title=name.replace("_", " ")))
    written.append(atomic_write_text(out / "notes.txt", "\n".join(res.notes) + "\n"))
    return written


# ------------------------------------------------------------------------------------------------------------- CLI


def load_domains(pairs: list[tuple[str, str]], encoder: str = "minilm", cache_dir=None,
                 names: list[str] | None = None, progress: Progress | None = None) -> list[DomainData]:
    """Load (items, interactions) pairs, split them leave-one-out and encode their text (cached)."""
    from .data import load_domain, split_leave_one_out
    from .text import encode_texts, get_encoder

    if names is not None and len(names) != len(pairs):
        raise ConfigError(f"--names gives {len(names)} names for {len(pairs)} domains.")
    enc = get_encoder(encoder)
    out = []
    for i, (items, inter) in enumerate(pairs):
        dom = load_domain(items, inter, name=names[i] if names else None)
        if any(d.name == dom.name for d in out):
            raise ConfigError(f"Two domains are both called '{dom.name}'; name them with --names.")
        report(progress, i / len(pairs), f"encoding the titles of {dom.name}")
        emb = encode_texts(enc, dom.titles(), cache_dir=cache_dir)
        out.append(DomainData(dom.name, dom, split_leave_one_out(dom), emb))
    return out


def _print_progress(frac: float, msg: str) -> None:
    print(f"\r[{frac * 100:5.1f}%] {msg:<70}", end="", file=sys.stderr, flush=True)
    if frac >= 1.0:
        print(file=sys.stderr)


def format_summary(res: AnalysisResult) -> str:
    """A short plain-text digest of the main tables."""
    fmt = {"float_format": lambda v: f"{v:.4f}"}
    parts = []
    if "codes" in res.tables:
        parts.append("Codes (entropy per digit vs log2 M, full-code collisions):\n" + res.tables["codes"][
            ["domain", "D", "M", "mean_entropy_bits", "max_entropy_bits", "collision_share"]].to_string(index=False,
                                                                                                         **fmt))
    if "uniformity" in res.tables:
        parts.append("Uniformity (lower = more uniform) and nearest-neighbour cosine:\n" + res.tables["uniformity"][
            ["domain", "space", "uniformity", "uniformity_sphere", "mean_nn_cos", "share_nn_above",
             "share_identical"]].to_string(index=False, **fmt))
    if "domain_gap" in res.tables:
        g = res.tables["domain_gap"]
        parts.append("Domain gap (linear classifier balanced accuracy, chance "
                     f"{g['chance'].iloc[0]:.2f}; share of 10 nearest neighbours from the same domain, chance "
                     f"{g['nn10_same_domain_chance'].iloc[0]:.2f}):\n" + g[
                         ["space", "balanced_accuracy", "nn10_same_domain", "mean_centroid_cos",
                          "mean_centroid_euclid"]].to_string(index=False, **fmt))
    if "bias_summary" in res.tables:
        b = res.tables["bias_summary"]
        cols = [c for c in ("domain", "model", "n_users", "text_cos_mean", "text_cos_median", "overlap_mean",
                            "target_cos_mean", "hit_rate") if c in b]
        parts.append("Text-similarity bias (mean over users):\n" + b[cols].to_string(index=False, **fmt))
    if "bias_before_after" in res.tables:
        parts.append("Before vs after adaptation:\n" + res.tables["bias_before_after"].T.to_string(header=False))
    parts += [f"note: {n}" for n in res.notes]
    return "\n\n".join(parts)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .cliargs import default_cache_dir, sample_domain_paths

    for flag, value, low in (("--K", args.K, 1), ("--max-users", args.max_users, 0), ("--umap-cap", args.umap_cap, 20)):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}; got {value}.")
    pairs = [tuple(p) for p in args.domain] if args.domain else [tuple(map(str, sample_domain_paths(n)))
                                                                 for n in ("beauty", "toys")]
    cache = None if args.no_cache else Path(args.cache_dir or default_cache_dir())
    prog = None if args.quiet else _print_progress
    domains = load_domains(pairs, args.encoder, cache, args.names, prog)
    res_notes: list[str] = []
    if args.checkpoints:
        attach_checkpoints(domains, args.checkpoints, res_notes)
    else:
        res_notes.append("No --checkpoints given: model item spaces, model bias and before/after adaptation are "
                         "skipped (Text-kNN and Popularity are still measured).")
    cfg = AnalyzeConfig(D=args.D, b=args.b, method=args.method, K=args.K, seed=args.seed,
                        max_users=None if args.max_users == 0 else args.max_users, umap=not args.no_umap,
                        umap_cap=args.umap_cap, user=args.user,
                        compare=[tuple(c) for c in args.compare] if args.compare else None)
    res = run_analysis(domains, cfg, cache_dir=cache, progress=prog)
    res.notes = res_notes + res.notes
    written = write_outputs(res, args.out)
    print(format_summary(res))
    print(f"\nwrote {len(written)} files to {args.out}")
    return 0


def register_cli(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "analyze", help="code space vs text space: uniformity, domain gap, UMAP, text-similarity bias",
        description="Measure, for one or more domains, the uniformity and nearest-neighbour distinguishability of "
                    "text vectors vs code-based item vectors, codeword usage, the domain gap (linear classifier, "
                    "centroid distances, UMAP), and - per model - the text-similarity bias of the top-K lists on "
                    "the evaluated users, plus one user's lists side by side. Writes CSV tables and HTML figures "
                    "to --out and prints a summary. Default domains: the bundled sample_data/beauty and toys.")
    p.add_argument("--domain", nargs=2, action="append", metavar=("ITEMS", "INTERACTIONS"),
                   help="a domain's item catalog and interaction log (repeat for several domains; column names "
                        "are detected as in 'validate')")
    p.add_argument("--names", nargs="+", help="one name per --domain (default: each catalog's folder name)")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="folder searched (recursively) for trained checkpoints; each is matched to the domain "
                        "whose catalog it scores (e.g. workspace/experiments/toys_to_beauty from 'experiment')")
    p.add_argument("--out", default="results/analysis", help="output folder (default results/analysis)")
    p.add_argument("--encoder", default="minilm", help="text encoder: 'minilm' (default), 'hash:64' or a local "
                                                       "sentence-transformers model folder")
    p.add_argument("--cache-dir", help="embedding/code/UMAP cache (default $VQREC_WORKSPACE/cache)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write caches")
    p.add_argument("--D", type=int, help="code digits D (default: automatic for the catalog size)")
    p.add_argument("--b", type=int, help="bits per digit b, M = 2**b (default: automatic)")
    p.add_argument("--method", default="opq", help="quantizer: opq (default), faiss_opq, pq or random")
    p.add_argument("--K", type=int, default=10, help="top-K list length (default 10)")
    p.add_argument("--max-users", type=int, default=3000,
                   help="evaluated users per domain for the bias (random subset; 0 = all; default 3000)")
    p.add_argument("--user", help="user id of the side-by-side example (default: first user some model hits)")
    p.add_argument("--compare", nargs=2, action="append", metavar=("BEFORE", "AFTER"),
                   help="two checkpoint names to compare before vs after adaptation (repeatable; default: every "
                        "<x>pretrained / <x>adapted pair, e.g. vqrec_pretrained vs vqrec_adapted)")
    p.add_argument("--no-umap", action="store_true", help="skip UMAP maps (their first call compiles numba)")
    p.add_argument("--umap-cap", type=int, default=5000, help="points per UMAP map (default 5000)")
    p.add_argument("--seed", type=int, default=0, help="seed of every subsample, code table and map (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_analyze)
    return p

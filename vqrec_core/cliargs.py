"""Shared command-line arguments: how a domain (catalog + log + column mapping) and the cache are named.

Every subcommand that reads a domain calls :func:`add_domain_args` and then :func:`domain_from_args`, so the
flags and their help text are the same everywhere.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .data import Domain, load_domain

PROJECT_DIR = Path(__file__).resolve().parent.parent
SAMPLE_DIR = PROJECT_DIR / "sample_data"


def default_workspace() -> Path:
    """$VQREC_WORKSPACE, else ./workspace inside the project."""
    return Path(os.environ.get("VQREC_WORKSPACE", PROJECT_DIR / "workspace"))


def default_cache_dir() -> Path:
    return default_workspace() / "cache"


def add_domain_args(p: argparse.ArgumentParser, prefix: str = "", required: bool = True, label: str = "") -> None:
    """--{prefix}items/--{prefix}interactions plus the column-mapping flags."""
    pre = f"--{prefix}" if prefix else "--"
    what = f"{label} " if label else ""
    p.add_argument(f"{pre}items", required=required, metavar="FILE",
                   help=f"{what}item catalog (CSV, TSV, JSON Lines, Parquet or RecBole .item; .gz ok)")
    p.add_argument(f"{pre}interactions", required=required, metavar="FILE",
                   help=f"{what}interaction log (CSV, TSV, JSON Lines, Parquet or RecBole .inter; .gz ok)")
    if prefix:
        return  # mapping flags are shared by all domains of one command
    p.add_argument("--name", help="domain name (default: the catalog's folder name)")
    p.add_argument("--item-id-col", help="catalog column holding the item id (default: auto, e.g. item_id)")
    p.add_argument("--text-cols", nargs="+", metavar="COL",
                   help="catalog column(s) joined into the item text (default: auto, e.g. title)")
    p.add_argument("--user-col", help="log column holding the user id (default: auto, e.g. user_id)")
    p.add_argument("--inter-item-col", help="log column holding the item id (default: auto, e.g. item_id)")
    p.add_argument("--time-col", help="log column holding the timestamp (default: auto; none = row order)")
    p.add_argument("--encoding", help="text encoding of both files, e.g. utf-8 or latin-1 (default: detected)")


def mapping_from_args(args: argparse.Namespace) -> dict:
    return {k: getattr(args, k, None) for k in
            ("item_id_col", "text_cols", "user_col", "inter_item_col", "time_col", "encoding")}


def domain_from_args(args: argparse.Namespace, prefix: str = "") -> Domain:
    key = prefix.replace("-", "_")
    items, inter = getattr(args, f"{key}items"), getattr(args, f"{key}interactions")
    name = getattr(args, "name", None) if not prefix else None
    return load_domain(items, inter, name=name, **mapping_from_args(args))


def sample_domain_paths(name: str) -> tuple[Path, Path]:
    """(items.csv, interactions.csv) of a bundled sample domain ('beauty' or 'toys')."""
    d = SAMPLE_DIR / name
    return d / "items.csv", d / "interactions.csv"

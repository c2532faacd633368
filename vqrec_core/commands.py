"""Data-level subcommands: ``validate`` (report + statistics) and ``encode`` (item text -> vectors).

The code-level ``codes`` command lives in codes.py, training in experiment.py, analyses in analysis.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .cliargs import add_domain_args, default_cache_dir, domain_from_args, mapping_from_args
from .data import check_domain, domain_stats
from .errors import DataError
from .fsutil import atomic_save_npy
from .text import DEFAULT_ENCODER, encode_texts, get_encoder


def _print_progress(frac: float, msg: str) -> None:
    print(f"\r[{frac * 100:5.1f}%] {msg}", end="", file=sys.stderr, flush=True)
    if frac >= 1.0:
        print(file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    dom, rep = check_domain(args.items, args.interactions, name=args.name, **mapping_from_args(args))
    for w in rep.warnings:
        print(f"warning: {w}")
    if dom is None:
        for e in rep.errors:
            print(f"error: {e}", file=sys.stderr)
        print(f"{len(rep.errors)} error(s): this domain cannot be used.", file=sys.stderr)
        return 2
    stats = domain_stats(dom)
    print(f"OK: domain '{dom.name}' is usable ({len(rep.warnings)} warning(s)).")
    width = max(map(len, stats))
    for k, v in stats.items():
        print(f"  {k:<{width}}  {v:.4g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    dom = domain_from_args(args)
    enc = get_encoder(args.encoder)
    cache = None if args.no_cache else Path(args.cache_dir)
    emb = encode_texts(enc, dom.titles(), cache_dir=cache, batch_size=args.batch_size,
                       progress=None if args.quiet else _print_progress)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise DataError(f"--out must end in .npy (got '{out.name}').")
    atomic_save_npy(out, emb)
    norms = np.linalg.norm(emb, axis=1)
    print(f"wrote {out}: {emb.shape[0]} items x {emb.shape[1]} dims (float32, unit norm: "
          f"{np.allclose(norms, 1, atol=1e-3)}), encoder {enc.name}, rows in catalog order of '{dom.name}'")
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("validate", help="check a catalog + interaction log and print the report and statistics",
                       description="Load a domain (item catalog + interaction log), print warnings and statistics. "
                                   "Exit 0 when usable; exit 2 with the errors on stderr when not.")
    add_domain_args(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("encode", help="encode item text into unit-norm vectors (.npy), cached by content",
                       description="Encode every catalog item's text with a sentence-transformers model and write a "
                                   "float32 [n_items, d] .npy in catalog order.")
    add_domain_args(p)
    p.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help="'minilm' (bundled all-MiniLM-L6-v2, default), 'hash:64' (fast test encoder) or the path "
                        "of a local sentence-transformers model folder")
    p.add_argument("--out", required=True, help="output .npy file")
    p.add_argument("--batch-size", type=int, default=64, help="texts per encoder batch (default 64)")
    p.add_argument("--cache-dir", default=str(default_cache_dir()),
                   help="embedding cache folder (default: $VQREC_WORKSPACE/cache or ./workspace/cache)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_encode)

"""Paired per-user differences in test NDCG@10 between trained models of the transfer experiment.

For each run folder written by ``python -m vqrec_core experiment`` (``workspace/experiments/<source>_to_<target>``)
the saved checkpoints are re-scored on the target's test users (full ranking, history not masked, as in the
experiment) and, for each pair ``a-b``, the mean over users of NDCG@10(a) - NDCG@10(b) is reported with its standard
error. A difference larger than two standard errors is printed in bold. Writes ``results/paired_ndcg10.md`` and
``.csv``. Usage (from the repository root, after the two experiment runs):

    python scripts/paired_differences.py --run beauty_to_toys --run toys_to_beauty

A run whose rows were trained in several processes is given as ``NAME=DIR1,DIR2`` (each row is taken from the first
folder that has it); pairs whose rows are missing are skipped. The long-budget investigation:

    python scripts/paired_differences.py --experiments workspace/experiments_long --out results/long \
        --run toys_to_beauty=toys_to_beauty_vq,toys_to_beauty_text \
        --run beauty_to_toys=beauty_to_toys_vq,beauty_to_toys_text
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vqrec_core.checkpoint import load_checkpoint  # noqa: E402
from vqrec_core.cliargs import default_workspace  # noqa: E402
from vqrec_core.data import split_leave_one_out  # noqa: E402
from vqrec_core.evaluate import target_ranks  # noqa: E402
from vqrec_core.experiment import resolve_domain  # noqa: E402

PAIRS = ("vqrec_adapted-sasrec_id", "vqrec_adapted-vqrec_scratch", "vqrec_adapted-text_seq_adapted",
         "vqrec_adapted-vqrec_adapted_noalign", "vqrec_pq_no_rotation-vqrec_adapted_noalign")
NAMES = {"beauty": "Beauty", "toys": "Toys"}
DEFAULT_EXP = default_workspace() / "experiments"


def per_user_ndcg(ranks: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k with one target: 1 / log2(rank + 2) for 0-based rank < k, else 0."""
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def run_pairs(name: str, run_dirs: list[Path], pairs=PAIRS) -> list[dict]:
    target = name.split("_to_")[-1]
    split = split_leave_one_out(resolve_domain(target))
    test = split.test
    cache: dict[str, np.ndarray] = {}

    def folder(row: str) -> Path | None:
        return next((d / row for d in run_dirs if (d / row / "config.json").exists()), None)

    def ndcg(row: str) -> np.ndarray:
        if row not in cache:
            model, _ = load_checkpoint(folder(row))
            cache[row] = per_user_ndcg(target_ranks(model, test.seq, test.length, test.target))
            print(f"  {name}/{row}: NDCG@10 {cache[row].mean():.4f}", file=sys.stderr)
        return cache[row]

    out = []
    for pair in pairs:
        a, b = pair.split("-")
        if folder(a) is None or folder(b) is None:
            print(f"  {name}: skipping {pair} (no checkpoint for {a if folder(a) is None else b})", file=sys.stderr)
            continue
        d = ndcg(a) - ndcg(b)
        out.append({"run": name, "pair": f"{a} − {b}", "mean": float(d.mean()),
                    "se": float(d.std(ddof=1) / np.sqrt(len(d))), "users": len(d)})
    return out


def parse_run(spec: str, root: Path) -> tuple[str, list[Path]]:
    name, _, dirs = spec.partition("=")
    return name, [root / d for d in (dirs.split(",") if dirs else [name])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", required=True,
                    help="run name (<source>_to_<target>) under --experiments, or NAME=DIR1,DIR2 for a run split "
                         "over several folders; repeat for several runs")
    ap.add_argument("--experiments", type=Path, default=DEFAULT_EXP,
                    help="folder holding the experiment runs (default: <workspace>/experiments)")
    ap.add_argument("--out", type=Path, default=ROOT / "results", help="output folder (default: results/)")
    args = ap.parse_args()
    rows = [r for spec in args.run for r in run_pairs(*parse_run(spec, args.experiments))]
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "paired_ndcg10.csv", index=False)
    cols = list(dict.fromkeys(df["run"]))

    def label(run: str) -> str:
        s, t = run.split("_to_")
        return f"{NAMES.get(s, s)} → {NAMES.get(t, t)}"

    lines = ["| difference in test NDCG@10 | " + " | ".join(label(c) for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for pair in dict.fromkeys(df["pair"]):
        cells = []
        for c in cols:
            hit = df[(df["pair"] == pair) & (df["run"] == c)]
            if hit.empty:
                cells.append("not run")
                continue
            r = hit.iloc[0]
            cell = f"{r['mean']:+.4f} ± {r['se']:.4f}"
            cells.append(f"**{cell}**" if abs(r["mean"]) > 2 * r["se"] else cell)
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    text = ("# Paired differences in test NDCG@10\n\nPer-user mean ± standard error over all test users; bold = more "
            "than 2 SE. Regenerate: `python scripts/paired_differences.py " + " ".join(f"--run {r}" for r in args.run)
            + (f" --experiments {args.experiments} --out {args.out}" if args.experiments != DEFAULT_EXP else "")
            + "`.\n\n" + "\n".join(lines) + "\n")
    (args.out / "paired_ndcg10.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

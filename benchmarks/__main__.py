"""``python -m benchmarks [--quick]``: every stage against its baseline, one fresh process per (stage, size).

Prints a Markdown table and writes ``results/benchmarks.md`` and ``results/benchmarks.csv`` (columns stage, size,
ours_s, baseline_s, speedup, then config, rates, unit, peak_rss_mb, exponent, repeats, note). ``speedup`` is
baseline_s / ours_s, both medians measured in the same process, alternating. ``exponent`` is the log-log slope of
time (per epoch for training rows) against size within a (stage, config). See docs/benchmarks.md.

``--merge`` re-runs some stages and replaces only their rows in the existing files (the rest of the table, its run
header and its growth lines stay; the header gains one line naming the merged stages and their run).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .common import (
    ROOT,
    add_exponents,
    data_source,
    growth_groups,
    growth_key,
    loglog_slope,
    run_child,
    to_csv,
    to_markdown,
)

ALL_STAGES = ("encode", "codes", "train", "eval", "umap", "scale")

# (full, quick) settings per stage
SIZES = {
    "encode": ([250, 500, 1000], [32, 64, 128]),  # texts
    "codes": ([2000, 10000, 20000], [2000]),  # items x 384-d
    "train": ([2000, 6000, 18000], [500, 1000, 2000]),  # users of Beauty (catalog and train seqs grow with them)
    "eval": ([5000, 20000, 80000], [2000, 5000, 20000]),  # catalog items
    "umap": ([5000, 10000, 20000], [2000]),  # points
    "scale": ([(25_000, 250_000), (50_000, 500_000), (100_000, 1_000_000)],
              [(2_500, 25_000), (5_000, 50_000), (10_000, 100_000)]),  # (items, interactions)
}


def jobs(stage: str, quick: bool, repeats: int, encoder: str = "minilm") -> list[tuple[str, str, dict]]:
    """(label, module, kwargs) per fresh process."""
    sizes = SIZES[stage][1 if quick else 0]
    if stage == "encode":
        return [(f"encode {n}", "benchmarks.bench_encode", {"sizes": [n], "repeats": repeats, "encoder": encoder})
                for n in sizes]
    if stage == "codes":
        if quick:  # faiss at its defaults is slow here: stop it after 120 s (the row then gives a lower bound)
            return [("codes 2000", "benchmarks.bench_codes",
                     {"sizes": [2000], "repeats": 1, "quick": True, "baseline_timeout_s": 120.0})]
        return [(f"codes {n}", "benchmarks.bench_codes",
                 {"sizes": [n], "repeats": repeats, "baseline_timeout_s": 300.0}) for n in sizes]
    if stage == "train":
        from .bench_train import STAGES

        presets = ["quick"] if quick else ["quick", "standard"]
        return [(f"{s} {n}", "benchmarks.bench_train",
                 {"sizes": [n], "repeats": repeats, "quick": quick, "stages": [s], "presets": presets})
                for n in sizes for s in STAGES]
    if stage == "eval":
        return [(f"eval {n}", "benchmarks.bench_eval",
                 {"sizes": [n], "repeats": repeats, "quick": quick, "n_users": 1000 if quick else 3000})
                for n in sizes]
    if stage == "umap":
        return [(f"umap {n}", "benchmarks.bench_umap", {"sizes": [n]}) for n in sizes]
    if stage == "scale":
        return [(f"scale {i}x{m}", "benchmarks.bench_scale", {"n_items": i, "n_inter": m}) for i, m in sizes]
    raise ValueError(stage)


def normalise(module: str, rows: list[dict]) -> list[dict]:
    """Map the rows of modules with their own extra keys (codes, umap, scale) onto the common columns."""
    out = []
    for r in rows:
        r = dict(r)
        if module.endswith("bench_codes"):
            r["config"] = f"D={r.get('D')}, M={r.get('M')}; ours 1 thread vs {r.get('baseline', 'faiss')}"
            r["unit"] = "items/s"
            if r.get("ours_s"):
                r["ours_rate"] = round(r["size"] / r["ours_s"], 1)
            if r.get("baseline_s"):
                r["baseline_rate"] = round(r["size"] / r["baseline_s"], 1)
            r["note"] = (f"recon err ours {r.get('ours_recon')} vs faiss {r.get('baseline_recon')}; {r.get('data')}"
                         + (f"; {r['note']}" if r.get("note") else ""))
            r["repeats"] = len(r.get("ours_s_all") or []) or None
            stopped = "stopped after" in (r.get("note") or "")
            if r.get("baseline_s") is None and stopped and r.get("ours_s"):
                limit = float(r["note"].split("stopped after")[1].split()[0])
                r["note"] += f"; speedup > {limit / r['ours_s']:.0f}x (faiss did not finish)"
            out.append(r)
        elif module.endswith("bench_umap"):
            r["config"], r["unit"] = "warm (2nd call in the process)", "s"
            r["note"] = "exact faiss kNN + umap precomputed_knn vs umap.UMAP() defaults"
            out.append(r)
            first_b = r.get("baseline_first_call_s")
            out.append({"stage": "umap", "size": r["size"], "ours_s": r.get("first_call_s"), "baseline_s": first_b,
                        "speedup": round(first_b / r["first_call_s"], 2) if first_b and r.get("first_call_s") else None,
                        "config": "first call (numba compile included)", "unit": "s",
                        "peak_rss_mb": r.get("peak_rss_mb"), "note": r["note"]})
        elif module.endswith("bench_scale"):  # rows already in this format; size = interactions
            if r.get("unit") == "interactions":
                r["unit"] = "interactions/s"
            r["config"] = "items = interactions / 10"
            if r.get("baseline_peak_rss_mb") is not None:
                r["note"] = f"{r.get('note', '')}; baseline {r['baseline_peak_rss_mb']} MB"
            out.append(r)
        else:
            out.append(r)
    return out


def growth_table(rows: list[dict]) -> str:
    lines = ["| stage | config | sizes | time fitted | exponent ours | exponent baseline |",
             "|---|---|---|---|---:|---:|"]
    for (stage, conf), g in growth_groups(rows).items():
        if len({r["size"] for r in g}) < 2:
            continue
        eo = loglog_slope([r["size"] for r in g], [growth_key(r) for r in g])
        eb = loglog_slope([r["size"] for r in g], [growth_key(r, "baseline") for r in g])
        sizes = ", ".join(str(r["size"]) for r in g)
        what = "per epoch" if "epoch_s" in g[0] else "per call"
        lines.append(f"| {stage} | {conf} | {sizes} | {what} | {'' if eo is None else eo} | "
                     f"{'' if eb is None else eb} |")
    return "\n".join(lines) + "\n"


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def report_md(rows: list[dict], cmd: str, started: float, load0: tuple, failures: list[str], threads: int) -> str:
    load1 = os.getloadavg()
    head = [
        "# Benchmarks",
        "",
        f"Regenerate: `{cmd}` (from the repository root; `--quick` for the few-minute version).",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {_git_commit()}, "
        f"{time.perf_counter() - started:.0f} s wall",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at the end (shared with other jobs: ratios, not "
        f"absolute times, are the result)",
        f"- threads: {threads} for ours and the baseline unless the config says otherwise; data: {data_source()}",
        "- `speedup` = baseline_s / ours_s (medians, measured alternately in the same process); `peak_rss_mb` = "
        "peak resident memory of the stage's own fresh process; `exponent` = log-log slope of time vs size (per "
        "epoch for training rows)",
        "- size = texts (encode), items (codes, umap, eval catalog), users sampled from Beauty (train_*, adapt_*: "
        "catalog and training sequences grow with them, see the note), interactions (data_*)",
        "",
        to_markdown(rows),
        "## Growth (time ~ size^exponent)",
        "",
        growth_table(rows),
    ]
    if failures:
        head += ["## Stages that did not run", ""] + [f"- {f}" for f in failures] + [""]
    return "\n".join(head)


def harness_stage(row_stage: str) -> str:
    """The harness stage (``ALL_STAGES``) whose jobs produce a table row of stage ``row_stage``."""
    if row_stage.startswith(("train_", "adapt_")):
        return "train"
    if row_stage.startswith("data_"):
        return "scale"
    head = row_stage.split("_")[0]
    return head if head in ALL_STAGES else row_stage


def _table_stage(line: str) -> str | None:
    """The stage cell of a Markdown table row (None for other lines and the header/rule)."""
    if not line.startswith("| ") or line.startswith(("| stage ", "|---")):
        return None
    return line[2:].split(" | ", 1)[0].strip()


def merge_csv(old_csv: str, new_rows: list[dict]) -> str:
    """Old CSV text with every row of the stages in ``new_rows`` replaced by ``new_rows`` (at the old rows' place)."""
    stages = {harness_stage(r["stage"]) for r in new_rows}
    new_lines = to_csv(new_rows).splitlines()[1:]
    reader = csv.reader(io.StringIO(old_csv))
    header = next(reader, None)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header or (to_csv([]).strip().split(",")))
    placed = False
    for rec in reader:
        if rec and harness_stage(rec[0]) in stages:
            if not placed:
                out.write("\n".join(new_lines) + "\n")
                placed = True
            continue
        w.writerow(rec)
    if not placed:
        out.write("\n".join(new_lines) + "\n")
    return out.getvalue()


def merge_md(old_md: str, new_rows: list[dict], header_line: str) -> str:
    """Old report with the table rows and growth lines of the stages in ``new_rows`` replaced, and ``header_line``
    added after the run line of the header."""
    stages = {harness_stage(r["stage"]) for r in new_rows}
    fresh = {"main": to_markdown(new_rows).splitlines()[2:], "growth": growth_table(new_rows).splitlines()[2:]}
    out: list[str] = []
    part, placed, last_row = "main", {"main": False, "growth": False}, {"main": None, "growth": None}
    for line in old_md.splitlines():
        if line.startswith("## Growth"):
            part = "growth"
        st = _table_stage(line)
        if st is not None and harness_stage(st) in stages:
            if not placed[part]:
                out += fresh[part]
                placed[part] = True
            last_row[part] = len(out)
            continue
        out.append(line)
        if st is not None:
            last_row[part] = len(out)
        if line.startswith("- run: "):
            out.append(header_line)
    for part in ("growth", "main"):  # stages new to the file: after the last row of each table
        if not placed[part] and fresh[part] and last_row[part] is not None:
            out[last_row[part]:last_row[part]] = fresh[part]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, fewer repeats: a few minutes")
    p.add_argument("--stages", default=",".join(ALL_STAGES),
                   help=f"comma-separated subset of {','.join(ALL_STAGES)} (default: all)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per side (default 3; 2 with --quick)")
    p.add_argument("--threads", type=int, default=1, help="torch/BLAS/OpenMP threads per process (default 1)")
    p.add_argument("--out", default=str(ROOT / "results"), help="folder for benchmarks.md/.csv (default results/)")
    p.add_argument("--no-write", action="store_true", help="print the table only")
    p.add_argument("--merge", action="store_true",
                   help="replace only the rows of the stages run here in the existing benchmarks.md/.csv of --out "
                        "(keep every other row, the header and growth lines of the earlier run)")
    p.add_argument("--encoder", default="minilm",
                   help="text encoder of the encode stage (default minilm; 'hash:64' for a fast smoke run)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per fresh process")
    args = p.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in ALL_STAGES]
    if unknown:
        p.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(ALL_STAGES)}")
    repeats = args.repeats or (2 if args.quick else 3)
    started, load0 = time.perf_counter(), os.getloadavg()
    todo = [j for s in stages for j in jobs(s, args.quick, repeats, args.encoder)]
    rows: list[dict] = []
    failures: list[str] = []
    for k, (label, module, kwargs) in enumerate(todo, 1):
        t = time.perf_counter()
        print(f"[{k}/{len(todo)}] {label} ...", file=sys.stderr, flush=True)
        try:
            got = normalise(module, run_child(module, kwargs, threads=args.threads, timeout=args.timeout))
            rows += got
            print(f"    done in {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
            first = str(e).strip().splitlines()
            failures.append(f"{label}: {first[-1] if first else type(e).__name__}")
            print(f"    FAILED: {e}", file=sys.stderr, flush=True)
    add_exponents(rows)
    cmd = "python -m benchmarks" + (" --quick" if args.quick else "")
    md = report_md(rows, cmd, started, load0, failures, args.threads)
    print(md)
    if not args.no_write:
        out = Path(args.out)
        from vqrec_core.fsutil import atomic_write_text

        if args.merge and rows:
            done = sorted({harness_stage(r["stage"]) for r in rows}, key=ALL_STAGES.index)
            line = (f"- merged: stage(s) {', '.join(done)} re-run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit "
                    f"{_git_commit()}, {time.perf_counter() - started:.0f} s wall, load average {load0[0]:.1f} at "
                    f"start, {os.getloadavg()[0]:.1f} at the end (`{cmd} --stages {','.join(done)}"
                    f"{f' --repeats {args.repeats}' if args.repeats else ''} --merge`)")
            try:
                old_md = (out / "benchmarks.md").read_text(encoding="utf-8")
                old_csv = (out / "benchmarks.csv").read_text(encoding="utf-8")
            except OSError as e:
                print(f"--merge needs an earlier benchmarks.md and .csv in {out} ({e})", file=sys.stderr)
                return 2
            md, csv_text = merge_md(old_md, rows, line), merge_csv(old_csv, rows)
        else:
            csv_text = to_csv(rows)
        atomic_write_text(out / "benchmarks.md", md)
        atomic_write_text(out / "benchmarks.csv", csv_text)
        print(f"wrote {out / 'benchmarks.md'} and {out / 'benchmarks.csv'}", file=sys.stderr)
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())

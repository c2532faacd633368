"""Refresh the measured tables in README.md from the files the experiment, analysis and benchmark commands wrote.

Every table in the README between ``<!-- table: SOURCE -->`` and ``<!-- /table -->`` is replaced by:
- ``results/x.md`` or ``results/x.md#N``: the N-th (1-based, default 1) Markdown table of that file, verbatim;
- ``csv:PATH?cols=a,b,c&where=col:regex``: the chosen columns (default: all) of a CSV a command wrote, numbers
  rounded for reading, optionally only the rows whose ``col`` matches ``regex``.
So the README never holds a number that is not in a file a command produced. Usage (from the repository root):

    python scripts/readme_tables.py          # rewrite README.md in place
    python scripts/readme_tables.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- table: (?P<src>[^>]+?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def markdown_tables(text: str) -> list[str]:
    tables, cur = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cur.append(line)
        elif cur:
            tables.append("\n".join(cur))
            cur = []
    if cur:
        tables.append("\n".join(cur))
    return tables


def _fmt(v: str) -> str:
    try:
        x = float(v)
    except ValueError:
        return v
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3g}"


TEXT_COLS = {"stage", "config", "unit", "space", "domain", "method", "model", "before", "after", "run", "pair", "note"}


def csv_table(path: Path, cols: list[str] | None = None, where: tuple[str, str] | None = None) -> str:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise SystemExit(f"{path} has no rows")
    cols = cols or list(rows[0])
    missing = [c for c in cols if c not in rows[0]]
    if missing:
        raise SystemExit(f"{path} has no column(s) {missing}")
    if where:
        rows = [r for r in rows if re.search(where[1], r.get(where[0], "") or "")]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if c in TEXT_COLS else "---:" for c in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join((r.get(c) or "") if c in TEXT_COLS else _fmt(r.get(c) or "") for c in cols)
                   + " |")
    return "\n".join(out)


def render(src: str) -> str:
    src = src.strip()
    if src.startswith("csv:"):
        path, _, query = src[4:].partition("?")
        opts = dict(kv.split("=", 1) for kv in query.split("&") if kv)
        cols = opts["cols"].split(",") if "cols" in opts else None
        where = tuple(opts["where"].split(":", 1)) if "where" in opts else None
        return csv_table(ROOT / path, cols, where)
    path, _, idx = src.partition("#")
    tables = markdown_tables((ROOT / path).read_text(encoding="utf-8"))
    n = int(idx or 1)
    if not 1 <= n <= len(tables):
        raise SystemExit(f"{path} has {len(tables)} table(s); README asks for #{n}")
    return tables[n - 1]


def refresh(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("src")) + "\n" + m.group(4), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only check; exit 1 if README.md would change")
    args = ap.parse_args()
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    new = refresh(old)
    if args.check:
        if new != old:
            print("README.md tables are out of date: run python scripts/readme_tables.py", file=sys.stderr)
            return 1
        return 0
    readme.write_text(new, encoding="utf-8")
    print(f"README.md: {len(BLOCK.findall(old))} table(s) refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's promises: the quick start's two commands exist, and every measured table matches its results file."""

from __future__ import annotations

import importlib.util

from tests.conftest import PROJECT


def _readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", PROJECT / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_start_commands_exist_and_ci_runs_the_test_command():
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    quick = text[text.index("## Quick start"):text.index("##", text.index("## Quick start") + 3)]
    assert "./start.sh" in quick and "./test.sh" in quick
    for script in ("start.sh", "test.sh", ".ci/run"):
        assert (PROJECT / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "./test.sh" in (PROJECT / ".ci" / "run").read_text()


def test_readme_tables_match_the_results_files():
    mod = _readme_tables()
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    assert len(mod.BLOCK.findall(text)) >= 8
    assert mod.refresh(text) == text, "run: python scripts/readme_tables.py"


def test_csv_table_selects_columns_and_rows(tmp_path):
    mod = _readme_tables()
    p = tmp_path / "t.csv"
    p.write_text("stage,size,ours_s\ncodes,2000,2.3456\neval,5000,0.04809\n")
    table = mod.csv_table(p, ["stage", "ours_s"], ("stage", "^codes$"))
    assert table.splitlines() == ["| stage | ours_s |", "|---|---:|", "| codes | 2.35 |"]

"""Smoke tests of the benchmark harness at trivial sizes: it runs, falls back to sample_data, writes well-formed rows.

No timing is asserted (the machine is shared); only the shape and the arithmetic of what the harness reports.
"""

from __future__ import annotations

import csv
import math

import pytest

from benchmarks import common


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """Pretend ../shared/datasets is absent: the harness must fall back to the bundled sample data."""
    monkeypatch.setenv("VQREC_DATASETS", str(tmp_path / "no-datasets"))
    assert common.datasets_dir() is None


def _check_row(r: dict) -> None:
    assert set(common.COLUMNS) <= set(r)
    assert isinstance(r["stage"], str) and r["stage"]
    assert isinstance(r["size"], int) and r["size"] > 0
    assert r["ours_s"] > 0 and r["baseline_s"] > 0
    # speedup is baseline / ours (both rounded to 4 significant digits)
    assert r["speedup"] == pytest.approx(r["baseline_s"] / r["ours_s"], rel=2e-3)
    assert r["peak_rss_mb"] > 10


def test_loglog_slope_recovers_a_power_law():
    sizes = [1000, 4000, 16000]
    assert common.loglog_slope(sizes, [3e-6 * s**1.5 for s in sizes]) == pytest.approx(1.5, abs=0.01)
    assert common.loglog_slope([5, 5], [1.0, 2.0]) is None  # one distinct size: no slope


def test_interleaved_alternates_and_counts():
    calls: list[str] = []
    times = common.interleaved([lambda: calls.append("a"), lambda: calls.append("b")], repeats=3)
    assert calls == ["a", "b"] * 3
    assert [len(t) for t in times] == [3, 3] and all(x >= 0 for t in times for x in t)


def test_titles_fall_back_and_reach_any_size(no_shared):
    pool = common._base_titles()  # the bundled sample: ~4k titles
    assert 1000 < len(pool) < 5000 and not any("&amp;" in x for x in pool)  # HTML entities unescaped as data.py
    t = common.titles(5000)  # past the pool: suffixed variants
    assert len(t) == 5000 and sorted(t[: len(pool)]) == sorted(pool)
    assert sum(x.endswith(" - variant 1") for x in t) == 5000 - len(pool)
    assert common.data_source().startswith("sample_data")


def test_encode_bench_rows(no_shared):
    from benchmarks import bench_encode

    rows = bench_encode.run([40], repeats=1, encoder="hash:32")
    assert [r["stage"] for r in rows] == ["encode", "encode_cached"]
    for r in rows:
        _check_row(r)
        assert r["ours_rate"] == pytest.approx(40 / r["ours_s"], rel=2e-3)


def test_train_and_eval_bench_rows(no_shared):
    from benchmarks import bench_eval, bench_train

    rows = bench_train.run([40], repeats=1, quick=True, stages=["train_sasrec", "adapt_vqrec"], presets=["quick"],
                           steps=1)
    assert [r["stage"] for r in rows] == ["train_sasrec", "adapt_vqrec"]
    for r in rows:
        _check_row(r)
        assert r["unit"] == "train seqs/s" and r["epoch_s"] > 0
    rows = bench_eval.run([300], repeats=1, quick=True, preset_name="quick", n_users=30)
    assert [r["stage"] for r in rows] == ["eval", "eval_scoring", "eval_scoring_before"]
    for r in rows:
        _check_row(r)
    assert rows[0]["ours_rate"] == pytest.approx(30 / rows[0]["ours_s"], rel=2e-3)  # users/s


def test_main_writes_markdown_and_csv(no_shared, tmp_path):
    from benchmarks.__main__ import main

    out = tmp_path / "res"
    assert main(["--quick", "--stages", "encode", "--encoder", "hash:16", "--repeats", "1", "--out", str(out)]) == 0
    with open(out / "benchmarks.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames[:5] == ["stage", "size", "ours_s", "baseline_s", "speedup"]
        rows = list(reader)
    assert {r["stage"] for r in rows} == {"encode", "encode_cached"}
    assert sorted({int(r["size"]) for r in rows}) == [32, 64, 128]  # the three quick sizes, one process each
    for r in rows:
        assert float(r["ours_s"]) > 0 and float(r["baseline_s"]) > 0 and float(r["peak_rss_mb"]) > 0
        assert math.isfinite(float(r["exponent"]))  # three sizes -> a fitted growth exponent
    md = (out / "benchmarks.md").read_text()
    assert "python -m benchmarks --quick" in md and "| encode_cached |" in md and "## Growth" in md


def test_merge_replaces_only_the_rerun_stages_rows():
    from benchmarks.__main__ import growth_table, merge_csv, merge_md, report_md

    def r(stage, size, ours):
        return common.row(stage, size, ours, 2.0, config="c", unit="s", exponent=1.0, note="n")

    old = [r("encode", 10, 1.0), r("encode", 20, 2.0), r("eval", 10, 3.0), r("eval_scoring_old", 10, 4.0),
           r("eval", 20, 5.0), r("data_read", 10, 6.0)]
    old_md = report_md(old, "python -m benchmarks", 0.0, (1.0, 1.0, 1.0), [], 1)
    new = [r("eval", 10, 7.0), r("eval_scoring", 10, 8.0), r("eval", 20, 9.0)]
    rows = list(csv.DictReader(merge_csv(common.to_csv(old), new).splitlines()))
    # old eval rows (all eval_* stages) gone, new ones in their place, other stages untouched and in order
    assert [(x["stage"], x["ours_s"]) for x in rows] == [
        ("encode", "1.0"), ("encode", "2.0"), ("eval", "7.0"), ("eval_scoring", "8.0"), ("eval", "9.0"),
        ("data_read", "6.0")]
    md = merge_md(old_md, new, "- merged: eval")
    table = [ln for ln in md.split("## Growth")[0].splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert [ln.split(" | ")[0][2:] for ln in table] == ["encode", "encode", "eval", "eval_scoring", "eval",
                                                        "data_read"]
    assert "| 7 |" in md and "| 3 |" not in md and "eval_scoring_old" not in md
    growth = md.split("## Growth")[1]
    assert growth.count("| eval | c |") == 1 and "| encode | c |" in growth
    assert growth_table(new).splitlines()[2] in growth
    assert md.index("- run: ") < md.index("- merged: eval") < md.index("- machine: ")

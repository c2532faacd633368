"""Issue 7: every bad input in tests/data/bad/ gives one documented error type with a clear message (or loads with
a stated warning), through the core and through the CLI (exit 2 + message, no traceback; or exit 0 + warning).

The table CASES mirrors tests/data/bad/README.md. The CLI is driven in-process through ``vqrec_core.__main__.main``
(the same code path as ``python -m vqrec_core``); two cases also run as a real subprocess to check that nothing
but the message reaches stderr.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import PROJECT
from vqrec_core import data as data_mod
from vqrec_core.__main__ import main as cli_main
from vqrec_core.data import MAX_FILE_BYTES, check_domain, load_domain, read_table, safe_upload_name
from vqrec_core.errors import CheckpointError, ConfigError, DataError

BAD = Path(__file__).resolve().parent / "data" / "bad"
GOOD_ITEMS, GOOD_LOG = "good_items.csv", "good_interactions.csv"


@dataclass
class Case:
    id: str
    items: str = GOOD_ITEMS
    log: str = GOOD_LOG
    outcome: str = "error"  # "error" (DataError, domain unusable) | "warning" (loads, warning given) | "ok"
    expect: tuple[str, ...] = ()  # substrings that must all appear in one error/warning message
    mapping: dict = field(default_factory=dict)


CASES = [
    Case("empty file", items="empty.csv", expect=("'empty.csv' is empty",)),
    Case("header only", items="header_only.csv", expect=("'header_only.csv' has a header but no data rows",)),
    Case("wrong delimiter", items="wrong_delimiter.csv", outcome="warning",
         expect=("does not use the expected delimiter ','", "read with ';'")),
    Case("missing item id column", items="missing_item_id.csv",
         expect=("no item id column", "code, title", "--item-id-col")),
    Case("missing text column", items="missing_text.csv", expect=("no text column", "--text-cols")),
    Case("missing user column", log="missing_user.csv", expect=("no user id column", "buyer", "--user-col")),
    Case("missing log item column", log="missing_log_item.csv", expect=("no item id column", "--inter-item-col")),
    Case("missing timestamp column", log="missing_timestamp.csv", outcome="warning",
         expect=("no timestamp column", "order of its rows")),
    Case("duplicate item ids, different titles", items="duplicate_ids.csv", outcome="warning",
         expect=("more than once ('3')", "different texts", "first row")),
    Case("interactions name unknown items", log="unknown_items.csv",
         expect=("not in the catalog", "'98', '99'", "rows 11, 12")),
    Case("all titles empty", items="all_titles_empty.csv", expect=("empty text", "nothing to encode")),
    Case("latin-1 text", items="latin1.csv", outcome="warning", expect=("not UTF-8", "cp1252")),
    Case("utf-16 with BOM", items="utf16_bom.csv", outcome="warning", expect=("not UTF-8", "utf-16")),
    Case("mixed-type ids", items="mixed_type_ids.jsonl", outcome="warning", expect=("written as decimals", "'5.0'")),
    Case("timestamps as words", log="timestamps_words.csv",
         expect=("neither numbers nor dates", "rows 5, 8", "'soon'", "'later'")),
    Case("timestamps as ISO dates", log="timestamps_iso_dates.csv", outcome="ok"),
    Case("negative timestamps", log="timestamps_negative.csv", outcome="warning",
         expect=("negative value", "before 1970")),
    Case("timestamps in milliseconds", log="timestamps_milliseconds.csv", outcome="warning",
         expect=("look like milliseconds", "converted to seconds")),
    Case("missing timestamps", log="timestamps_missing.csv", expect=("is empty in 2 row(s)", "rows 3, 6")),
    Case("user with one interaction", log="one_interaction_user.csv", outcome="warning",
         expect=("fewer than 3 interactions ('u4')",)),
    Case("JSON Lines with a broken line", items="broken_line.jsonl", outcome="warning",
         expect=("not JSON objects", "skipped (lines 9)")),
    Case("Parquet with a nested text column", items="nested_text.parquet",
         expect=("'title'", "nested records", "--text-cols")),
    Case("Parquet with nested ids", items="nested_ids.parquet", expect=("'item_id'", "nested values")),
    Case("RecBole file with a wrong type suffix", items="wrong_type_suffix.item", outcome="warning",
         expect=("unknown RecBole type", "'item_id:tokn'", "'title:text'")),
    Case("truncated gzip", items="truncated.csv.gz", expect=("not a readable gzip file",)),
    Case("ragged rows", items="ragged.csv", expect=("not a well-formed table", "line 10")),
    Case("binary file named .csv", items="binary.csv", expect=("looks like a binary file", "NUL bytes")),
    Case("unsupported file type", items="unsupported.xlsx", expect=("unsupported type '.xlsx'",)),
    Case("file does not exist", items="no_such_file.csv", expect=("'no_such_file.csv' does not exist",)),
]


def _matches(messages: list[str], expect: tuple[str, ...]) -> bool:
    return any(all(e in m for e in expect) for m in messages)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_core(case: Case):
    dom, rep = check_domain(BAD / case.items, BAD / case.log, **case.mapping)
    if case.outcome == "error":
        assert dom is None and _matches(rep.errors, case.expect), rep.format()
        with pytest.raises(DataError) as ei:
            load_domain(BAD / case.items, BAD / case.log, **case.mapping)
        assert all(e in str(ei.value) for e in case.expect)
        return
    assert dom is not None and rep.ok, rep.format()
    if case.outcome == "warning":
        assert _matches(rep.warnings, case.expect), rep.format()
    else:
        assert rep.warnings == [], rep.format()
    # every domain that loads is complete and consistent
    assert set(dom.interactions["item_id"]) <= set(dom.items["item_id"])
    assert dom.interactions["timestamp"].dtype == np.int64 and dom.items["text"].str.len().gt(0).any()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli(case: Case, capsys):
    rc = cli_main(["validate", "--items", str(BAD / case.items), "--interactions", str(BAD / case.log)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if case.outcome == "error":
        assert rc == 2
        lines = [ln.removeprefix("error: ") for ln in err.splitlines()]
        assert _matches(lines, case.expect), err
    else:
        assert rc == 0, err
        assert "usable" in out
        if case.outcome == "warning":
            lines = [ln.removeprefix("warning: ") for ln in out.splitlines() if ln.startswith("warning: ")]
            assert _matches(lines, case.expect), out


def test_decoded_text_of_non_utf8_files_is_right():
    for name, prefix in (("latin1.csv", "Crème brûlée "), ("utf16_bom.csv", "Café ")):
        dom = load_domain(BAD / name, BAD / GOOD_LOG)
        assert dom.items["text"].tolist()[0] == prefix + "Red lipstick"
        assert dom.items["item_id"].tolist() == [str(i) for i in range(1, 9)]


def test_mixed_type_ids_match_the_log():
    dom = load_domain(BAD / "mixed_type_ids.jsonl", BAD / GOOD_LOG)
    assert dom.items["item_id"].tolist() == [str(i) for i in range(1, 9)]  # 1, "2", 3.0, " 4 ", "5.0" -> "1".."5"


def test_special_timestamps_are_converted():
    ms = load_domain(BAD / GOOD_ITEMS, BAD / "timestamps_milliseconds.csv").interactions["timestamp"]
    assert ms.tolist()[:2] == [1_600_000_010, 1_600_000_020]
    iso = load_domain(BAD / GOOD_ITEMS, BAD / "timestamps_iso_dates.csv").interactions["timestamp"]
    assert iso.iloc[0] == int(pd.Timestamp("2021-03-11", tz="UTC").timestamp())
    assert np.all(np.diff(iso.to_numpy()[:4]) == 10 * 86400)  # u1: day 10, 20, 30, 40
    neg = load_domain(BAD / GOOD_ITEMS, BAD / "timestamps_negative.csv").interactions["timestamp"]
    assert neg.min() == -25


def test_broken_jsonl_keeps_the_good_lines():
    df, rep = read_table(BAD / "broken_line.jsonl")
    assert df["item_id"].tolist() == [str(i) for i in range(1, 9)]


# ------------------------------------------------------------------------------------------------ limits


def _write_big_csv(path: Path, n_bytes: int) -> None:
    block = "".join(f"{i},A reasonably long product title number {i} for the size test\n" for i in range(20000))
    with open(path, "w") as f:
        f.write("item_id,title\n")
        written = 0
        while written < n_bytes:
            f.write(block)
            written += len(block)


def test_100mb_class_file_is_refused_before_reading(tmp_path):
    big = tmp_path / "huge_items.csv"
    _write_big_csv(big, MAX_FILE_BYTES + 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"'huge_items.csv' is 101 MiB, which is over the limit of 100 MiB"):
            read_table(big, label="item catalog")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # refused from the file size alone: nothing was read
    # the real CLI process: exit 2, the message, no traceback
    r = subprocess.run([sys.executable, "-m", "vqrec_core", "validate", "--items", str(big), "--interactions",
                        str(BAD / GOOD_LOG)], cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "over the limit of 100 MiB" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_devices_and_folders_are_refused(tmp_path):
    with pytest.raises(DataError, match="is not a regular file"):
        read_table(_fifo(tmp_path))  # reading a FIFO would block forever
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path / "d.csv")


def _fifo(tmp_path: Path) -> Path:
    import os

    p = tmp_path / "pipe.csv"
    os.mkfifo(p)
    return p


def test_gzip_bomb_stops_at_the_limit(tmp_path):
    bomb = tmp_path / "bomb.csv.gz"
    chunk = b"1,a\n" * 2**18  # 1 MiB
    with gzip.open(bomb, "wb", compresslevel=9) as f:
        f.write(b"item_id,title\n")
        for _ in range(MAX_FILE_BYTES // len(chunk) + 2):
            f.write(chunk)
    assert bomb.stat().st_size < MAX_FILE_BYTES / 50  # small on disk
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than 100 MiB once decompressed"):
            read_table(bomb, label="item catalog")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * MAX_FILE_BYTES  # never more than the cap (+ read buffers) in memory


def test_row_limits_are_enforced_with_the_limit_named(monkeypatch, capsys):
    monkeypatch.setattr(data_mod, "MAX_ITEMS", 5)
    dom, rep = check_domain(BAD / GOOD_ITEMS, BAD / GOOD_LOG)
    assert dom is None and _matches(rep.errors, ("has 8 rows, over the limit of 5 items",)), rep.format()
    monkeypatch.setattr(data_mod, "MAX_ITEMS", 1000)
    monkeypatch.setattr(data_mod, "MAX_INTERACTIONS", 9)
    rc = cli_main(["validate", "--items", str(BAD / GOOD_ITEMS), "--interactions", str(BAD / GOOD_LOG)])
    err = capsys.readouterr().err
    assert rc == 2 and "has 10 rows, over the limit of 9 interactions" in err


def test_parquet_row_count_is_checked_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "many.parquet"
    pd.DataFrame({"item_id": np.arange(50).astype(str), "title": ["t"] * 50}).to_parquet(p)
    monkeypatch.setattr(data_mod, "MAX_ITEMS", 10)
    monkeypatch.setattr(data_mod, "MAX_INTERACTIONS", 20)
    with pytest.raises(DataError, match="has 50 rows, over the limit of 20 rows"):
        read_table(p, label="item catalog")


# ------------------------------------------------------------------------------------------------ file names


@pytest.mark.parametrize("name", ["../../x.csv", "..\\..\\x.csv", "/etc/passwd", "sub/items.csv", ".hidden.csv",
                                  "..", "a\x00.csv", "x" * 300 + ".csv", ""])
def test_path_traversal_upload_names_are_refused(name):
    with pytest.raises(DataError, match="is not allowed: upload names must be plain file names"):
        safe_upload_name(name)


@pytest.mark.parametrize("name", ["items.csv", "Beauty 2014 (v2).csv.gz", "données.jsonl", "a..b.csv"])
def test_plain_upload_names_pass(name):
    assert safe_upload_name(name) == name


# ------------------------------------------------------------------------------------------------ too small to quantize


def test_domain_too_small_to_quantize_core():
    from vqrec_core.codes import CodeConfig, build_codes
    from vqrec_core.text import get_encoder

    dom = load_domain(BAD / "tiny_items.csv", BAD / "tiny_interactions.csv")
    assert dom.n_items == 6
    emb = get_encoder("hash:16").encode(dom.titles())
    with pytest.raises(ConfigError, match="Too few training items for b=8: 6 training items cannot define M=256"):
        build_codes(emb, None, CodeConfig(b=8))
    with pytest.raises(ConfigError, match="Too few training items for b=2: 3 training items"):
        build_codes(emb[:3], None, CodeConfig())  # even the automatic smallest b=2 (M=4) needs 4 items


def test_domain_too_small_to_quantize_cli(tmp_path, capsys):
    emb = tmp_path / "emb.npy"
    rc = cli_main(["encode", "--items", str(BAD / "tiny_items.csv"), "--interactions",
                   str(BAD / "tiny_interactions.csv"), "--encoder", "hash:16", "--out", str(emb), "--no-cache",
                   "--quiet"])
    assert rc == 0 and np.load(emb).shape == (6, 16)
    capsys.readouterr()
    rc = cli_main(["codes", "--embeddings", str(emb), "--bits", "8", "--out", str(tmp_path / "codes")])
    out, err = capsys.readouterr()
    assert rc == 2 and "Too few training items for b=8" in err and "Traceback" not in out + err
    assert not (tmp_path / "codes" / "codes.npy").exists()


# ------------------------------------------------------------------------------------------------ checkpoints


@pytest.fixture
def saved_checkpoint(tmp_path):
    from vqrec_core.checkpoint import save_checkpoint
    from vqrec_core.models import Popularity

    folder = tmp_path / "ckpt"
    save_checkpoint(Popularity(np.arange(50, dtype=np.float32)), folder, meta={"domain": "x"})
    return folder


def test_intact_checkpoint_loads(saved_checkpoint):
    from vqrec_core.checkpoint import load_checkpoint

    model, meta = load_checkpoint(saved_checkpoint)
    assert model.n_items == 50 and meta == {"domain": "x"}


def test_truncated_checkpoint_is_refused(saved_checkpoint):
    from vqrec_core.checkpoint import load_checkpoint

    w = saved_checkpoint / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="truncated or modified"):
        load_checkpoint(saved_checkpoint)


def test_tampered_checkpoint_config_is_refused(saved_checkpoint):
    from vqrec_core.checkpoint import load_checkpoint

    c = saved_checkpoint / "config.json"
    c.write_text(c.read_text()[:-10])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(saved_checkpoint)


def test_pickle_disguised_as_checkpoint_is_never_unpickled(saved_checkpoint, tmp_path):
    """A torch.save (pickle) file renamed model.safetensors, with its hash recorded so the hash check passes:
    loading must refuse it without running the pickle (which would create a marker file)."""
    import torch

    from vqrec_core.checkpoint import load_checkpoint

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    w = saved_checkpoint / "model.safetensors"
    torch.save({"counts": Evil()}, w)
    cfg = json.loads((saved_checkpoint / "config.json").read_text())
    cfg["weights_sha256"] = hashlib.sha256(w.read_bytes()).hexdigest()
    (saved_checkpoint / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(saved_checkpoint)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- no unpickling anywhere

_UNSAFE = [
    (re.compile(r"\bimport pickle\b|\bfrom pickle\b|\bcPickle\b|\bdill\b|\bjoblib\.load\b"), "pickle module"),
    (re.compile(r"read_pickle\s*\("), "pd.read_pickle"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load(allow_pickle=True)"),
]


def _product_sources() -> list[Path]:
    files = list((PROJECT / "vqrec_core").glob("*.py")) + list((PROJECT / "pages").glob("*.py"))
    return files + [p for p in (PROJECT / "app.py", PROJECT / "app_support.py") if p.exists()]


def test_product_code_never_unpickles():
    offenders = []
    for path in _product_sources():
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            for rx, what in _UNSAFE:
                if rx.search(code):
                    offenders.append(f"{path.relative_to(PROJECT)}:{lineno}: {what}")
            if "torch.load(" in code and "weights_only=True" not in code:
                offenders.append(f"{path.relative_to(PROJECT)}:{lineno}: torch.load without weights_only=True")
    assert offenders == []


# ------------------------------------------------------------------------------------------------ parser paths


@pytest.mark.parametrize("raw", [
    b'item_id,title\r\n1,"Red, big\nlipstick"\r\n2,NA\r\n3,\r\n007,"say ""hi"""\r\n',
    b"\xef\xbb\xbfitem_id,title\n1,Caf\xc3\xa9\n2,null\n",
    b"item_id\ttitle\n1\tA\n\n2\tB\n",
])
def test_fast_and_fallback_csv_parsers_agree(tmp_path, monkeypatch, raw):
    """UTF-8 tables go through pyarrow's reader, everything else through pandas' C parser: same strings out."""
    kind = ".tsv" if b"\t" in raw else ".csv"
    p = tmp_path / f"t{kind}"
    p.write_bytes(raw)
    fast = data_mod._read_csv_arrow(raw, "\t" if kind == ".tsv" else ",")
    assert fast is not None
    df, _ = read_table(p)
    monkeypatch.setattr(data_mod, "_read_csv_arrow", lambda raw, sep: None)  # force pandas' C parser
    slow, _ = read_table(p)
    assert df.astype(object).equals(fast.astype(object))
    assert list(df.columns) == list(slow.columns) and df.astype(object).values.tolist() == slow.astype(
        object).values.tolist()
    assert all(isinstance(v, str) for v in df.to_numpy().ravel())  # never NaN: 'NA', 'null', '' stay text

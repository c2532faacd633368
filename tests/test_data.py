"""Data layer: every input format, column mapping, validation messages, the split (hand-checked), statistics."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from vqrec_core.data import (
    Domain,
    check_domain,
    detect_encoding,
    domain_stats,
    k_core,
    load_domain,
    read_table,
    split_leave_one_out,
)
from vqrec_core.errors import DataError

ITEMS = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["Alpha &amp; co", "Beta", "Gamma"]})
INTER = pd.DataFrame({"user_id": ["u1", "u1", "u1", "u2", "u2", "u2"], "item_id": ["a", "b", "c", "c", "b", "a"],
                      "timestamp": [10, 20, 30, 10, 20, 30]})


def _write(df: pd.DataFrame, path, kind: str):
    if kind == "csv":
        df.to_csv(path, index=False)
    elif kind == "tsv":
        df.to_csv(path, sep="\t", index=False)
    elif kind == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif kind == "parquet":
        df.to_parquet(path, index=False)
    elif kind == "csv.gz":
        path.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    return path


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "parquet", "csv.gz"])
def test_each_format_loads_the_same_domain(tmp_path, kind):
    ip = _write(ITEMS, tmp_path / f"items.{kind}", kind)
    lp = _write(INTER, tmp_path / f"inter.{kind}", kind)
    dom = load_domain(ip, lp, name="x")
    assert dom.items["item_id"].tolist() == ["a", "b", "c"]
    assert dom.items["text"].tolist() == ["Alpha & co", "Beta", "Gamma"]  # HTML unescaped
    assert dom.interactions["timestamp"].tolist() == [10, 20, 30, 10, 20, 30]
    assert dom.interactions["timestamp"].dtype == np.int64


def test_recbole_atomic_files(tmp_path):
    (tmp_path / "d.item").write_text("item_id:token\ttitle:token_seq\tbrand:token\na\tAlpha\tX\nb\tBeta\tY\n"
                                     "c\tGamma\tZ\n")
    (tmp_path / "d.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                      "u\ta\t5\t1\nu\tb\t4\t2\nu\tc\t3\t3\n")
    dom = load_domain(tmp_path / "d.item", tmp_path / "d.inter", text_cols=["title", "brand"])
    assert dom.items["text"].tolist() == ["Alpha X", "Beta Y", "Gamma Z"]
    assert dom.interactions["item_id"].tolist() == ["a", "b", "c"]


def test_column_mapping_with_unusual_names(tmp_path):
    items = pd.DataFrame({"sku": ["1", "2", "3"], "headline": ["A", "B", "C"], "blurb": ["x", "", "z"]})
    inter = pd.DataFrame({"customer": ["c"] * 3, "product": ["3", "1", "2"], "when": ["2020-01-03", "2020-01-01",
                                                                                        "2020-01-02"]})
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    items.to_csv(ip, index=False)
    inter.to_csv(lp, index=False)
    with pytest.raises(DataError, match="no item id column.*--item-id-col"):
        load_domain(ip, lp)
    dom = load_domain(ip, lp, item_id_col="sku", text_cols=["headline", "blurb"], user_col="customer",
                      inter_item_col="product", time_col="when")
    assert dom.items["text"].tolist() == ["A x", "B", "C z"]
    sp = split_leave_one_out(dom)
    # dates parsed and sorted: 1 (Jan 1) -> 2 (Jan 2) -> 3 (Jan 3)
    assert sp.user_items["c"].tolist() == [0, 1, 2]
    with pytest.raises(DataError, match="'nope' given as the user id is not in"):
        load_domain(ip, lp, item_id_col="sku", text_cols=["headline"], user_col="nope")


def test_latin1_file_is_detected_and_decoded(tmp_path):
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    ip.write_bytes("item_id,title\n1,Crème brûlée\n2,Café\n".encode("latin-1"))
    lp.write_text("user_id,item_id,timestamp\nu,1,1\nu,2,2\nu,1,3\n")
    assert detect_encoding(ip.read_bytes()) != "utf-8"
    dom, rep = check_domain(ip, lp)
    assert dom.items["text"].tolist() == ["Crème brûlée", "Café"]
    assert any("not UTF-8" in w for w in rep.warnings)
    # explicit encoding wins
    dom2 = load_domain(ip, lp, encoding="latin-1")
    assert dom2.items["text"].tolist()[1] == "Café"


def test_split_hand_checked_on_two_users(tiny_domain_files):
    ip, lp = tiny_domain_files
    dom = load_domain(*tiny_domain_files)
    sp = split_leave_one_out(dom, max_len=2)
    # items: a=0 b=1 c=2 d=3 ; model ids are +1. u1 = a b c d ; u2 = d c a ; u3 = a b (not evaluable)
    assert sp.test.user.tolist() == ["u1", "u2"]
    assert sp.test.seq.tolist() == [[2, 3], [4, 3]]  # u1: last 2 of a b c -> b c ; u2: d c
    assert sp.test.length.tolist() == [2, 2]
    assert sp.test.target.tolist() == [3, 0]  # d ; a
    assert sp.valid.seq.tolist() == [[1, 2], [4, 0]]  # u1: a b ; u2: d (left-aligned, 0-padded)
    assert sp.valid.length.tolist() == [2, 1]
    assert sp.valid.target.tolist() == [2, 2]  # c ; c
    # training prefixes: u1 (a -> b); u2 none (n=3); u3 (a -> b) since short users only feed training
    assert sp.train.user.tolist() == ["u1", "u3"]
    assert sp.train.seq.tolist() == [[1, 0], [1, 0]]
    assert sp.train.target.tolist() == [1, 1]
    # quantizer training items: u1 a b, u2 d, u3 a b -> c is only ever a valid/test item
    assert sp.train_item_mask.tolist() == [True, True, False, True]


def test_split_prefix_expansion_and_truncation():
    n = 60
    items = pd.DataFrame({"item_id": [str(i) for i in range(n)], "text": [f"t{i}" for i in range(n)]})
    inter = pd.DataFrame({"user_id": ["u"] * n, "item_id": [str(i) for i in range(n)], "timestamp": range(n)})
    sp = split_leave_one_out(Domain("x", items, inter), max_len=50)
    assert len(sp.train) == n - 3  # targets i_2 .. i_{n-2}
    assert sp.train.target.tolist() == list(range(1, n - 2))
    last = sp.train.subset([-1])
    assert last.length[0] == 50 and last.seq[0, 0] == (n - 3) - 50 + 1  # last 50 items kept
    assert sp.test.seq[0, -1] == n - 1  # history ends with i_{n-1} (index n-2, +1)
    assert np.all(sp.train.length <= 50) and np.all(sp.train.length >= 1)


def test_ties_keep_file_order(tmp_path):
    items = pd.DataFrame({"item_id": list("abcd"), "title": list("ABCD")})
    inter = pd.DataFrame({"user_id": ["u"] * 4, "item_id": list("dbca"), "timestamp": [5, 5, 5, 1]})
    dom = Domain("x", items, inter)
    assert split_leave_one_out(dom).user_items["u"].tolist() == [0, 3, 1, 2]  # a first (t=1), then d b c


def test_validation_errors_name_file_column_and_rows(tmp_path):
    ip, lp = tmp_path / "cat.csv", tmp_path / "log.csv"
    ITEMS.to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u"] * 4, "item_id": ["a", "zz", "b", "yy"], "timestamp": [1, 2, 3, 4]}).to_csv(
        lp, index=False)
    dom, rep = check_domain(ip, lp)
    assert dom is None and not rep.ok
    msg = rep.errors[0]
    assert "log.csv" in msg and "cat.csv" in msg and "'zz'" in msg and "'yy'" in msg and "rows 2, 4" in msg
    with pytest.raises(DataError, match="not in the catalog"):
        load_domain(ip, lp)


def test_errors_missing_text_and_bad_timestamps(tmp_path):
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    pd.DataFrame({"item_id": ["a", "b"], "title": ["", ""]}).to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "a"], "timestamp": [1, 2, 3]}).to_csv(lp, index=False)
    _, rep = check_domain(ip, lp)
    assert any("empty text" in e for e in rep.errors)

    pd.DataFrame({"item_id": ["a", "b"], "title": ["x", "y"]}).to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "a"], "timestamp": ["1", "soon", "3"]}).to_csv(
        lp, index=False)
    _, rep = check_domain(ip, lp)
    assert any("timestamp column 'timestamp'" in e and "rows 2" in e and "'soon'" in e for e in rep.errors)

    pd.DataFrame({"name": ["x", "y"]}).to_csv(ip, index=False)
    _, rep = check_domain(ip, lp)
    assert any("no item id column" in e for e in rep.errors)


def test_warnings_duplicates_empty_titles_short_users_no_time(tmp_path):
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    pd.DataFrame({"item_id": ["a", "a", "b", "c"], "title": ["A", "A2", "", "C"]}).to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u", "u", "u", "u", "v"], "item_id": ["a", "b", "b", "c", "a"]}).to_csv(lp, index=False)
    dom, rep = check_domain(ip, lp)
    assert dom is not None, rep.format()
    text = " ".join(rep.warnings)
    assert "more than once ('a')" in text and "different texts" in text
    assert "empty text" in text
    assert "fewer than 3 interactions ('v')" in text
    assert "no timestamp column" in text
    assert dom.items["item_id"].tolist() == ["a", "b", "c"] and dom.items["text"][0] == "A"  # first row kept


def test_duplicate_interactions_warned_and_dropped(tmp_path):
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    ITEMS.to_csv(ip, index=False)
    pd.concat([INTER, INTER.iloc[:2]]).to_csv(lp, index=False)
    dom, rep = check_domain(ip, lp)
    assert any("2 duplicate row(s)" in w for w in rep.warnings)
    assert len(dom.interactions) == len(INTER)


def test_no_evaluable_user_is_an_error(tmp_path):
    ip, lp = tmp_path / "i.csv", tmp_path / "l.csv"
    ITEMS.to_csv(ip, index=False)
    pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"], "timestamp": [1, 2, 3]}).to_csv(
        lp, index=False)
    _, rep = check_domain(ip, lp)
    assert any("No user" in e and "3 or more" in e for e in rep.errors)


def test_jsonl_broken_line_is_skipped_with_warning(tmp_path):
    p = tmp_path / "i.jsonl"
    p.write_text(json.dumps({"item_id": 1, "title": "x"}) + "\n{broken\n" + json.dumps({"item_id": 2, "title": "y"}))
    df, rep = read_table(p)
    assert df["item_id"].tolist() == ["1", "2"]
    assert any("lines 2" in w for w in rep.warnings)


def test_unsupported_and_empty_files(tmp_path):
    p = tmp_path / "x.xlsx"
    p.write_bytes(b"PK")
    with pytest.raises(DataError, match="unsupported type"):
        read_table(p)
    e = tmp_path / "e.csv"
    e.write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_table(e)
    h = tmp_path / "h.csv"
    h.write_text("item_id,title\n")
    with pytest.raises(DataError, match="no data rows"):
        read_table(h)


def test_numeric_ids_agree_across_files(tmp_path):
    ip, lp = tmp_path / "i.parquet", tmp_path / "l.csv"
    pd.DataFrame({"item_id": [1.0, 2.0, 3.0], "title": ["a", "b", "c"]}).to_parquet(ip)
    pd.DataFrame({"user_id": [7, 7, 7], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]}).to_csv(lp, index=False)
    dom = load_domain(ip, lp)
    assert dom.items["item_id"].tolist() == ["1", "2", "3"]


def test_k_core_and_stats(sample_paths):
    dom = load_domain(*sample_paths["toys"], name="toys")
    st = domain_stats(dom)
    assert st["users"] == dom.interactions["user_id"].nunique() and st["items"] == len(dom.items)
    assert st["interactions"] == len(dom.interactions) and st["seq_len_mean"] == pytest.approx(
        len(dom.interactions) / st["users"])
    k = k_core(dom, 8)
    counts_u = k.interactions.groupby("user_id").size()
    counts_i = k.interactions.groupby("item_id").size()
    assert counts_u.min() >= 8 and counts_i.min() >= 8 and len(k.interactions) < len(dom.interactions)
    assert set(k.items["item_id"]) == set(k.interactions["item_id"])


def test_sample_data_split_is_consistent(sample_paths):
    dom = load_domain(*sample_paths["beauty"])
    sp = split_leave_one_out(dom)
    n_u = dom.interactions["user_id"].nunique()
    assert len(sp.test) == len(sp.valid) == n_u  # 5-core: everyone evaluable
    assert len(sp.train) == len(dom.interactions) - 3 * n_u
    assert sp.train.seq.max() <= dom.n_items and sp.train.target.max() < dom.n_items
    # each test history ends with the valid target
    last = sp.test.seq[np.arange(len(sp.test)), sp.test.length - 1] - 1
    assert np.array_equal(last, sp.valid.target)

"""One streamlit AppTest per page (plus bad input and an empty workspace): key elements render, no exception.

Each test points VQREC_WORKSPACE at a temporary folder and uses the fast 'hash:64' encoder and the 'smoke' preset.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from vqrec_core import pipeline  # noqa: E402
from vqrec_core.store import MAX_UPLOAD_MB, open_workspace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture
def env(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "ws"
    monkeypatch.setenv("VQREC_WORKSPACE", str(root))
    monkeypatch.setenv("VQREC_ENCODER", "hash:64")
    monkeypatch.setenv("VQREC_SMOKE", "1")
    return root


@pytest.fixture
def empty_env(env) -> Path:
    ws = open_workspace(env)
    for d in ws.list_domains():
        ws.delete_domain(d)
    return env


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, str]:
    """A workspace with the samples and one finished smoke run beauty -> toys (hash encoder)."""
    import os

    root = tmp_path_factory.mktemp("trained_ws")
    old = os.environ.get("VQREC_SMOKE")
    os.environ["VQREC_SMOKE"] = "1"
    try:
        ws = open_workspace(root)
        rid = pipeline.start_training(ws, ["beauty"], "toys", ["pop", "text_knn", "vqrec_scratch", "vqrec_pretrained",
                                                               "vqrec_adapted"], "smoke", "hash:64")
        assert pipeline.wait_for(ws, rid, timeout=300)["status"] == "finished"
    finally:
        if old is None:
            os.environ.pop("VQREC_SMOKE", None)
    return root, rid


@pytest.fixture
def trained_env(trained, monkeypatch) -> tuple[Path, str]:
    monkeypatch.setenv("VQREC_WORKSPACE", str(trained[0]))
    monkeypatch.setenv("VQREC_ENCODER", "hash:64")
    monkeypatch.setenv("VQREC_SMOKE", "1")
    return trained


# ------------------------------------------------------------------------------------------------ Home


def test_home_shows_idea_domains_and_next_steps(env):
    at = page("app.py").run()
    no_exception(at)
    assert at.title[0].value == "VQ-Rec Studio"
    assert "text → code → representation" in texts(at.markdown)
    subs = [s.value for s in at.subheader]
    assert subs == ["Domains in the workspace", "Computed so far", "Where to go next"]
    doms = at.dataframe[0].value
    assert sorted(doms["domain"]) == ["beauty", "toys"] and (doms["items"] > 1900).all()


def test_home_with_empty_workspace(empty_env):
    at = page("app.py").run()
    no_exception(at)
    assert "no domains" in texts(at.info)


# ------------------------------------------------------------------------------------------------ Data


def test_data_lists_domains_with_report_and_preview(env):
    at = page("pages/1_Data.py").run()
    no_exception(at)
    assert at.selectbox(key="data_domain").value == "beauty"
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["items", "users", "interactions"]
    assert at.metric[0].value == "1,988"
    assert f"{MAX_UPLOAD_MB} MB per file" in texts(at.info)
    previews = [d.value for d in at.dataframe]
    assert any(list(df.columns) == ["item_id", "text"] for df in previews)


def test_data_upload_check_and_save(env):
    at = page("pages/1_Data.py").run()
    items = b"sku,name,brand\nA1,Red lipstick,Acme\nA2,Blue lipstick,Acme\nA3,Toy truck,Bo\nA4,Toy car,Bo\n"
    log = b"customer;sku;when\nu1;A1;1\nu1;A2;2\nu1;A3;3\nu2;A4;1\nu2;A3;2\nu2;A1;3\n"
    at.text_input(key="new_name").set_value("my_shop")
    at.file_uploader(key="items_upload").set_value(("../../catalog.csv", items, "text/csv"))
    at.file_uploader(key="inter_upload").set_value(("log.csv", log, "text/csv"))
    at.run()
    no_exception(at)
    assert at.selectbox(key="map_item_id").value == "sku"
    assert at.multiselect(key="map_text").value == ["name"]
    at.selectbox(key="map_user").set_value("customer")
    at.selectbox(key="map_time").set_value("when")
    at.multiselect(key="map_text").set_value(["name", "brand"])
    at.button(key="check_domain").click().run()
    no_exception(at)
    assert not at.error, texts(at.error)
    assert "delimiter" in texts(at.warning)  # ';' in a .csv is read, with a warning
    at.button(key="save_domain").click().run()
    no_exception(at)
    assert "Saved the domain 'my_shop'" in texts(at.success)
    ws = open_workspace(env)
    assert "my_shop" in ws.list_domains()
    assert ws.load_domain("my_shop").titles()[0] == "Red lipstick Acme"
    assert all(p.resolve().is_relative_to(ws.uploads_dir.resolve()) for p in ws.uploads_dir.rglob("*.csv"))


@pytest.mark.parametrize("fname,content,expect", [
    ("items.csv", b"", "empty"),
    ("items.exe", b"MZ\x90\x00binary", "unsupported"),
    ("items.csv", b"\x00\x01\x02\x03" * 100, "item catalog"),
])
def test_data_bad_upload_is_a_readable_error(env, fname, content, expect):
    at = page("pages/1_Data.py").run()
    at.file_uploader(key="items_upload").set_value((fname, content, "application/octet-stream"))
    at.run()
    no_exception(at)
    assert expect in texts(at.error).lower()


def test_data_validation_errors_block_saving(env):
    at = page("pages/1_Data.py").run()
    at.text_input(key="new_name").set_value("broken")
    at.file_uploader(key="items_upload").set_value(("items.csv", b"item_id,title\na,A\nb,B\n", "text/csv"))
    at.file_uploader(key="inter_upload").set_value(
        ("log.csv", b"user_id,item_id,timestamp\nu,a,1\nu,zzz,2\nu,b,3\n", "text/csv"))
    at.run()
    at.button(key="check_domain").click().run()
    no_exception(at)
    assert "not in the catalog" in texts(at.error)
    assert not [b for b in at.button if b.key == "save_domain"]


# ------------------------------------------------------------------------------------------------ Codes


def test_codes_build_and_show(env):
    at = page("pages/2_Codes.py").run()
    no_exception(at)
    assert at.text_input(key="codes_encoder").value == "hash:64"
    at.selectbox(key="codes_D").set_value(4)
    at.selectbox(key="codes_b").set_value(4)
    at.checkbox(key="codes_umap").set_value(False)
    at.button[0].click().run()  # the form's "Apply settings"
    assert "not been built" in texts(at.info)
    at.button(key="build_codes").click().run()
    no_exception(at)
    assert "Codes for beauty, toys" in texts(at.success)
    subs = [s.value for s in at.subheader]
    assert "Code diagnostics" in subs and "Domain gap" in subs and "Downloads" in subs
    codes = at.dataframe[0].value
    assert set(codes["domain"]) == {"beauty", "toys", "joint"} and (codes["M"] == 16).all()
    assert len(at.get("plotly_chart")) >= 4
    at2 = page("pages/2_Codes.py").run()  # a reload reads the saved result: no button needed
    at2.selectbox(key="codes_D").set_value(4)
    at2.selectbox(key="codes_b").set_value(4)
    at2.checkbox(key="codes_umap").set_value(False)
    at2.button[0].click().run()
    assert "Codes for beauty, toys" in texts(at2.success)


def test_codes_with_empty_workspace(empty_env):
    at = page("pages/2_Codes.py").run()
    no_exception(at)
    assert "No domains" in texts(at.info)


def test_codes_bad_setting_is_a_readable_error(env):
    at = page("pages/2_Codes.py").run()
    at.selectbox(key="codes_b").set_value(8)  # M=256 codewords, fine; D=32 with a 64-d encoder is fine too
    at.text_input(key="codes_encoder").set_value("no-such-encoder")
    at.button[0].click().run()
    at.button(key="build_codes").click().run()
    no_exception(at)
    assert "Unknown text encoder" in texts(at.error)


# ------------------------------------------------------------------------------------------------ Train


def test_train_starts_a_run_and_shows_it(env):
    at = page("pages/3_Train.py").run()
    no_exception(at)
    assert at.radio(key="train_preset").value == "smoke"
    at.multiselect(key="train_models").set_value(["pop", "text_knn"])
    at.button[0].click().run()
    no_exception(at)
    assert "Started run" in texts(at.success)
    rid = at.session_state["train_run"]
    ws = open_workspace(env)
    assert pipeline.wait_for(ws, rid, timeout=300)["status"] == "finished"
    at.run()
    no_exception(at)
    assert "finished" in texts(at.success)
    assert at.dataframe[0].value["model"].tolist() == ["pop", "text_knn"]


def test_train_refuses_same_source_and_target(env):
    at = page("pages/3_Train.py").run()
    at.multiselect(key="train_sources").set_value(["toys"])
    at.selectbox(key="train_target").set_value("toys")
    at.button[0].click().run()
    no_exception(at)
    assert "also a source" in texts(at.error)


def test_train_with_empty_workspace(empty_env):
    at = page("pages/3_Train.py").run()
    no_exception(at)
    assert "needs two domains" in texts(at.info)


def test_train_shows_interrupted_run(env):
    ws = open_workspace(env)
    rid = ws.create_run({"sources": ["beauty"], "target": "toys", "preset": "quick"})
    ws.update_status(rid, proc_started=1.0)  # a previous server process
    at = page("pages/3_Train.py").run()
    no_exception(at)
    assert "interrupted" in texts(at.warning)


# ------------------------------------------------------------------------------------------------ Results


def test_results_show_metrics_gain_and_bias(trained_env):
    at = page("pages/4_Results.py").run()
    no_exception(at)
    m = at.dataframe[0].value
    assert set(m["model"]) == {"pop", "text_knn", "vqrec_scratch", "vqrec_pretrained", "vqrec_adapted"}
    gain = at.dataframe[1].value
    assert set(gain["baseline"]) >= {"vqrec_scratch", "vqrec_pretrained"}
    assert "Text-similarity bias before vs after adaptation" in texts(at.markdown)
    assert len(at.get("plotly_chart")) >= 4
    assert len(at.get("download_button")) >= 2


def test_results_with_no_runs(env):
    at = page("pages/4_Results.py").run()
    no_exception(at)
    assert "No trained models yet" in texts(at.info)


# ------------------------------------------------------------------------------------------------ Inspect


def test_inspect_user_and_typed_sequence(trained_env):
    at = page("pages/5_Inspect.py").run()
    no_exception(at)
    wide = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert len(wide) == 10 and {"vqrec_adapted", "text_knn"} <= set(wide.columns)
    assert "Moved **in** by adaptation" in texts(at.markdown)
    at.radio(key="inspect_mode").set_value("Type a sequence").run()
    no_exception(at)
    assert "Pick one or more items" in texts(at.info)
    at.text_input(key="inspect_query").set_value("car").run()
    opts = at.multiselect(key="inspect_seq").options
    assert opts and all("car" in o.lower() for o in opts[:20])
    at.multiselect(key="inspect_seq").select(opts[0]).run()
    no_exception(at)
    hist = at.dataframe[0].value
    assert len(hist) == 1 and "car" in hist["title"].iloc[0].lower()


def test_inspect_with_no_runs(env):
    at = page("pages/5_Inspect.py").run()
    no_exception(at)
    assert "No trained models yet" in texts(at.info)

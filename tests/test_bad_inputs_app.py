"""Issue 7, "the app shows it": every case of tests/test_bad_inputs.py's table uploaded through the Data page
(pages/1_Data.py, uploaders ``items_upload`` / ``inter_upload``, button ``check_domain``) shows the same message as
``st.error`` / ``st.warning`` and never an exception.

Differences from the CLI, by design of the page: a file that cannot be read at all is reported right after the
upload; the column mapping is chosen in the page (pre-filled from the file's columns), so the "missing column" cases
become a choice among the columns the file has, not an error; an upload name with folders is reduced to its last
part and stored inside the workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.test_bad_inputs import BAD, CASES, Case  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA_PAGE = next(iter(sorted((ROOT / "pages").glob("*Data*.py"))), None)
pytestmark = pytest.mark.skipif(DATA_PAGE is None, reason="the app's Data page does not exist")

READ_ERRORS = {"empty file", "header only", "truncated gzip", "ragged rows", "binary file named .csv",
               "unsupported file type"}
MAPPED_IN_PAGE = {"missing item id column": "code", "missing text column": "price", "missing user column": "buyer",
                  "missing log item column": "thing"}  # case -> the file's column the page offers instead
NOT_APPLICABLE = {"file does not exist"}  # an upload always exists
APP_CASES = [c for c in CASES if c.id not in NOT_APPLICABLE]


@pytest.fixture(scope="module")
def workspace_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws_bad_inputs")
    old = {k: os.environ.get(k) for k in ("VQREC_WORKSPACE", "VQREC_ENCODER")}
    os.environ["VQREC_WORKSPACE"] = str(root)
    os.environ["VQREC_ENCODER"] = "hash:64"
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _upload(items: tuple[str, bytes], log: tuple[str, bytes]) -> AppTest:
    at = AppTest.from_file(str(DATA_PAGE), default_timeout=120)
    at.run()
    at.file_uploader(key="items_upload").set_value((items[0], items[1], "application/octet-stream"))
    at.file_uploader(key="inter_upload").set_value((log[0], log[1], "application/octet-stream"))
    at.run()
    return at


def _shown(elements, expect: tuple[str, ...]) -> bool:
    return any(all(e in str(el.value) for e in expect) for el in elements)


def _messages(at: AppTest) -> str:
    return "\n".join(f"{kind}: {el.value}" for kind, els in (("error", at.error), ("warning", at.warning))
                     for el in els)


@pytest.mark.parametrize("case", APP_CASES, ids=[c.id for c in APP_CASES])
def test_data_page_shows_the_message(workspace_env, case: Case):
    at = _upload((case.items, (BAD / case.items).read_bytes()), (case.log, (BAD / case.log).read_bytes()))
    assert not at.exception, [e.value for e in at.exception]
    if case.id in READ_ERRORS:
        assert _shown(at.error, case.expect), _messages(at)
        assert not [b for b in at.button if b.key == "check_domain"]  # nothing to map until the file is fixed
        return
    at.button(key="check_domain").click().run()
    assert not at.exception, [e.value for e in at.exception]
    if case.id in MAPPED_IN_PAGE:
        options = [o for sb in at.selectbox for o in sb.options] + [o for ms in at.multiselect for o in ms.options]
        assert MAPPED_IN_PAGE[case.id] in options  # the user picks among the file's real columns
        assert not at.error, _messages(at)
    elif case.outcome == "error":
        assert _shown(at.error, case.expect), _messages(at)
        assert not [b for b in at.button if b.key == "save_domain"]  # an unusable domain cannot be saved
    elif case.outcome == "warning":
        assert _shown(at.warning, case.expect), _messages(at)
        assert not at.error and [b for b in at.button if b.key == "save_domain"], _messages(at)
    else:
        assert not at.error and not at.warning and any("No problems found" in s.value for s in at.success)


def test_oversized_upload_is_refused_with_the_limit(workspace_env):
    from vqrec_core.data import MAX_FILE_BYTES

    big = b"item_id,title\n" + b"1,x\n" * ((MAX_FILE_BYTES + 2**20) // 4)
    at = _upload(("huge.csv", big), (GOOD := "good_interactions.csv", (BAD / GOOD).read_bytes()))
    assert not at.exception, [e.value for e in at.exception]
    assert _shown(at.error, ("huge.csv", "100 MB")), _messages(at)


def test_path_traversal_upload_name_stays_inside_the_workspace(workspace_env):
    outside = workspace_env.parent / "x.csv"
    at = _upload(("../../x.csv", (BAD / "good_items.csv").read_bytes()),
                 ("../good_interactions.csv", (BAD / "good_interactions.csv").read_bytes()))
    assert not at.exception, [e.value for e in at.exception]
    assert any("'../../x.csv' was stored as 'x.csv'" in w.value for w in at.warning), _messages(at)
    assert not outside.exists() and not (workspace_env / "x.csv").exists()
    stored = list((workspace_env / "uploads").rglob("x.csv"))
    assert stored and all(p.resolve().is_relative_to(workspace_env.resolve() / "uploads") for p in stored)
    at.button(key="check_domain").click().run()
    assert not at.error and any("No problems found" in s.value for s in at.success), _messages(at)

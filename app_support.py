"""Streamlit helpers shared by app.py and pages/*: the workspace handle, cached loaders, progress bars, errors.

Only UI glue lives here; every computation is a call into ``vqrec_core`` (mostly ``store`` and ``pipeline``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from vqrec_core.cliargs import default_workspace
from vqrec_core.errors import VQRecError
from vqrec_core.store import Workspace, open_workspace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@st.cache_resource(show_spinner="Preparing the workspace (first start registers the sample domains)…")
def _workspace(root: str) -> Workspace:
    return open_workspace(root)


def workspace() -> Workspace:
    """The workspace of $VQREC_WORKSPACE (or ./workspace); the sample domains are registered on first start."""
    root = str(Path(default_workspace()).resolve())
    ws = _workspace(root)
    if not ws.root.exists():  # deleted while the server ran: recreate
        _workspace.clear()
        ws = _workspace(root)
    return ws


def encoder(ws: Workspace) -> str:
    return ws.settings()["encoder"]


@st.cache_resource(show_spinner="Loading the domain…", max_entries=16)
def _domain(root: str, name: str, version: str):
    return Workspace(root).load_domain(name)


def load_domain(ws: Workspace, name: str):
    """A stored domain, cached per (workspace, name, stored version): re-uploading a domain reloads it."""
    return _domain(str(ws.root), name, ws.domain_meta(name).get("version", ""))


@st.cache_resource(show_spinner="Splitting and encoding the domain…", max_entries=16)
def _domain_data(root: str, name: str, version: str, enc: str, max_len: int):
    from vqrec_core.pipeline import load_domain_data

    return load_domain_data(Workspace(root), name, enc, max_len=max_len)


def domain_data(ws: Workspace, name: str, enc: str, max_len: int = 50):
    """pipeline.LoadedDomain (domain, split, text vectors), cached in the server process."""
    return _domain_data(str(ws.root), name, ws.domain_meta(name).get("version", ""), enc, int(max_len))


def show_error(err: BaseException, what: str = "") -> None:
    """A readable message for a user error; an unexpected error is summarised in one sentence, never a traceback."""
    prefix = f"{what}: " if what else ""
    if isinstance(err, VQRecError):
        st.error(prefix + str(err))
    else:
        st.error(f"{prefix}an unexpected error occurred ({type(err).__name__}: {err}). Your saved work is not "
                 "affected; please report this message.")


class ProgressBar:
    """A ``progress(fraction, message)`` callback drawing an st.progress bar with elapsed time and ETA."""

    def __init__(self, label: str):
        self.t0 = time.time()
        self.bar = st.progress(0.0, text=label)
        self.label = label

    def __call__(self, frac: float, msg: str = "") -> None:
        frac = min(1.0, max(0.0, float(frac)))
        el = time.time() - self.t0
        eta = f", about {fmt_seconds(el * (1 - frac) / frac)} left" if 0.02 < frac < 1 else ""
        self.bar.progress(frac, text=f"{self.label} — {msg} ({fmt_seconds(el)} elapsed{eta})")

    def done(self) -> None:
        self.bar.empty()


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def run_with_progress(label: str, fn: Callable, *args, **kwargs):
    """Call ``fn(*args, progress=..., **kwargs)`` under a progress bar; show user errors; return result or None."""
    bar = ProgressBar(label)
    try:
        out = fn(*args, progress=bar, **kwargs)
    except VQRecError as e:
        bar.done()
        show_error(e)
        return None
    except Exception as e:  # noqa: BLE001 - never a traceback in the page
        bar.done()
        show_error(e, label)
        return None
    bar.done()
    return out


def domain_gap_panel(table) -> None:
    """The domain-gap figure (classifier accuracy and same-domain neighbours per space) beside its table."""
    from vqrec_core import figures

    fig_col, table_col = st.columns([3, 2])
    fig_col.plotly_chart(figures.domain_gap_figure(table), key="fig_gap")
    table_col.dataframe(table, hide_index=True, width="stretch")


def sidebar(ws: Workspace) -> None:
    with st.sidebar:
        st.caption(f"Workspace: `{ws.root}`")
        st.caption(f"Text encoder: `{encoder(ws)}` · {len(ws.list_domains())} domain(s)")


def setup_page(title: str, icon: str = ":material/explore:") -> Workspace:
    st.set_page_config(page_title=f"{title} · VQ-Rec Studio", page_icon=icon, layout="wide")
    ws = workspace()
    sidebar(ws)
    return ws

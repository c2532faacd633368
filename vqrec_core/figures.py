"""Plotly figures of the analysis tables, and an offline HTML writer (no CDN: one shared local plotly.min.js).

Figures take the DataFrames built by ``analysis`` / ``geometry`` / ``bias`` and hold no logic of their own, so the
app can show the same figures with ``st.plotly_chart`` and the CLI can write them to disk.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .fsutil import atomic_write_text

PLOTLY_JS = "plotly.min.js"


def entropy_figure(digits: pd.DataFrame):
    """Per-digit codeword entropy (bits) per domain, against the log2 M maximum."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for dom, part in digits.groupby("domain", sort=False):
        fig.add_trace(go.Bar(x=part["digit"], y=part["entropy_bits"], name=str(dom),
                             customdata=part["used_codewords"],
                             hovertemplate="digit %{x}: %{y:.2f} bits, %{customdata} codewords used"))
    fig.add_hline(y=float(digits["max_entropy_bits"].max()), line_dash="dash", annotation_text="log2 M (uniform use)")
    fig.update_layout(title="Codeword usage entropy per digit", xaxis_title="digit", yaxis_title="entropy (bits)",
                      barmode="group", height=420)
    return fig


def uniformity_figures(table: pd.DataFrame) -> list:
    """Uniformity (lower = more uniform) and mean nearest-neighbour cosine per space and domain."""
    import plotly.graph_objects as go

    figs = []
    for col, title, ytitle in (("uniformity", "Uniformity log E[exp(-2||x-y||²)] (lower = more uniform)",
                                "uniformity"),
                               ("mean_nn_cos", "Mean cosine to the nearest other item (lower = more distinguishable)",
                                "mean NN cosine")):
        fig = go.Figure()
        for space, part in table.groupby("space", sort=False):
            fig.add_trace(go.Bar(x=part["domain"], y=part[col], name=str(space)))
        if col == "uniformity":
            ref = table.groupby("domain", sort=False)["uniformity_sphere"].min()
            fig.add_trace(go.Scatter(x=ref.index, y=ref.values, mode="markers", name="uniform on the sphere",
                                     marker={"symbol": "line-ew-open", "size": 30}))
        fig.update_layout(title=title, barmode="group", yaxis_title=ytitle, height=420)
        figs.append(fig)
    return figs


def domain_gap_figure(gap: pd.DataFrame):
    """Per space: cross-validated balanced accuracy of a linear domain classifier and the share of each item's 10
    nearest neighbours from its own domain, with the chance level."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=gap["space"], y=gap["balanced_accuracy"], name="linear classifier (balanced acc.)",
                           error_y={"type": "data", "array": gap["balanced_accuracy_std"]},
                           customdata=gap["mean_centroid_cos"],
                           hovertemplate="%{x}: %{y:.3f} (centroid cosine %{customdata:.3f})"))
    if "nn10_same_domain" in gap:
        fig.add_trace(go.Bar(x=gap["space"], y=gap["nn10_same_domain"], name="10-NN from the same domain"))
    fig.add_hline(y=float(gap["chance"].iloc[0]), line_dash="dash", annotation_text="chance")
    fig.update_layout(title="How well the domains can be told apart (lower = smaller gap)", barmode="group",
                      yaxis_title="accuracy / share", yaxis_range=[0, 1.02], height=420)
    return fig


def bias_figures(per_user: pd.DataFrame, domain: str, K: int) -> list:
    """Box plots over users: mean text cosine of the top-K to the last item, and overlap@K with Text-kNN."""
    import plotly.graph_objects as go

    figs = []
    cos = go.Figure()
    for model, part in per_user.groupby("model", sort=False):
        cos.add_trace(go.Box(y=part["text_cos"], name=str(model), boxmean=True))
    if "target_cos" in per_user:
        ref = per_user[per_user["model"] == per_user["model"].iloc[0]]["target_cos"]
        cos.add_trace(go.Box(y=ref, name="true next item", boxmean=True, marker_color="grey"))
    cos.update_layout(title=f"{domain}: text cosine of the top-{K} to the last history item (per user)",
                      yaxis_title="mean cosine", showlegend=False, height=460)
    figs.append(cos)
    if "overlap" in per_user:
        ov = go.Figure()
        for model, part in per_user.groupby("model", sort=False):
            ov.add_trace(go.Box(y=part["overlap"], name=str(model), boxmean=True))
        ov.update_layout(title=f"{domain}: overlap@{K} with Text-kNN (per user)", yaxis_title=f"overlap@{K}",
                         showlegend=False, height=460)
        figs.append(ov)
    return figs


def write_html(figs: list, path: str | Path, title: str = "") -> Path:
    """One HTML page with the figures, loading ``plotly.min.js`` from the same folder (written once, offline)."""
    from plotly.offline import get_plotlyjs

    path = Path(path)
    js = path.parent / PLOTLY_JS
    if not js.exists():
        atomic_write_text(js, get_plotlyjs())
    divs = "\n".join(f.to_html(full_html=False, include_plotlyjs=False) for f in figs)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<script src='{PLOTLY_JS}'></script></head><body>\n{divs}\n</body></html>\n")
    return atomic_write_text(path, page)

"""Results: metrics across models and runs, transfer gain, domain gap, text-similarity bias before vs after."""

import plotly.graph_objects as go
import streamlit as st

from app_support import domain_gap_panel, run_with_progress, setup_page
from vqrec_core import figures, pipeline

ws = setup_page("Results", ":material/bar_chart:")
st.title("Results")
st.caption("Test metrics of the best-validation epoch, full ranking over the whole target catalog (history items "
           "not masked). Recall@K = share of users whose true next item is in the top K.")

metrics = pipeline.all_metrics(ws)
if metrics.empty:
    st.info("No trained models yet. Start a run on the **Train** page; its results appear here as each model "
            "finishes.")
    st.stop()

runs = list(dict.fromkeys(metrics["run"]))
chosen = st.multiselect("Runs", runs, default=runs[:3], key="results_runs",
                        format_func=lambda r: f"{r} ({metrics.loc[metrics['run'] == r, 'status'].iloc[0]})")
metric = st.selectbox("Metric for the charts", ["ndcg@10", "recall@10", "ndcg@50", "recall@50"], key="results_metric")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()
m = metrics[metrics["run"].isin(chosen)]

st.subheader("Metrics")
st.dataframe(m, hide_index=True, width="stretch")
st.download_button("Download the metrics (CSV)", m.to_csv(index=False).encode(), file_name="metrics.csv",
                   mime="text/csv", key="dl_metrics")
fig = go.Figure()
for run, part in m.groupby("run", sort=False):
    fig.add_trace(go.Bar(x=part["model"], y=part[metric], name=f"{part['source'].iloc[0]} → {part['target'].iloc[0]}"
                                                                 f" ({run[-8:]})"))
fig.update_layout(title=f"Test {metric} per model", barmode="group", yaxis_title=metric, height=420)
st.plotly_chart(fig, key="fig_metrics")

st.subheader("Transfer gain")
st.caption("Relative gain of an adapted model over a model trained on the target alone (or over the same model "
           "before adaptation): (model − baseline) / baseline.")
gain = pipeline.transfer_gain(m, metric)
if gain.empty:
    st.info("The chosen runs lack the pairs needed (e.g. vqrec_adapted and vqrec_scratch).")
else:
    st.dataframe(gain, hide_index=True, width="stretch")
    g = go.Figure(go.Bar(x=gain["model"] + " vs " + gain["baseline"], y=gain["relative gain"],
                         text=[f"{v:+.0%}" for v in gain["relative gain"]], marker_color=[
                             "#2a9d8f" if v >= 0 else "#e76f51" for v in gain["relative gain"]]))
    g.update_layout(title=f"Relative {metric} gain", yaxis_tickformat="+.0%", height=380)
    st.plotly_chart(g, key="fig_gain")

# ------------------------------------------------------------------------------------------------ per-run analysis
st.subheader("Domain gap and text-similarity bias")
run_id = st.selectbox("Run to analyse", chosen, key="results_run")
saved = pipeline.load_results_analysis(ws, run_id)
if saved is None:
    st.info("This run has not been analysed yet (runs are analysed automatically when they finish).")
    if st.button("Analyse this run", key="analyse_run", type="primary"):
        if run_with_progress("Analysing the run", pipeline.run_results_analysis, ws, run_id) is not None:
            st.rerun()
    st.stop()

tables, meta = saved
for note in meta.get("notes", []):
    st.caption(f"note: {note}")
if "domain_gap" in tables:
    st.markdown("**Domain gap between the run's domains** (same items in text space and in code space)")
    domain_gap_panel(tables["domain_gap"])

if "bias_before_after" in tables:
    st.markdown("**Text-similarity bias before vs after adaptation** (mean over target users; lower text cosine and "
                "overlap = less reliance on look-alike titles)")
    st.dataframe(tables["bias_before_after"], hide_index=True, width="stretch")
if "bias_summary" in tables:
    st.markdown("**Bias per model**: mean text cosine of the top-10 to the last history item, overlap@10 with "
                "Text-kNN, and the same cosine for the true next item (target_cos) for reference")
    st.dataframe(tables["bias_summary"], hide_index=True, width="stretch")
per_user = [k for k in tables if k.startswith("bias_users_")]
for k in per_user:
    dom = k[len("bias_users_"):]
    figs = figures.bias_figures(tables[k], dom, 10)
    cols = st.columns(len(figs))
    for i, (c, f) in enumerate(zip(cols, figs, strict=True)):
        c.plotly_chart(f, key=f"fig_bias_{dom}_{i}")
dl = [k for k in ("bias_summary", "bias_before_after", "domain_gap") if k in tables]
cols = st.columns(max(1, len(dl)))
for c, k in zip(cols, dl, strict=False):
    c.download_button(f"{k} (CSV)", tables[k].to_csv(index=False).encode(), file_name=f"{k}.csv", mime="text/csv",
                      key=f"dl_{k}")

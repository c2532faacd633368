"""Train: pre-train on source domain(s), adapt to a target, train the baselines; live progress, curves, stop."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_support import fmt_seconds, setup_page, show_error
from vqrec_core import pipeline
from vqrec_core.errors import VQRecError

ws = setup_page("Train", ":material/model_training:")
st.title("Train")
st.caption("Pre-train VQ-Rec and the text-adaptor model on the source domain(s), adapt both to the target, and train "
           "the baselines on the same target split. Runs continue in the background: you can leave this page, and "
           "every finished model is saved to the workspace at once.")

names = ws.list_domains()
if len(names) < 2:
    st.info("Training needs two domains (a source and a target). Add one on the **Data** page.")
else:
    presets = pipeline.train_presets()
    rows = pipeline.model_rows()
    with st.form("train_form"):
        c1, c2 = st.columns(2)
        sources = c1.multiselect("Source domain(s) to pre-train on", names, default=names[:1], key="train_sources")
        target = c2.selectbox("Target domain", names, index=1, key="train_target")
        models = st.multiselect("Models", list(rows), default=list(pipeline.DEFAULT_ROWS), key="train_models",
                                format_func=lambda r: f"{r} — {rows[r]}")
        preset = st.radio("Preset", list(presets), format_func=lambda p: presets[p], key="train_preset",
                          index=list(presets).index("smoke") if "smoke" in presets else 0)
        submitted = st.form_submit_button("Start training", type="primary")
    if submitted:
        try:
            run_id = pipeline.start_training(ws, sources, target, models, preset, ws.settings()["encoder"])
            st.session_state["train_run"] = run_id
            st.success(f"Started run {run_id}.")
        except VQRecError as e:
            show_error(e)

# ------------------------------------------------------------------------------------------------ runs
st.subheader("Runs")
runs = ws.list_runs()
if not runs:
    st.info("No runs yet.")
    st.stop()

ids = [r["run_id"] for r in runs]
default = st.session_state.get("train_run")
idx = ids.index(default) if default in ids else 0
run_id = st.selectbox("Run (newest first)", ids, index=idx, key="train_run_select")


def curves(state: dict) -> None:
    """Training loss per step and validation NDCG@10 per epoch, one line per phase."""
    steps, epochs = pd.DataFrame(state.get("steps", [])), pd.DataFrame(state.get("epochs", []))
    c1, c2 = st.columns(2)
    if len(steps):
        fig = go.Figure()
        for phase, part in steps.groupby("phase", sort=False):
            fig.add_trace(go.Scatter(y=part["loss"], mode="lines", name=str(phase) or "training"))
        fig.update_layout(title="Training loss per step", xaxis_title="step", yaxis_title="loss", height=340)
        c1.plotly_chart(fig, key=f"loss_{len(steps)}")
    elif len(epochs):
        fig = go.Figure()
        for phase, part in epochs.groupby("phase", sort=False):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["loss"], mode="lines+markers", name=str(phase)))
        fig.update_layout(title="Training loss per epoch", xaxis_title="epoch", yaxis_title="loss", height=340,
                          xaxis_dtick=1)
        c1.plotly_chart(fig, key=f"eloss_{len(epochs)}")
    else:
        c1.caption("The loss curve appears after the first training step.")
    if len(epochs) and epochs["valid_ndcg@10"].notna().any():
        fig = go.Figure()
        for phase, part in epochs.groupby("phase", sort=False):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["valid_ndcg@10"], mode="lines+markers",
                                     name=str(phase)))
        fig.update_layout(title="Validation NDCG@10 per epoch", xaxis_title="epoch", yaxis_title="NDCG@10",
                          height=340, xaxis_dtick=1)
        c2.plotly_chart(fig, key=f"valid_{len(epochs)}")
    else:
        c2.caption("Validation NDCG@10 appears after the first epoch.")


def run_view(run_id: str, live: bool) -> None:
    st_ = ws.run_status(run_id)
    state = pipeline.live_state(ws, run_id)
    s = st_.get("status")
    if s == "running":
        frac = float(state.get("frac", 0.0))
        eta = state.get("eta_s")
        st.progress(min(1.0, frac), text=f"{100 * frac:.0f}% · {fmt_seconds(state.get('elapsed_s'))} elapsed"
                                         + (f" · about {fmt_seconds(eta)} left" if eta else "")
                                         + f" · {state.get('message', '')}")
        if st.button("Stop this run", key=f"stop_{run_id}", type="primary"):
            if pipeline.request_stop(ws, run_id):
                st.warning("Stop requested: the run ends after the current step; finished models stay saved.")
            else:
                st.error("This run is not running in this server process, so it cannot be stopped from here.")
    else:
        box = {"finished": st.success, "stopped": st.warning, "failed": st.error, "interrupted": st.warning}
        box.get(s, st.info)(f"Run {run_id}: **{s}** — {st_.get('message', '')}")
    curves(state)
    metrics = pipeline.run_metrics(ws, run_id)
    if len(metrics):
        st.markdown("**Test metrics of the models finished so far**")
        st.dataframe(metrics, hide_index=True, width="stretch")
    with st.expander("Run log"):
        st.code("\n".join(state.get("log", [])[-200:]) or "(empty)")
    if live and s != "running":
        st.rerun()  # the run ended: redraw the whole page in its final state


status_now = ws.run_status(run_id)
if status_now.get("status") == "running":
    st.fragment(run_every=1.5)(run_view)(run_id, True)
else:
    run_view(run_id, False)
    cfg = status_now.get("config") or next((r["config"] for r in runs if r["run_id"] == run_id), {})
    st.caption(f"Direction: {'+'.join(cfg.get('sources', []))} → {cfg.get('target')} · preset {cfg.get('preset')} · "
               f"encoder {cfg.get('encoder')}")
    with st.expander("Delete this run"):
        if st.button("Delete run", key="delete_run"):
            try:
                ws.delete_run(run_id)
                st.session_state.pop("train_run", None)
                st.rerun()
            except VQRecError as e:
                show_error(e)

"""Inspect: one user's history (or a typed sequence), the true next item, and every model's top-K side by side."""

import numpy as np
import streamlit as st

from app_support import domain_data, setup_page, show_error
from vqrec_core import pipeline
from vqrec_core.errors import VQRecError

ws = setup_page("Inspect", ":material/search:")
st.title("Inspect")
st.caption("Every model's top-K after the same history, with each item's text cosine to the last history item "
           "(high = a title look-alike). ✔ marks the true next item.")


@st.cache_resource(max_entries=64, show_spinner="Loading the model…")
def _model(path: str, stamp: float):
    from vqrec_core.checkpoint import load_checkpoint

    return load_checkpoint(path)[0]


runs = [r for r in ws.list_runs() if pipeline.run_checkpoints(ws, r["run_id"])]
if not runs:
    st.info("No trained models yet. Start a run on the **Train** page; its models appear here as they finish.")
    st.stop()

c1, c2 = st.columns([3, 1])
run_id = c1.selectbox("Run", [r["run_id"] for r in runs], key="inspect_run",
                      format_func=lambda r: f"{r} ({next(x['status'] for x in runs if x['run_id'] == r)})")
K = c2.slider("K", 5, 20, 10, key="inspect_k")
cfg = next(r["config"] for r in runs if r["run_id"] == run_id)
target = cfg.get("target")
if not ws.has_domain(target):
    st.error(f"The run's target domain '{target}' is no longer in the workspace, so its items cannot be shown.")
    st.stop()
try:
    ld = domain_data(ws, target, cfg.get("encoder", "minilm"), int(cfg.get("experiment", {}).get("max_len", 50)))
except VQRecError as e:
    show_error(e)
    st.stop()
titles = ld.domain.items["text"].to_numpy(dtype=object)
ckpts = pipeline.run_checkpoints(ws, run_id)
names = st.multiselect("Models", list(ckpts), default=list(ckpts), key="inspect_models")

mode = st.radio("History", ["An evaluated user of the target", "Type a sequence"], horizontal=True,
                key="inspect_mode")
target_item = None
if mode.startswith("An evaluated"):
    users = np.asarray(ld.split.test.user).astype(str)
    search = st.text_input("Find a user id", key="inspect_user_search", placeholder="type part of a user id")
    options = [u for u in users if search.strip() in u][:5000] if search.strip() else list(users[:5000])
    if not options:
        st.warning(f"No evaluated user id contains '{search}'.")
        st.stop()
    user = st.selectbox(f"User ({len(users):,} evaluated)", options, key="inspect_user")
    history, target_item = pipeline.user_case(ld.split, user)
else:
    q = st.text_input("Search items by title", key="inspect_query", placeholder="e.g. lipstick")
    chosen = st.session_state.get("inspect_seq", [])
    if q.strip():
        low = np.char.lower(titles.astype(str))
        matches = list(np.flatnonzero(np.char.find(low, q.strip().lower()) >= 0)[:200])
    else:
        matches = list(range(min(len(titles), 2000)))
    options = list(dict.fromkeys([*chosen, *map(int, matches)]))
    st.multiselect("Sequence, oldest first (the search above filters the choices)", options, key="inspect_seq",
                   format_func=lambda i: f"{titles[i]} [{ld.domain.items['item_id'].iloc[i]}]")
    history = np.asarray(st.session_state.get("inspect_seq", []), dtype=np.int64)
    if history.size == 0:
        st.info("Pick one or more items to form a history.")
        st.stop()

try:
    models = {n: _model(str(ckpts[n]), (ckpts[n] / "config.json").stat().st_mtime) for n in names}
    out = pipeline.inspect_lists(models, history, ld.emb, titles, target_item, K)
except VQRecError as e:
    show_error(e)
    st.stop()

h1, h2 = st.columns([3, 2])
h1.markdown(f"**History** ({len(history)} items, oldest first)")
h1.dataframe(out["history"], hide_index=True, width="stretch", height=min(400, 40 + 35 * len(history)))
if target_item is not None:
    h2.markdown("**True next item**")
    h2.success(f"{titles[target_item]}  (text cosine to the last item: "
               f"{float(ld.emb[target_item] @ ld.emb[int(history[-1])]):.2f})")
    hits = out["lists"].groupby("model")["is_target"].any()
    h2.write("Found in the top-K by: " + (", ".join(hits[hits].index) or "no model"))

st.markdown(f"**Top-{K} side by side** — each cell: title (text cosine to the last history item)")
st.dataframe(out["wide"], hide_index=True, width="stretch")
lists = out["lists"]
mean_cos = lists.groupby("model", sort=False)["text_cos"].mean().rename("mean text cosine of the top-K")
st.dataframe(mean_cos.reset_index(), hide_index=True)
with st.expander("Long table (scores, item indices)"):
    st.dataframe(lists, hide_index=True, width="stretch")

if "entered" in out:
    st.markdown("**What adaptation moved** (VQ-Rec pre-trained → adapted)")
    e1, e2 = st.columns(2)
    e1.markdown("Moved **in** by adaptation")
    e1.dataframe(out["entered"], hide_index=True, width="stretch")
    e2.markdown("Moved **out** by adaptation")
    e2.dataframe(out["left"], hide_index=True, width="stretch")
elif {"vqrec_pretrained", "vqrec_adapted"} - set(names):
    st.caption("Choose both vqrec_pretrained and vqrec_adapted to see what adaptation moved in and out.")

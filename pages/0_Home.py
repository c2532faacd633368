"""VQ-Rec Studio — Home (the default page of app.py's navigation).

What the app shows and why, the domains in the workspace, what has been computed and trained, where to go next.
"""

import pandas as pd
import streamlit as st

from app_support import fmt_seconds, setup_page
from vqrec_core.store import MAX_UPLOAD_MB

ws = setup_page("Home", ":material/home:")

st.title("VQ-Rec Studio")
st.markdown(
    "Recommenders that transfer across shops usually turn an item's **text straight into its vector** "
    "(*text → representation*). That leans on look-alike titles and keeps each shop's texts in its own corner of "
    "the vector space. **VQ-Rec** (Hou et al., WWW 2023) puts a discrete step in between: the text vector is "
    "quantised by OPQ into **D small integers (the item's code)**, and each integer looks up a *learned* embedding; "
    "their mean is the item vector (*text → code → representation*). Adapting to a new shop then means re-training "
    "a small code-embedding table, not an encoder.\n\n"
    "This app lets you **see and test** that claim on your own catalogs and logs: compare code space with text "
    "space, train small models, and watch adaptation move recommendations away from text look-alikes."
)
st.graphviz_chart(
    """
    digraph G { rankdir=LR; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", fontname="Helvetica"];
      t [label="item text\\n'Red lipstick, matte'"]; e [label="text vector\\n(MiniLM, 384-d)"];
      c [label="code\\n[17, 3, 201, …] (D digits)", fillcolor="#fdf0d5"];
      r [label="item vector\\nmean of D learned\\ncode embeddings", fillcolor="#e3f4e1"];
      s [label="sequence model\\n(transformer)"]; n [label="next item"];
      t -> e [label="encode"]; e -> c [label="OPQ"]; c -> r [label="look up"]; r -> s -> n;
      e -> r [style=dashed, label="text → representation\\n(baseline)", fontcolor="#888888", color="#888888"]; }
    """,
    width="content",
)

st.subheader("Domains in the workspace")
domains = ws.list_domains()
if not domains:
    st.info("The workspace has no domains. Open **Data** to upload a catalog and a log, or to restore the samples.")
else:
    rows = []
    for d in domains:
        m = ws.domain_meta(d)
        s = m.get("stats", {})
        rows.append({"domain": d, "items": s.get("items"), "users": s.get("users"),
                     "interactions": s.get("interactions"), "evaluable users": s.get("evaluable_users"),
                     "mean sequence length": round(s.get("seq_len_mean", 0), 1),
                     "source": "sample" if m.get("sources", {}).get("sample") else "uploaded",
                     "warnings": len(m.get("report", {}).get("warnings", []))})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"{len(domains)} domain(s): {', '.join(domains)}")

st.subheader("Computed so far")
c1, c2 = st.columns(2)
with c1:
    an = ws.list_analyses()
    st.markdown(f"**Code analyses:** {len(an)}")
    if an:
        st.dataframe(pd.DataFrame([{"domains": ", ".join(a["spec"]["domains"]), "method": a["spec"]["method"],
                                    "D": a["spec"]["D"] or "auto", "b": a["spec"]["b"] or "auto",
                                    "encoder": a["spec"]["encoder"], "seconds": a.get("seconds")}
                                   for a in an if "spec" in a]), hide_index=True, width="stretch")
with c2:
    runs = ws.list_runs()
    st.markdown(f"**Training runs:** {len(runs)}")
    if runs:
        st.dataframe(pd.DataFrame([{"run": r["run_id"], "status": r.get("status"),
                                    "direction": f"{'+'.join(r['config'].get('sources', []))} → "
                                                 f"{r['config'].get('target')}",
                                    "preset": r["config"].get("preset"),
                                    "duration": fmt_seconds((r.get("ended") or r.get("heartbeat") or 0)
                                                            - (r.get("started") or 0))} for r in runs]),
                     hide_index=True, width="stretch")

st.subheader("Where to go next")
steps = [
    ("pages/1_Data.py", "Data", ":material/folder_open:", "upload a catalog + log per domain, map the columns"),
    ("pages/2_Codes.py", "Codes", ":material/pin:", "build OPQ codes; compare code space with text space"),
    ("pages/3_Train.py", "Train", ":material/model_training:", "pre-train on one domain, adapt to another, baselines"),
    ("pages/4_Results.py", "Results", ":material/bar_chart:", "metrics, transfer gain, domain gap, text bias"),
    ("pages/5_Inspect.py", "Inspect", ":material/search:", "one user's history and every model's top-K side by side"),
]
for path, label, icon, what in steps:
    st.page_link(path, label=f"**{label}** — {what}", icon=icon)
st.caption(f"Uploads are limited to {MAX_UPLOAD_MB} MB per file. Everything is saved in the workspace folder shown "
           "in the sidebar and survives a browser refresh or a server restart.")

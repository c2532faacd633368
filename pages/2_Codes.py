"""Codes: encode item texts, build OPQ codes (and the PQ / random ablations), compare code space with text space."""

import streamlit as st

from app_support import domain_gap_panel, run_with_progress, setup_page
from vqrec_core import figures, projection
from vqrec_core.pipeline import CodeSpec, load_code_analysis, run_code_analysis

ws = setup_page("Codes", ":material/pin:")
st.title("Codes: text → code")
st.caption("Each item's text vector is split into D sub-vectors; each is replaced by the index of its nearest of "
           "M = 2^b codewords (OPQ first rotates the space so the split loses little). The D indices are the "
           "item's code. Below, code space is measured next to raw text space.")

names = ws.list_domains()
if not names:
    st.info("No domains in the workspace. Add one on the **Data** page.")
    st.stop()

with st.form("code_settings"):
    c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
    doms = c1.multiselect("Domains", names, default=names[:2], key="codes_domains",
                          help="Two or more domains add the domain gap and the UMAP maps.")
    D = c2.selectbox("Digits D", ["auto", 4, 8, 16, 32], index=0, key="codes_D",
                     help="auto: the largest divisor of the text dimension that is at most 32.")
    b = c3.selectbox("Bits b (M = 2^b)", ["auto", 2, 3, 4, 5, 6, 7, 8], index=0, key="codes_b",
                     help="auto: the largest b with ~39 training items per codeword.")
    method = c4.selectbox("Quantizer", ["opq", "pq", "random", "faiss_opq"], key="codes_method",
                          help="opq: rotation + product quantization (VQ-Rec). pq: no rotation. random: random codes.")
    o1, o2, o3 = st.columns([2, 2, 3])
    ablations = o1.checkbox("Also build the ablations (PQ, random)", value=True, key="codes_ablations")
    umap = o2.checkbox("UMAP maps (first run ~30-60 s)", value=True, key="codes_umap")
    enc = o3.text_input("Text encoder", value=ws.settings()["encoder"], key="codes_encoder",
                        help="'minilm' (bundled all-MiniLM-L6-v2), 'hash:64' (fast test encoder) or a local "
                             "sentence-transformers folder. Saved as the workspace setting.")
    st.form_submit_button("Apply settings")

if enc.strip() and enc.strip() != ws.settings()["encoder"]:
    ws.save_settings(encoder=enc.strip())
spec = CodeSpec(domains=tuple(doms), encoder=ws.settings()["encoder"], D=None if D == "auto" else int(D),
                b=None if b == "auto" else int(b), method=method, ablations=ablations, umap=umap)

if not doms:
    st.info("Choose at least one domain.")
    st.stop()

saved = load_code_analysis(ws, spec)
if saved is None:
    st.info("These codes have not been built yet with these settings.")
    if st.button("Build codes and analyse", key="build_codes", type="primary"):
        saved = run_with_progress("Building codes", run_code_analysis, ws, spec)
        if saved is not None:
            st.rerun()
    st.stop()

tables, meta = saved
st.success(f"Codes for {', '.join(spec.domains)} (computed in {meta.get('seconds', '?')} s, saved in the "
           "workspace).")
for note in meta.get("notes", []):
    st.caption(f"note: {note}")

# ------------------------------------------------------------------------------------------------ diagnostics
st.subheader("Code diagnostics")
codes = tables["codes"]
st.dataframe(codes, hide_index=True, width="stretch")
st.caption("Entropy per digit near log2 M means every codeword is used about equally; collision share = items whose "
           "full code equals another item's (they would share one vector).")
st.plotly_chart(figures.entropy_figure(tables["code_digits"]), key="fig_entropy")

st.subheader("Uniformity: code space vs raw text")
st.caption("text = the encoder's vectors; opq_recon = what the code stands for in text space; code_fresh = VQ-Rec "
           "item vectors from a freshly initialised code table (the geometry of the codes alone).")
uni = tables["uniformity"]
st.dataframe(uni, hide_index=True, width="stretch")
f1, f2 = st.columns(2)
ufigs = figures.uniformity_figures(uni)
f1.plotly_chart(ufigs[0], key="fig_uni")
f2.plotly_chart(ufigs[1], key="fig_nn")

if "ablations" in tables and len(tables["ablations"]):
    st.subheader("Ablations: same D and b, other quantizers")
    st.dataframe(tables["ablations"], hide_index=True, width="stretch")

if "domain_gap" in tables:
    st.subheader("Domain gap")
    domain_gap_panel(tables["domain_gap"])

if "umap" in tables:
    st.subheader("Maps: text space vs code space (coloured by domain, titles on hover)")
    um = tables["umap"]
    m1, m2 = st.columns(2)
    for col, space, label in ((m1, "text", "text vectors"), (m2, "code_fresh", "code-based item vectors")):
        part = um[um["space"] == space]
        if len(part):
            col.plotly_chart(projection.scatter_figure(part, f"UMAP of {label} ({len(part)} items)"),
                             key=f"fig_umap_{space}", theme=None)  # plotly's palette: distinct domain colours
elif len(spec.domains) >= 2 and spec.umap:
    st.caption("No UMAP maps in this result.")

# ------------------------------------------------------------------------------------------------ downloads
st.subheader("Downloads")
dcols = st.columns(4)
i = 0
for name, df in tables.items():
    if name.startswith("items_"):
        dcols[i % 4].download_button(f"Codes of {name[6:]} (CSV)", df.to_csv(index=False).encode(),
                                     file_name=f"codes_{name[6:]}.csv", mime="text/csv", key=f"dl_{name}")
        i += 1
for name in ("codes", "uniformity", "ablations", "domain_gap"):
    if name in tables:
        dcols[i % 4].download_button(f"{name} table (CSV)", tables[name].to_csv(index=False).encode(),
                                     file_name=f"{name}.csv", mime="text/csv", key=f"dl_{name}")
        i += 1

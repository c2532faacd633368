"""VQ-Rec Studio — Home. Start with ./start.sh (or: streamlit run app.py)."""

import streamlit as st

from vqrec_core.cliargs import sample_domain_paths
from vqrec_core.data import domain_stats, load_domain

st.set_page_config(page_title="VQ-Rec Studio", layout="wide")
st.title("VQ-Rec Studio")
st.write("Text → code → representation: test whether discrete item codes transfer across domains better than "
         "text embeddings. The bundled sample domains are loaded below.")


@st.cache_data(show_spinner="Loading sample data…")
def _sample_stats(name: str) -> dict:
    return domain_stats(load_domain(*sample_domain_paths(name), name=name))


st.dataframe([_sample_stats(d) for d in ("beauty", "toys")], hide_index=True)

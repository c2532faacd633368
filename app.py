"""VQ-Rec Studio — entry point. Start with ./start.sh (or: python -m streamlit run app.py).

Declares the pages so the sidebar reads Home, Data, Codes, Train, Results, Inspect; every page is a thin script
under pages/ that calls vqrec_core.
"""

import streamlit as st

PAGES = [
    st.Page("pages/0_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_Data.py", title="Data", icon=":material/folder_open:"),
    st.Page("pages/2_Codes.py", title="Codes", icon=":material/pin:"),
    st.Page("pages/3_Train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/4_Results.py", title="Results", icon=":material/bar_chart:"),
    st.Page("pages/5_Inspect.py", title="Inspect", icon=":material/search:"),
]

st.navigation(PAGES).run()

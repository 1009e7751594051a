"""Batchscope: page config, the shared sidebar, and a router over the pages in pages/."""

import streamlit as st

import ui

st.set_page_config(page_title="Batchscope", page_icon=":material/grid_on:", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("pages/batches.py", title="Batches", icon=":material/view_module:"),
        st.Page("pages/images.py", title="Images", icon=":material/image:"),
        st.Page("pages/histograms.py", title="Histograms", icon=":material/bar_chart:"),
        st.Page("pages/balance.py", title="Class balance", icon=":material/balance:"),
    ]
)
ui.sidebar()
navigation.run()

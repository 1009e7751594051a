"""Batchscope: page config and a router over the pages in pages/.

Each page draws the shared sidebar itself (`ui.sidebar()`, its first line): drawn here,
before `navigation.run()`, it works in a browser but AppTest loses its widgets after the
first rerun, and then no test could drive it.
"""

import streamlit as st

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
navigation.run()

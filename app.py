"""Batchscope: page config and the router over the pages in pages/ (listed in ui.router()).

Each page draws the shared sidebar itself (`ui.sidebar()`, its first line): drawn here,
before the page runs, it works in a browser but AppTest loses its widgets after the first
rerun, and then no test could drive it.
"""

import streamlit as st

import ui

st.set_page_config(page_title="Batchscope", page_icon=":material/grid_on:", layout="wide")
ui.router().run()
ui.after_page()

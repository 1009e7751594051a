"""The Streamlit side of datalib: the shared sidebar, loading with a spinner, error display,
pixel grids and the URL. The only module that imports both Streamlit and datalib."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from streamlit.navigation.page import StreamlitPage

import datalib

URL = "query-params"  # every input that shapes a view lives in the URL, so links reopen it

# Streamlit's light categorical palette, given to charts explicitly: its theme otherwise
# colours traces with placeholders only a browser resolves, and a server-side PNG comes out black.
COLORS = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700"]


def router() -> StreamlitPage:
    """The app's pages; app.py runs what this returns.

    It lives here, not in app.py, because a page may have to build it too: until
    `st.navigation` has run once in a server process, Streamlit treats `pages/` as an old
    style pages folder, and a fresh server whose first visitor opens a page's URL (after a
    restart, say) runs that page without app.py. `sidebar()` then builds the router and reruns.
    """
    global _routed
    _routed = True
    return st.navigation(
        [
            st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
            st.Page("pages/batches.py", title="Batches", icon=":material/view_module:"),
            st.Page("pages/images.py", title="Images", icon=":material/image:"),
            st.Page("pages/histograms.py", title="Histograms", icon=":material/bar_chart:"),
            st.Page("pages/balance.py", title="Class balance", icon=":material/balance:"),
            st.Page("pages/checklist.py", title="Readiness checklist", icon=":material/checklist:"),
        ]
    )


_routed = False  # has st.navigation run in this process? (Streamlit's own flag is process-wide)


@dataclass(frozen=True)
class View:
    """What the sidebar chose: one dataset split and the DataLoader settings."""

    data: datalib.SplitData
    loader: datalib.LoaderSettings

    @property
    def title(self) -> str:
        return f"{self.data.spec.title} {self.data.split}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show datalib's errors as a message with the fix, and stop this page; never a traceback."""
    try:
        yield
    except datalib.DatalibError as e:
        st.error(str(e), icon=":material/error:")
        st.stop()


def load(name: str, split: str) -> datalib.SplitData:
    """A dataset split, loaded once per process (datalib caches it) behind a spinner; a
    folder's images show a progress bar while they are decoded."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or st.progress(0.0)
        bar.progress(done / max(total, 1), text=f"Decoding {name} {split}: {done:,} of {total:,}")

    with user_errors(), st.spinner(f"Loading {name} {split}..."):
        data = datalib.load(name, split, progress=progress)
    if bar is not None:
        bar.empty()
    return data


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def image_folders(root: str) -> list[str]:
    """The `folder:<path>` datasets under the data root (looked for at most every 30 s)."""
    return [datalib.FOLDER_PREFIX + path for path in datalib.find_folders(Path(root))]


def sidebar() -> View:
    """The sidebar every page shares: dataset, split and DataLoader settings, all in the URL."""
    if not _routed:  # run without app.py: see router()
        router()
        st.rerun()
    check_opening_link()
    with st.sidebar:
        name = st.selectbox(
            "Dataset",
            list(datalib.DATASETS) + image_folders(str(datalib.data_root())),
            format_func=lambda n: datalib.dataset_spec(n).title,
            key="dataset",
            bind=URL,
            help="torchvision's datasets, and the image folders found under the data root "
            f"({datalib.data_root()}): one folder per class, split folders optional.",
        )
        with user_errors():
            splits = datalib.splits_of(name)
        if st.session_state.get("split") not in (None, *splits):  # the dataset changed
            st.session_state["split"] = splits[0]
        split = st.segmented_control(
            "Split",
            splits,
            default="train" if "train" in splits else splits[0],
            required=True,
            key="split",
            bind=URL,
        )
        st.subheader("DataLoader", divider="gray")
        batch_size = st.number_input(
            "batch_size",
            min_value=1,
            max_value=datalib.MAX_BATCH_SIZE,
            value=10,
            key="batch_size",
            bind=URL,
        )
        shuffle = st.toggle("shuffle", value=True, key="shuffle", bind=URL)
        seed = st.number_input(
            "seed (torch.Generator)",
            min_value=0,
            value=0,
            step=1,
            key="seed",
            bind=URL,
            help="Seeds the shuffle, and the weighted sampler on the Readiness checklist.",
        )
        drop_last = st.toggle("drop_last", value=False, key="drop_last", bind=URL)
        with user_errors():
            loader = datalib.LoaderSettings(
                batch_size=int(batch_size), shuffle=shuffle, seed=int(seed), drop_last=drop_last
            )
    data = load(name, split)
    st.sidebar.caption(
        f"{data.spec.title} {split}: {len(data):,} images, "
        f"{loader.num_batches(len(data)):,} batches of {loader.batch_size}"
    )
    return View(data=data, loader=loader)


def batch_picker(view: View, *, label: str = "Batch") -> int:
    """Prev / next buttons and a number box for batch k, shared by the pages that show one."""
    last = view.loader.num_batches(len(view.data)) - 1
    if st.session_state.get("batch", 0) > last:  # fewer batches since the settings changed
        st.session_state["batch"] = last

    def step(delta: int) -> None:
        st.session_state["batch"] = min(max(st.session_state.get("batch", 0) + delta, 0), last)

    prev, number, following = st.columns([1, 3, 1], vertical_alignment="bottom")
    prev.button("Prev", icon=":material/chevron_left:", on_click=step, args=(-1,), width="stretch")
    following.button(
        "Next", icon=":material/chevron_right:", on_click=step, args=(1,), width="stretch"
    )
    return int(
        number.number_input(
            f"{label} (0 to {last:,})", min_value=0, max_value=last, key="batch", bind=URL
        )
    )


ALL_CLASSES = "All classes"


def class_picker(data: datalib.SplitData, *, allow_all: bool, label: str = "Class") -> int | None:
    """A class chooser by name (or "All classes"); returns the label index or None for all."""
    options = ([ALL_CLASSES] if allow_all else []) + list(data.classes)
    name = st.selectbox(label, options, key="cls", bind=URL)
    return None if name == ALL_CLASSES else data.classes.index(name)


def pixel_grid(
    data: datalib.SplitData, indices: Sequence[int], captions: Sequence[str], *, size: int = 84
) -> None:
    """Images drawn large with hard pixel edges (nearest neighbour), a caption under each."""
    if len(indices) == 0:
        st.info("No images to show.")
        return
    st.image(
        [upscale(p, size) for p in data.pixels(list(indices))], caption=list(captions), width=size
    )


def upscale(pixels: np.ndarray, size: int) -> np.ndarray:
    """Repeat each pixel so the image is about `size` pixels wide: no blur, hard edges."""
    factor = max(1, size // pixels.shape[1])
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1)


def count_caption(shown: int, total: int, what: str) -> str:
    """The line every grid carries: how much of what it shows."""
    return f"Showing {shown:,} of {total:,} {what}."


def export_name(spec: datalib.DatasetSpec, splits: Sequence[str], chart: str) -> str:
    """File name (no extension) for a chart's exports: `mnist_train-test_class-balance`."""
    return f"{spec.name}_{'-'.join(splits)}_{chart}"


def chart(
    figure: go.Figure,
    *,
    key: str,
    name: str,
    table: pd.DataFrame,
    on_select: Callable[[], None] | None = None,
) -> None:
    """A Plotly chart whose camera button saves a 2x PNG named `name`, with PNG and CSV
    downloads of the picture and of the numbers behind it; `on_select` gets clicked points."""
    st.plotly_chart(
        figure,
        key=key,
        config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}},
        **({"on_select": on_select, "selection_mode": "points"} if on_select else {}),
    )
    png, csv = st.columns(2)
    if browser_for_png():
        png.download_button(
            "Download PNG",
            data=lambda: figure.to_image(format="png", scale=2),
            file_name=f"{name}.png",
            mime="image/png",
            icon=":material/image:",
            on_click="ignore",
            key=f"{key}_png",
        )
    else:
        png.caption(
            "Server-side PNG export needs Chromium (set BROWSER_PATH to it); "
            "the camera icon on the chart saves the same picture from your browser."
        )
    csv.download_button(
        "Download CSV",
        data=table.to_csv(index=False),
        file_name=f"{name}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
        key=f"{key}_csv",
    )


def browser_for_png() -> str | None:
    """The Chromium kaleido will drive for server-side PNGs, if this machine has one."""
    path = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chrome")
    if path and os.access(path, os.X_OK):
        os.environ.setdefault("BROWSER_PATH", path)
        return path
    return None


def after_page() -> None:
    """What app.py runs after every page: the link to share, and notices about the opening one."""
    share_link()
    report_link_fallbacks()


def share_link() -> None:
    """The sidebar's "Copy link": this page with every input of the view, as a URL."""
    query = urlencode(st.query_params.to_dict())
    url = f"{st.context.url or ''}{'?' + query if query else ''}"
    with st.sidebar.popover("Copy link", icon=":material/link:", width="stretch"):
        st.caption("This link reopens this page with the same dataset, split and inputs.")
        st.code(url or "(open the app in a browser to get its address)", language=None)


def check_opening_link() -> None:
    """Remember the query of the link that opened this session, before any widget reads it."""
    if "_opening_link" not in st.session_state:
        st.session_state["_opening_link"] = st.query_params.to_dict()


def report_link_fallbacks() -> None:
    """Tell the user which values of the opening link were refused and replaced by defaults.

    Bound widgets drop an invalid URL value (and a value equal to the default) from the URL;
    a dropped value that differs from what the widget now shows was refused.
    """
    opening: dict[str, str] = st.session_state.get("_opening_link", {})
    refused = []
    for key, value in list(opening.items()):
        if key not in st.session_state:
            continue  # not an input of this page: it stays in the URL for its own page
        del opening[key]
        if key not in st.query_params and value != _url_form(key, st.session_state[key]):
            refused.append(f"{key}={value!r}")
    if refused:
        st.toast(
            f"This link had values that cannot be used here: {', '.join(refused)}. "
            "Showing the defaults for them instead.",
            icon=":material/link_off:",
            duration="long",
        )


def _url_form(key: str, value: object) -> str:
    """How a bound widget writes `value` into the URL."""
    if key == "dataset" and isinstance(value, str):
        return datalib.dataset_spec(value).title
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)

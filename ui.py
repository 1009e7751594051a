"""The Streamlit side of datalib: the shared sidebar, loading with a spinner, error display,
pixel grids and the URL. The only module that imports both Streamlit and datalib."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import streamlit as st

import datalib

URL = "query-params"  # every input that shapes a view lives in the URL, so links reopen it


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
    """A dataset split, loaded once per process (datalib caches it) behind a spinner."""
    with user_errors(), st.spinner(f"Loading {name} {split}..."):
        return datalib.load(name, split)


def sidebar() -> View:
    """The sidebar every page shares: dataset, split and DataLoader settings, all in the URL."""
    with st.sidebar:
        name = st.selectbox(
            "Dataset",
            list(datalib.DATASETS),
            format_func=lambda n: datalib.DATASETS[n].title,
            key="dataset",
            bind=URL,
        )
        split = st.segmented_control(
            "Split", datalib.SPLITS, default="train", required=True, key="split", bind=URL
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
            disabled=not shuffle,
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


def class_picker(data: datalib.SplitData, *, allow_all: bool, label: str = "Class") -> int | None:
    """A class chooser by name (or "All classes"); returns the label index or None for all."""
    options: list[int | None] = ([None] if allow_all else []) + list(range(len(data.classes)))
    return st.selectbox(
        label,
        options,
        format_func=lambda c: "All classes" if c is None else data.classes[c],
        key="cls",
        bind=URL,
    )


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

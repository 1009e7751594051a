"""The Streamlit side of datalib: the shared sidebar, loading with a spinner, error display,
pixel grids and the URL. The only module that imports both Streamlit and datalib."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import io
import os
import re
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image
from streamlit.navigation.page import StreamlitPage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx

import datalib
import datalib.paths
import datalib.transforms
from datalib.index import THUMB

URL = "query-params"  # every input that shapes a view lives in the URL, so links reopen it

# Streamlit's light categorical palette, given to charts explicitly: its theme otherwise
# colours traces with placeholders only a browser resolves, and a server-side PNG comes out black.
COLORS = ["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1", "#ff8700"]


@dataclass(frozen=True)
class PageInfo:
    """One page of the app: its file, its title and icon in the navigation, what it answers."""

    file: str
    title: str
    icon: str
    answers: str


PAGES = (
    PageInfo("pages/overview.py", "Overview", ":material/home:", "what the dataset is"),
    PageInfo(
        "pages/batches.py",
        "Batches",
        ":material/view_module:",
        "exactly what a DataLoader yields at step k",
    ),
    PageInfo(
        "pages/images.py",
        "Images",
        ":material/image:",
        "a gallery per class and each pixel's value",
    ),
    PageInfo(
        "pages/histograms.py",
        "Histograms",
        ":material/bar_chart:",
        "are the pixels scaled? mean and std",
    ),
    PageInfo(
        "pages/balance.py", "Class balance", ":material/balance:", "train and test side by side"
    ),
    PageInfo(
        "pages/checklist.py",
        "Readiness checklist",
        ":material/checklist:",
        "pass / warn / fail before you train, with the fix as code",
    ),
    PageInfo(
        "pages/quality.py",
        "Data quality",
        ":material/troubleshoot:",
        "suspicious labels, near duplicates, outliers, class means, a map",
    ),
)


def router() -> StreamlitPage:
    """The app's pages; app.py runs what this returns.

    It lives here, not in app.py, because a page may have to build it too: until
    `st.navigation` has run once in a server process, Streamlit treats `pages/` as an old
    style pages folder, and a fresh server whose first visitor opens a page's URL (after a
    restart, say) runs that page without app.py. `sidebar()` then builds the router and
    reruns before drawing anything, and Streamlit's own listing of `pages/` is never shown
    (`client.showSidebarNavigation = false`): the sidebar's links are the app's, from the
    first paint on.
    """
    home, *others = PAGES
    return st.navigation(
        [
            # The home page is "/"; its name frees "/overview" for the redirect below.
            st.Page(home.file, title=home.title, icon=home.icon, default=True, url_path="home"),
            *(st.Page(page.file, title=page.title, icon=page.icon) for page in others),
            st.Page(_overview_moved, url_path="overview", visibility="hidden"),
        ]
    )


def _overview_moved() -> None:
    """`/overview`, the Overview's URL in links shared before it became the home page ("/"),
    opens it with the link's settings instead of Streamlit's "Page not found"."""
    st.switch_page(PAGES[0].file, query_params=st.query_params.to_dict())


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:<>&=^])")
# GitHub-flavoured Markdown turns a bare "https://...", "www...." or "name@host" into a link
# after escapes are undone, so an invisible word joiner breaks each of those patterns.
_AUTOLINK = re.compile(r"(?<=:)(?=//)|(?i:(?<=\bwww))(?=\.)|(?=@)")
WORD_JOINER = "\u2060"


def md(value: object) -> str:
    """Text from outside (a folder's or class's name, a path, a URL's value) made safe to put
    in Markdown: every character Markdown, math, colour directives or HTML give a meaning is
    escaped, and line breaks become spaces. Shown as typed, never as a link or an image."""
    text = _AUTOLINK.sub(WORD_JOINER, " ".join(str(value).split()))
    return _MARKDOWN.sub(r"\\\1", text)


def plot(value: object) -> str:
    """Text from outside made safe for a Plotly title or label, which reads a little HTML
    (links, bold): shown as typed."""
    return html.escape(" ".join(str(value).split()), quote=False)


@dataclass(frozen=True)
class View:
    """What the sidebar chose: one dataset split, the DataLoader settings and the transform
    pipeline after ToTensor."""

    data: datalib.SplitData
    loader: datalib.LoaderSettings
    pipeline: datalib.transforms.Pipeline = datalib.transforms.EMPTY

    @property
    def title(self) -> str:
        return f"{self.data.spec.title} {self.data.split}"


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show datalib's errors as a message with the fix, and stop this page; never a traceback."""
    try:
        yield
    except datalib.DatalibError as e:
        st.error(md(e), icon=":material/error:")
        st.stop()


def load(name: str, split: str) -> datalib.SplitData:
    """A dataset split from its index. Without one, this starts the dataset's scan (one for
    the whole server, in the background), waits a moment for a small dataset to finish, and
    otherwise shows the scan's progress and stops the page: it reruns when the scan is done.
    """
    with user_errors():
        data = datalib.opened(name, split)
        if data is not None:
            return data
        tried = st.session_state.setdefault("_scans_started", set())
        state = datalib.scan_state(name)
        if name not in tried or (not state.running and state.error is None):
            tried.add(name)
            datalib.start_scan(name, download=bool(datalib.missing_files(name)))
        deadline = time.monotonic() + SCAN_WAIT
        while time.monotonic() < deadline:
            data = datalib.opened(name, split)
            if data is not None:
                return data
            state = datalib.scan_state(name)
            if not state.running and state.error:
                break
            time.sleep(0.1)
    scan_progress(name)
    share_link()  # the page stops here: the sidebar's link all the same
    st.stop()


# Seconds a page waits for a new scan before it shows its progress instead (the tests wait
# longer: BATCHSCOPE_SCAN_WAIT).
SCAN_WAIT = float(os.environ.get("BATCHSCOPE_SCAN_WAIT", "2"))


@st.fragment(run_every=1.0)
def scan_progress(name: str) -> None:
    """How the dataset's scan is going, redrawn every second; the page reruns when it is done,
    and a failed scan shows why, with a button to try again."""
    state = datalib.scan_state(name)
    title = datalib.dataset_spec(name).title
    if not state.running and state.error:
        st.error(md(state.error), icon=":material/error:")
        if st.button("Try again", icon=":material/refresh:", key="scan_again"):
            datalib.start_scan(name, download=bool(datalib.missing_files(name)))
            st.rerun()
        return
    if not state.running and state.state == "done":
        st.rerun(scope="app")
    if datalib.missing_files(name):
        what = "Downloading"
    else:
        what = "Listing the files of" if state.state == "listing" else "Scanning"
    detail = (
        f"{state.done:,} of {state.total:,} images, {state.images_per_s:,.0f} images/s"
        + (f", about {state.eta_s:.0f} s left" if state.eta_s is not None else "")
        if state.total
        else "starting"
    )
    st.subheader(f"{what} {md(title)}", anchor=False)
    st.progress(state.fraction, text=detail)
    st.caption(
        "Each dataset is read once into an index that every page uses; this runs once for "
        "the whole server, and every session opening this dataset sees the same progress. "
        "Other datasets stay available meanwhile."
    )


def job_panel(job, *, start: Callable[[], bool], what: str, button: str, cost: str) -> None:
    """A long job's place on a page: a button (with what it costs) to start it, its progress
    while it runs (for every session), why it stopped when it failed. The page reruns when
    the job is done."""
    state = job.state()
    # Not started, or "done" with no answer to show (it was deleted): offer to start it.
    if not state.running and state.state in ("not started", "done"):
        st.info(f"Not made yet: {cost}. It runs once for the whole server, in the background.")
        st.button(button, icon=":material/play_arrow:", key=f"start_{job.name}", on_click=start)
        return
    _job_progress(job, start, what)


def near_duplicates(splits: list, bits: int | None = None, difference: float | None = None):
    """The near-duplicate groups of these splits. A few images are searched while the page
    waits; more, by a background job once for the whole server (started here unless it
    runs), off this server's memory: None until it ends, its progress shown meanwhile."""
    from datalib import quality

    bits = quality.DEFAULT_BITS if bits is None else bits
    difference = quality.DEFAULT_DIFFERENCE if difference is None else difference
    if quality.searched_in_page(splits):
        with user_errors(), st.spinner("Comparing hashes..."):
            return quality.near_duplicates(splits, bits, difference)
    with user_errors():
        found = quality.stored_near_duplicates(splits, bits, difference)
    if found is not None:
        return found
    job = quality.near_job(splits, bits, difference)
    images = sum(len(d) for d in splits)

    def start() -> bool:
        return quality.start_near_job(splits, bits, difference)

    defaults = (bits, difference) == (quality.DEFAULT_BITS, quality.DEFAULT_DIFFERENCE)
    if defaults and job.state().state == "not started":
        start()  # the default search starts by itself; a search at other settings on request
    job_panel(
        job,
        start=start,
        what=f"Searching {images:,} images for near duplicates",
        button="Search at these settings",
        cost=f"a search of {images:,} images, about "
        f"{max(1, round(images / quality.SEARCH_RATE)):,} s of this server's CPU",
    )
    return None


@st.fragment(run_every=1.0)
def _job_progress(job, start: Callable[[], bool], what: str) -> None:
    state = job.state()
    if not state.running:
        if state.state == "done":
            st.rerun(scope="app")
        reason = state.error or (
            "It stopped before it finished (the server restarted, or its process was "
            "killed): nothing half-made was kept."
        )
        st.error(md(reason), icon=":material/error:")
        st.button(
            "Start it again", icon=":material/refresh:", key=f"again_{job.name}", on_click=start
        )
        return
    detail = (
        f"{md(state.state)}: {state.done:,} of {state.total:,} images, "
        f"{state.images_per_s:,.0f} images/s"
        + (f", about {state.eta_s:.0f} s left" if state.eta_s is not None else "")
        if state.total
        else md(state.state)
    )
    st.subheader(md(what), anchor=False)
    st.progress(state.fraction, text=detail)
    st.caption(
        "This runs once for the whole server, in the background: every session sees the same "
        "progress, and leaving the page does not stop it."
    )


def image_link(split: str, index: int) -> str:
    """A URL that opens one image large on the Images page, in the dataset in view."""
    base = (st.context.url or "").rsplit("/", 1)[0]
    dataset = {"dataset": st.query_params["dataset"]} if "dataset" in st.query_params else {}
    query = urlencode(dataset | {"split": split, "image": index, "page": index // GALLERY_PAGE + 1})
    return f"{base}/images?{query}"


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def image_folders(root: str) -> list[str]:
    """The `folder:<path>` datasets under the data root (looked for at most every 30 s)."""
    return [datalib.FOLDER_PREFIX + path for path in datalib.find_folders(Path(root))]


def sidebar() -> View:
    """The sidebar every page shares: dataset, split and DataLoader settings, all in the URL."""
    if PagesManager.uses_pages_directory:  # run without app.py: see router()
        router()
        st.rerun()
    check_opening_link()
    with st.sidebar:
        for page in PAGES:  # the navigation, drawn by the page itself (see router())
            st.page_link(page.file, label=page.title, icon=page.icon)
        st.divider()
        name = st.selectbox(
            "Dataset",
            datalib.dataset_names() + image_folders(str(datalib.data_root())),
            format_func=lambda n: datalib.dataset_spec(n).title,
            key="dataset",
            bind=URL,
            help="torchvision's datasets, your own named in the config file "
            f"({datalib.paths.config_path()}), and the image folders found under the data root "
            f"({datalib.data_root()}): one folder per class, split folders optional.",
        )
        problem = datalib.config_problem()
        if problem:
            st.warning(md(problem), icon=":material/settings_alert:")
        with user_errors():
            splits = datalib.splits_of(name)
        if st.session_state.get("split") not in (None, *splits):  # the dataset changed
            st.session_state["split"] = splits[0]
        split = st.segmented_control(
            "Split",
            splits,
            format_func=md,  # a folder's split names come from its folders
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
        pipeline = transforms_editor(name)
    data = load(name, split)
    try:  # a pipeline these images cannot go through (a 3-channel Normalize on MNIST)
        datalib.transforms.output_shape(pipeline, data.image_shape)
    except datalib.DatalibError as e:
        st.sidebar.error(f"Transforms not applied: {md(e)}", icon=":material/error:")
        pipeline = datalib.transforms.Pipeline((), pipeline.seed)
    notice = datalib.cache_notice()
    if notice:
        st.sidebar.caption(f":material/info: {md(notice)}")
    st.sidebar.caption(
        f"{md(data.spec.title)} {md(split)}: {len(data):,} images, "
        f"{loader.num_batches(len(data)):,} batches of {loader.batch_size}"
    )
    return View(data=data, loader=loader, pipeline=pipeline)


def transforms_editor(name: str) -> datalib.transforms.Pipeline:
    """The transform pipeline after ToTensor, as text in the URL (parsed, never evaluated),
    with a form that adds a step, a button per step that removes it, and Normalize from the
    train statistics in one click. A refused text is named, and no pipeline applies."""
    catalog = datalib.transforms.CATALOG
    with st.expander("Transforms (v2), after ToTensor", expanded="transforms" in st.query_params):
        text = st.text_input(
            "Pipeline",
            key="transforms",
            bind=URL,
            placeholder="none: ToTensor() only",
            help="torchvision.transforms.v2 steps, applied in order after ToTensor: "
            "Name(key=value,...) separated by ;, several numbers joined by /. Parsed and "
            "checked, never run as code.",
        )
        seed = st.number_input(
            "draw seed",
            min_value=0,
            max_value=datalib.transforms.MAX_SEED,
            value=0,
            key="draw_seed",
            bind=URL,
            help="Random steps draw sample i's transform from torch.manual_seed(seed + i): the "
            "same draws on every page and in the code shown.",
        )
        try:
            pipeline = datalib.transforms.parse(text, int(seed))
        except datalib.DatalibError as e:
            st.error(f"Not applied: {md(e)}", icon=":material/error:")
            pipeline = datalib.transforms.Pipeline((), int(seed))
        for position, step in enumerate(pipeline.steps):
            code, remove = st.columns([5, 1], vertical_alignment="center")
            code.markdown(f"{position + 1}. `{step.text}`")
            remove.button(
                "",
                icon=":material/close:",
                key=f"remove_step_{position}",
                help="Remove this step",
                on_click=_remove_step,
                args=(position,),
            )
        kind = catalog[
            st.selectbox(
                "Add a step",
                list(catalog),
                key="add_step",
                help="; ".join(f"{k.name}: {k.what}" for k in catalog.values()),
            )
        ]
        values = {
            param.name: st.text_input(
                param.name + (" (required)" if param.required else ""),
                value=param.default,
                key=f"add_{kind.name}_{param.name}",
                help=param.help or None,
                placeholder="torchvision's default" if not param.required else None,
            )
            for param in kind.params
        }
        st.button(
            "Add",
            icon=":material/add:",
            key="add_step_button",
            on_click=_add_step,
            args=(kind.name, values),
            width="stretch",
        )
        st.button(
            "Normalize from train",
            icon=":material/functions:",
            key="add_normalize",
            on_click=_add_train_normalize,
            args=(name,),
            width="stretch",
            help="Add Normalize with the train split's mean and std per channel, measured "
            "after the steps above.",
        )
        message = st.session_state.pop("_pipeline_error", None)
        if message:
            st.error(md(message), icon=":material/error:")
    return pipeline


def _current_pipeline() -> datalib.transforms.Pipeline:
    """The pipeline as the sidebar's text says now (a callback runs before the page)."""
    try:
        return datalib.transforms.parse(
            st.session_state.get("transforms", ""), int(st.session_state.get("draw_seed", 0))
        )
    except datalib.DatalibError as e:
        raise datalib.InvalidRequest(f"Fix or clear the pipeline's text first: {e}") from None


def _remove_step(position: int) -> None:
    try:
        st.session_state["transforms"] = _current_pipeline().without(position).text
    except datalib.DatalibError as e:
        st.session_state["_pipeline_error"] = str(e)


def _add_step(name: str, values: dict[str, str]) -> None:
    written = ",".join(f"{k}={v.strip()}" for k, v in values.items() if v.strip())
    try:
        step = datalib.transforms.parse(f"{name}({written})").steps[0]
        st.session_state["transforms"] = _current_pipeline().plus(step).text
    except datalib.DatalibError as e:
        st.session_state["_pipeline_error"] = str(e)


def _add_train_normalize(name: str) -> None:
    try:
        pipeline = _current_pipeline()
        splits = datalib.splits_of(name)
        train = datalib.opened(name, "train" if "train" in splits else splits[0])
        if train is None:
            raise datalib.InvalidRequest("The train split is not scanned yet: try again soon.")
        stats = datalib.transforms.after_stats(train, pipeline)
        means = "/".join(f"{m:.4f}" for m in stats.channel_means())
        stds = "/".join(f"{s:.4f}" for s in stats.channel_stds())
        step = datalib.transforms.parse(f"Normalize(mean={means},std={stds})").steps[0]
        st.session_state["transforms"] = pipeline.plus(step).text
    except datalib.DatalibError as e:
        st.session_state["_pipeline_error"] = str(e)


def batch_picker(view: View, *, label: str = "Batch") -> int:
    """Prev / next buttons and a number box for batch k, shared by the pages that show one.

    A new split or batch size renumbers the batches: the batch keeps its place in the epoch
    (a new batch size) or its number (a new split) where it can, and a notice says what moved.
    """
    n, size = len(view.data), view.loader.batch_size
    last = view.loader.num_batches(n) - 1
    numbering = (view.title, size, view.loader.drop_last)
    before = st.session_state.get("_batch_numbering")
    if before is not None and before[0] != numbering and "batch" in st.session_state:
        st.session_state["batch"], note = _renumbered(before, numbering, last, n)
        if note:
            st.session_state["_batch_note"] = note
    elif st.session_state.get("batch", 0) > last:
        st.session_state["batch"] = last

    def step(delta: int) -> None:
        st.session_state["batch"] = min(max(st.session_state.get("batch", 0) + delta, 0), last)

    prev, number, following = st.columns([1, 3, 1], vertical_alignment="bottom")
    # The number first (its value may come from the URL), then the buttons that depend on it.
    k = int(
        number.number_input(
            f"{label} (0 to {last:,})", min_value=0, max_value=last, key="batch", bind=URL
        )
    )
    prev.button(
        "Prev",
        icon=":material/chevron_left:",
        on_click=step,
        args=(-1,),
        width="stretch",
        disabled=k <= 0,
        key="batch_prev",
    )
    following.button(
        "Next",
        icon=":material/chevron_right:",
        on_click=step,
        args=(1,),
        width="stretch",
        disabled=k >= last,
        key="batch_next",
    )
    st.session_state["_batch_numbering"] = (numbering, k)
    note = st.session_state.pop("_batch_note", None)
    if note:
        st.info(note, icon=":material/swap_horiz:")
    return k


def _renumbered(
    before: tuple[tuple[str, int, bool], int], now: tuple[str, int, bool], last: int, n: int
) -> tuple[int, str]:
    """The batch to show after the loader's numbering changed, and a sentence saying why."""
    (title, size, _), k = before
    new_title, new_size, _ = now
    if new_title == title and new_size != size:
        start = k * size
        moved = min(start // new_size, last)
        return moved, (
            f"batch_size {size} \u2192 {new_size}: batch {k:,} is now batch {moved:,}, "
            f"which holds the same place in the epoch (from sample {min(start, n - 1):,} "
            f"of {n:,} on)."
        )
    moved = min(k, last)
    if moved == k and new_size == size:
        return moved, f"Now {md(new_title)}: batch {k:,} of its own loader (0 to {last:,})."
    where = f"{md(new_title)} with batch_size {new_size}"
    if moved == k:
        return moved, f"Now {where}: batch {k:,} of its loader (0 to {last:,})."
    return moved, (
        f"Now {where}: it has batches 0 to {last:,}, so batch {k:,} became {moved:,}, the last."
    )


def open_image(split: str, index: int) -> None:
    """A click on an image in any grid but the gallery: show it on the Images page, large,
    with the gallery on the page that holds it."""
    st.session_state.update(
        split=split,
        image=index,
        cls=ALL_CLASSES,
        page=index // GALLERY_PAGE + 1,
        _keep_image=True,
        _open_images_page=True,
    )


ALL_CLASSES = "All classes"
GALLERY_PAGE = 60  # images per page of the Images page's gallery


def class_picker(data: datalib.SplitData, *, allow_all: bool, label: str = "Class") -> int | None:
    """A class chooser by name (or "All classes"); returns the label index or None for all."""
    options = ([ALL_CLASSES] if allow_all else []) + list(data.classes)
    if st.session_state.get("cls") not in (None, *options):
        # "All classes" from the Images page, or a class of another dataset: the first one,
        # in the URL too, so a link copied here opens what the page shows.
        st.session_state["cls"] = options[0]
    name = st.selectbox(label, options, key="cls", bind=URL)
    return None if name == ALL_CLASSES else data.classes.index(name)


# The grid of images every page draws: a CSS grid with a gap between tiles, as many per row as
# fill the rows, pixels drawn hard-edged by the browser from small PNGs. Captions are set as
# text (never HTML or Markdown): class and file names come from the data, not from us.
_GRID_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  let grid = parentElement.querySelector('.grid');
  if (!grid) {
    grid = document.createElement('div');
    grid.className = 'grid';
    parentElement.appendChild(grid);
  }
  grid.style.gridTemplateColumns = `repeat(${data.columns}, minmax(0, ${data.size}px))`;
  grid.classList.toggle('pixelated', data.pixelated);
  grid.replaceChildren(...data.tiles.map((tile) => {
    const figure = document.createElement('figure');
    const image = document.createElement('img');
    image.src = tile.src;
    image.alt = tile.caption;
    const caption = document.createElement('figcaption');
    caption.textContent = tile.caption;
    figure.append(image, caption);
    if (data.clickable) {
      figure.className = 'clickable';
      figure.title = 'Open this image large';
      figure.onclick = () => setTriggerValue('clicked', tile.key);
    }
    if (tile.key === data.current) figure.classList.add('current');
    return figure;
  }));
}
"""
_GRID_CSS = """
.grid { display: grid; gap: 10px 8px; }
figure { margin: 0; }
img { width: 100%; display: block; border-radius: 2px; }
.pixelated img { image-rendering: pixelated; }
figcaption {
  font-size: 0.75rem; line-height: 1.2; margin-top: 2px; text-align: center;
  color: var(--st-text-color); opacity: 0.75; overflow-wrap: anywhere;
}
.clickable { cursor: pointer; }
.clickable:hover img { outline: 2px solid var(--st-primary-color); }
.current img { outline: 3px solid var(--st-primary-color); }
"""
_grid = st.components.v2.component("batchscope_image_grid", js=_GRID_JS, css=_GRID_CSS)
GRID_ROOM = 960  # pixels a grid may fill across the main column of the wide layout
GRID_GAP = 8


def grid_columns(count: int, size: int, room: int = GRID_ROOM) -> int:
    """Tiles per row: as many as fit in `room`, fewer where that fills the last row better."""
    fit = max(1, (room + GRID_GAP) // (size + GRID_GAP))
    if count <= fit:
        return max(count, 1)
    # The fewest empty places in the last row; among equals, the most per row.
    return min(range(max(1, fit // 2), fit + 1), key=lambda n: (-count % n, -n))


def pixel_grid(
    data: datalib.SplitData,
    indices: Sequence[int],
    captions: Sequence[str],
    *,
    key: str,
    size: int = 84,
    room: int = GRID_ROOM,
    on_click: Callable[[int], None] | None = None,
    current: int | None = None,
    images: Sequence[np.ndarray] | None = None,
) -> None:
    """Images drawn `size` pixels wide with hard pixel edges, a gap between them and a caption
    under each: the index's thumbnails, or `images` (decoded already, e.g. a batch).
    `on_click(index)` hears which image was clicked; `current` is outlined."""
    if len(indices) == 0:
        st.info("No images to show.")
        return
    if images is None:
        sources = [
            f"data:{mime};base64,{base64.b64encode(blob).decode()}"
            for blob, mime in data.thumbnails(list(indices))
        ]
    else:
        sources = [png_data_url(pixels, size) for pixels in images]
    tiles = [
        {"src": src, "caption": caption, "key": int(index)}
        for src, caption, index in zip(sources, captions, indices, strict=True)
    ]
    _grid(
        data={
            "tiles": tiles,
            "columns": grid_columns(len(tiles), size, room),
            "size": size,
            "clickable": on_click is not None,
            "current": current,
            # Small images are drawn with hard pixel edges; thumbnails of big ones smoothly.
            "pixelated": max(data.image_shape[1:]) <= THUMB,
        },
        key=key,
        on_clicked_change=(lambda: on_click(st.session_state[key]["clicked"]))
        if on_click
        else None,
    )


# Hovering a point of a chart shows its image: this component finds the Plotly chart whose
# layout.meta names it on the page, listens to its hover events (Plotly's own, in the
# browser) and sends the hovered point's customdata back, a moment after the pointer rests;
# the fragment around it then draws that image. One listener per chart, whatever the reruns.
_HOVER_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  window.batchscopeHover = window.batchscopeHover || {};
  window.batchscopeHover[data.chart] = setTriggerValue;
  let box = parentElement.querySelector('.preview');
  if (!box) {
    box = document.createElement('figure');
    box.className = 'preview';
    box.append(document.createElement('img'), document.createElement('figcaption'));
    parentElement.appendChild(box);
  }
  box.querySelector('img').src = data.src || '';
  box.querySelector('img').style.display = data.src ? 'block' : 'none';
  box.querySelector('figcaption').textContent = data.caption;
  let tries = 0;
  const attach = () => {
    const chart = Array.from(document.querySelectorAll('.js-plotly-plot'))
      .find((gd) => gd.layout && gd.layout.meta === data.chart);
    if (!chart || !chart.on) {
      if (tries++ < 100) setTimeout(attach, 200);
      return;
    }
    if (chart.batchscopeHover) return;
    chart.batchscopeHover = true;
    let timer = null;
    chart.on('plotly_hover', (event) => {
      const point = event.points && event.points[0];
      if (!point || point.customdata === undefined) return;
      clearTimeout(timer);
      // A row of typed customdata arrives as an object keyed "0", "1", ...: send a list.
      const row = Array.isArray(point.customdata) ? point.customdata : Object.values(point.customdata);
      timer = setTimeout(() => window.batchscopeHover[data.chart]('hovered', row), 150);
    });
  };
  attach();
}
"""
_HOVER_CSS = """
.preview { margin: 0; display: flex; flex-direction: column; gap: 6px; min-height: 150px; }
.preview img { width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated;
  border-radius: 2px; }
.preview figcaption { font-size: 0.875rem; color: var(--st-text-color); }
"""
_hover = st.components.v2.component("batchscope_hover_image", js=_HOVER_JS, css=_HOVER_CSS)


def hover_image(chart: str, show: Callable[[list], tuple[str, str] | None], *, key: str) -> None:
    """Under a chart whose layout.meta is `chart`: the image of the point the pointer rests
    on. `show(customdata)` gives that image's (data URL, caption), or None."""
    hovered = (st.session_state.get(key) or {}).get("hovered")
    found = show(hovered) if hovered is not None else None
    src, caption = found or ("", "Rest the pointer on a point to see its image here.")
    _hover(
        data={"chart": chart, "src": src, "caption": caption},
        key=key,
        on_hovered_change=lambda: None,
    )


def png_data_url(pixels: np.ndarray, size: int) -> str:
    """An image as a PNG data URL, never larger than the `size` pixels it is shown at: the
    browser scales small images up with hard edges, large ones are scaled down here."""
    image = Image.fromarray(pixels)
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BOX)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def upscale(pixels: np.ndarray, size: int) -> np.ndarray:
    """The image about `size` pixels on its longer side, as shown: a small one with each pixel
    repeated (no blur, hard edges), a big one reduced (area mean), never sent larger."""
    if max(pixels.shape[:2]) > size:
        return shrink(pixels, size)
    factor = max(1, size // max(pixels.shape[:2]))
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1)


def shrink(pixels: np.ndarray, size: int) -> np.ndarray:
    """The image reduced to at most `size` pixels on its longer side (area mean), or as is."""
    if max(pixels.shape[:2]) <= size:
        return pixels
    image = Image.fromarray(pixels)
    image.thumbnail((size, size), Image.Resampling.BOX)
    return np.asarray(image)


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
    on_select: Callable[[], None] | str | None = None,
    selection_mode: str | tuple[str, ...] = "points",
):
    """A Plotly chart whose camera button saves a 2x PNG named `name`, with PNG and CSV
    downloads of the picture and of the numbers behind it; `on_select` (a callback, or
    "rerun") gets the selected points, which this returns."""
    figure.update_layout(
        hoverlabel={"bgcolor": "white", "bordercolor": "#555", "font": {"color": "#262730"}},
        modebar={"orientation": "v"},  # down the right edge: across the top it hides the title
    )
    if figure.layout.legend.orientation is None:  # under the chart: the right edge is the toolbar's
        figure.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0})
    event = st.plotly_chart(
        figure,
        key=key,
        config={"toImageButtonOptions": {"format": "png", "filename": name, "scale": 2}},
        **({"on_select": on_select, "selection_mode": selection_mode} if on_select else {}),
    )
    png, csv = st.columns(2)
    if browser_for_png():
        png.download_button(
            "Download PNG",
            data=lambda: chart_png(figure),
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
    return event


# Server-side PNGs: kaleido starts a Chromium for each (about 1 GB and 5 s). One at a time
# for the whole server; the last PNG_KEPT are kept, so the same chart again costs nothing.
PNG_KEPT = 16
PNG_WAIT = 2.0  # seconds a click waits for another render before it is refused
_png_render = threading.Lock()
_pngs: OrderedDict[str, bytes] = OrderedDict()
_pngs_lock = threading.Lock()


class PngBusy(RuntimeError):
    """Another chart is being drawn as a PNG on the server."""


def chart_png(figure: go.Figure) -> bytes:
    """The chart as a 2x PNG, drawn on the server (one render at a time, results kept)."""
    key = hashlib.sha256(figure.to_json().encode()).hexdigest()
    with _pngs_lock:
        if key in _pngs:
            _pngs.move_to_end(key)
            return _pngs[key]
    if not _png_render.acquire(timeout=PNG_WAIT):
        raise PngBusy(
            "Another chart is being drawn as a PNG on the server right now. Try again in a few "
            "seconds, or use the camera icon on the chart: it saves the same picture."
        )
    try:
        with _pngs_lock:  # drawn by the render this click waited on: not drawn again
            if key in _pngs:
                return _pngs[key]
        png = figure.to_image(format="png", scale=2)
        with _pngs_lock:
            _pngs[key] = png
            while len(_pngs) > PNG_KEPT:
                _pngs.popitem(last=False)
    finally:
        _png_render.release()
    return png


def browser_for_png() -> str | None:
    """The Chromium kaleido will drive for server-side PNGs, if this machine has one."""
    path = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chrome")
    if path and os.access(path, os.X_OK):
        os.environ.setdefault("BROWSER_PATH", path)
        return path
    return None


def after_page() -> None:
    """What app.py runs after every page: the link to share, notices about the opening one, and
    the move to the Images page when an image was clicked."""
    share_link()
    report_link_fallbacks()
    if st.session_state.pop("_open_images_page", False):
        # Only the image goes in by hand: the bound inputs write their own values back.
        st.switch_page("pages/images.py", query_params={"image": str(st.session_state["image"])})


# "Copy link": the full URL in view, and a button that puts it on the clipboard. The Clipboard
# API needs a secure context (https, or localhost); a team server on plain http gets the
# older copy command, which browsers still allow from a click.
_COPY_JS = """
export default function(component) {
  const { data, parentElement } = component;
  let box = parentElement.querySelector('.copy');
  if (!box) {
    box = document.createElement('div');
    box.className = 'copy';
    const url = document.createElement('input');
    url.readOnly = true;
    url.setAttribute('aria-label', 'Link to this view');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Copy link';
    const said = document.createElement('span');
    said.setAttribute('role', 'status');
    box.append(url, button, said);
    parentElement.appendChild(box);
    url.onfocus = () => url.select();
    button.onclick = async () => {
      const text = url.value;
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(text);
          copied = true;
        }
      } catch (error) { copied = false; }
      if (!copied) {
        url.focus();
        url.select();
        try { copied = document.execCommand('copy'); } catch (error) { copied = false; }
      }
      said.textContent = copied
        ? 'Copied to the clipboard.'
        : 'Could not copy here: select the link above and copy it.';
    };
  }
  const [url, , said] = box.children;
  if (url.value !== data.url) { url.value = data.url; said.textContent = ''; }
}
"""
_COPY_CSS = """
.copy { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
input {
  flex: 1 1 100%; min-width: 0; font: 0.8rem var(--st-code-font, monospace);
  padding: 4px 6px; border: 1px solid var(--st-border-color, #ccc); border-radius: 4px;
  color: var(--st-text-color); background: var(--st-secondary-background-color);
}
button {
  font: inherit; font-size: 0.875rem; padding: 4px 12px; cursor: pointer; border-radius: 6px;
  border: 1px solid var(--st-border-color, #ccc); background: var(--st-background-color);
  color: var(--st-text-color);
}
button:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
span { font-size: 0.8rem; opacity: 0.8; }
"""
_copy_link = st.components.v2.component("batchscope_copy_link", js=_COPY_JS, css=_COPY_CSS)


def share_link() -> None:
    """The sidebar's link to this page with every input of the view, and a button to copy it."""
    query = urlencode(st.query_params.to_dict())
    url = f"{st.context.url or ''}{'?' + query if query else ''}"
    with st.sidebar:
        st.caption("Link to this view (same dataset, split and inputs):")
        _copy_link(
            data={"url": url or "(open the app in a browser to get its address)"}, key="share"
        )


# The URL's whole-number inputs. A value Python cannot make an int64 of (inf, nan, 400
# digits) is dropped before a widget reads it: Streamlit's number input would raise on it.
NUMBER_PARAMS = ("batch_size", "seed", "batch", "image", "page", "draw_seed")
_WHOLE_NUMBER = re.compile(r"-?\d{1,18}")


def check_opening_link() -> None:
    """Remember the query of the link that opened this session, before any widget reads it,
    and drop the numbers in it no widget can read (they are reported as refused)."""
    if "_opening_link" not in st.session_state:
        st.session_state["_opening_link"] = st.query_params.to_dict()
        unreadable = [
            key
            for key in NUMBER_PARAMS
            if key in st.query_params and not _WHOLE_NUMBER.fullmatch(st.query_params[key].strip())
        ]
        for key in unreadable:
            del st.query_params[key]
        if unreadable:  # widgets seed from the opening URL: make it the one without them
            with get_script_run_ctx().session_state.query_params() as params:
                params.set_initial_query_params_from_current()


SHOWN_CHARS = 80  # of a refused value in the notice: a 400-digit number is not read out


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
            shown = value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "..."
            refused.append(f"{key}={shown!r}")
    if refused:
        st.toast(
            f"This link had values that cannot be used here: {md(', '.join(refused))}. "
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

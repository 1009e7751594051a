"""Images: a paged gallery per class, and one image with every pixel's value."""

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import datalib
import datalib.transforms
import ui

PER_PAGE = ui.GALLERY_PAGE
HEATMAP_SIDE = 96  # pixels on the longer side the pixel chart draws, at most
DRAWS = 16  # of the pipeline, in the augmentation preview

view = ui.sidebar()
data = view.data
st.title("Images", anchor=False)


def preview(index: int) -> None:
    """The augmentation preview: the pipeline drawn DRAWS times on this image."""
    pipeline = view.pipeline
    st.markdown(f"**Augmentation preview: {DRAWS} draws of the pipeline**")
    if not pipeline:
        st.caption(
            "No pipeline yet: add transforms in the sidebar (Transforms) to see this image as "
            "the model would, draw after draw."
        )
        return
    try:
        drawn = datalib.transforms.draws(data, pipeline, index, DRAWS)
    except datalib.DatalibError as e:  # the rest of the page still draws
        st.error(ui.md(e), icon=":material/error:")
        return
    pictures, low, high = datalib.transforms.viewable(drawn)
    ui.pixel_grid(
        data,
        [index] * DRAWS,
        [f"draw {j + 1}" for j in range(DRAWS)],
        key="draws",
        images=pictures,
        size=72,
        room=360,
    )
    st.caption(
        f"Through `{pipeline.title}`. "
        + (
            f"Draw 1 is what the Batches page shows for #{index} (`torch.manual_seed("
            f"{pipeline.seed} + {index})`); the next draws continue from that generator, as "
            f"`[augment(image) for _ in range({DRAWS})]` after the same seed does."
            if pipeline.random
            else "No step is random: every draw is the same."
        )
        + (
            ""
            if (low, high) == (0.0, 1.0)
            else f" Shown with the lowest value ({low:.3f}) black and the highest "
            f"({high:.3f}) white."
        )
    )


gallery, single = st.columns([3, 2], gap="large")
with gallery:
    st.subheader("Gallery", anchor=False)
    label = ui.class_picker(data, allow_all=True)
    with ui.user_errors():
        members = datalib.class_indices(data, label)
    pages = max(1, math.ceil(len(members) / PER_PAGE))
    if st.session_state.get("page", 1) > pages:
        st.session_state["page"] = 1
    page = st.pagination(pages, key="page", bind=ui.URL, max_visible_pages=7)
    shown = members[(page - 1) * PER_PAGE : page * PER_PAGE]
    # The large image follows the gallery: a new class or page opens its first image (a link
    # that names an image keeps it: the gallery it opened on is not a change).
    gallery_view = (view.title, label, page)
    keep = st.session_state.pop("_keep_image", False)  # opened from another page's grid
    if (
        st.session_state.get("_gallery_view", gallery_view) != gallery_view
        and len(shown)
        and not keep
    ):
        st.session_state["image"] = int(shown[0])
    st.session_state["_gallery_view"] = gallery_view
    what = "images" if label is None else f"images of class {data.classes[label]}"
    st.caption(
        ui.count_caption(len(shown), len(members), ui.md(f"{what} in {view.title}"))
        + f" Page {page:,} of {pages:,}; caption: {'class ' if label is None else ''}(#index)."
        + " Click an image to open it large."
    )
    if label is None:
        captions = [
            f"{data.classes[c]} (#{i})" for c, i in zip(data.labels_of(shown), shown, strict=True)
        ]
    else:
        captions = [f"#{i}" for i in shown]

    def open_large(index: int) -> None:
        """A click on a gallery image opens it as "One image" (and in the URL)."""
        st.session_state["image"] = index

    ui.pixel_grid(
        data,
        shown,
        captions,
        key="gallery",
        size=64,
        room=560,
        on_click=open_large,
        current=st.session_state.get("image"),
    )

with single:
    st.subheader("One image", anchor=False)
    index = st.number_input(
        f"Image index (0 to {len(data) - 1:,})",
        min_value=0,
        max_value=len(data) - 1,
        value=int(shown[0]) if len(shown) else 0,
        key="image",
        bind=ui.URL,
    )
    with ui.user_errors():
        pixels = data.pixels([index])[0]
    st.image(ui.upscale(pixels, 280), width=280)
    st.markdown(
        f"**#{index:,}** in {ui.md(view.title)}, label "
        f"**{ui.md(data.classes[data.labels_of([index])[0]])}**"
    )
    preview(index)
    # A big image's values are drawn reduced: a chart of millions of cells would not draw.
    values = ui.shrink(pixels, HEATMAP_SIDE)
    reduced = values.shape != pixels.shape
    if values.ndim == 2:  # grey: a heatmap whose hover shows both scales
        trace = go.Heatmap(
            z=values,
            customdata=np.round(values / 255, 4),
            colorscale="gray",
            zmin=0,
            zmax=255,
            hovertemplate=(
                "row %{y}, col %{x}<br>raw %{z}<br>after ToTensor %{customdata:.4f}<extra></extra>"
            ),
            colorbar={"title": "raw"},
        )
        table = pd.DataFrame(values).rename_axis("row").reset_index()
    else:  # colour: the image itself, hover shows the channels
        trace = go.Image(
            z=values,
            hovertemplate="row %{y}, col %{x}<br>raw RGB %{z}<br>after ToTensor: / 255"
            "<extra></extra>",
        )
        rows, cols = np.indices(values.shape[:2])
        table = pd.DataFrame(
            {"row": rows.ravel(), "col": cols.ravel()}
            | {name: values[..., c].ravel() for c, name in enumerate("RGB")}
        )
    figure = go.Figure(trace)
    figure.update_yaxes(autorange="reversed", scaleanchor="x", constrain="domain")
    figure.update_xaxes(constrain="domain")
    figure.update_layout(
        title=f"{ui.plot(view.title)} #{index}: pixel values",
        height=460,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    ui.chart(
        figure,
        key="pixels",
        name=ui.export_name(data.spec, [data.split], f"image-{index}-pixels"),
        table=table,
    )
    if reduced:
        st.caption(
            f"The image is {pixels.shape[1]}x{pixels.shape[0]}: its values are shown reduced to "
            f"{values.shape[1]}x{values.shape[0]} (each cell the mean of the pixels it covers), "
            "in the chart and the CSV."
        )
    st.caption("Hover a pixel for its raw value (0-255) and what ToTensor makes of it (0-1).")

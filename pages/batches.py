"""Batches: batch k exactly as the DataLoader yields it, before and after the transform
pipeline: images, labels, tensor facts and the code that yields the same batch."""

import pandas as pd
import plotly.express as px
import streamlit as st

import datalib
import datalib.snippets
import datalib.transforms
import ui

MAX_SHOWN = 128

view = ui.sidebar()
data, loader, pipeline = view.data, view.loader, view.pipeline
st.title("Batches", anchor=False)
st.caption(
    f"{ui.md(view.title)} through `DataLoader(dataset, batch_size={loader.batch_size}, "
    f"shuffle={loader.shuffle}, drop_last={loader.drop_last}, "
    f"generator=torch.Generator().manual_seed({loader.seed}))` with "
    f"`{pipeline.title}`. Change these in the sidebar."
)

k = ui.batch_picker(view)
with ui.user_errors():
    batch = datalib.batch(data, loader, k, pipeline)
indices = batch.indices.tolist()
labels = batch.labels.tolist()

shown = min(len(indices), MAX_SHOWN)
st.subheader(f"Batch {k:,} of {loader.num_batches(len(data)):,}", anchor=False)
st.caption(
    ui.count_caption(shown, len(indices), f"images in batch {k}")
    + " Caption: label (#index); click an image to open it large."
)
captions = [f"{label} (#{index})" for label, index in zip(labels, indices, strict=True)][:shown]
size = 112 if shown <= 16 and not pipeline else 84 if shown <= 16 else 64
room = ui.GRID_ROOM // 2 - ui.GRID_GAP if pipeline else ui.GRID_ROOM
before = st.container()
if pipeline:
    before, after = st.columns(2)
    before.markdown("**Before the pipeline** (as decoded)")
    with after:
        st.markdown("**After: what the model receives**")
        pictures, low, high = datalib.transforms.viewable(list(batch.images[:shown]))
        ui.pixel_grid(
            data,
            indices[:shown],
            captions,
            key="batch_after",
            images=pictures,
            size=size,
            room=room,
            on_click=lambda index: ui.open_image(data.split, index),
        )
        st.caption(
            f"Through `{pipeline.title}`. "
            + (
                "Shown as they are (values in 0 to 1)."
                if (low, high) == (0.0, 1.0)
                else f"Shown with the batch's lowest value ({low:.3f}) black and its highest "
                f"({high:.3f}) white."
            )
            + (
                f" Random steps: sample i is drawn from `torch.manual_seed({pipeline.seed} + i)`."
                if pipeline.random
                else ""
            )
        )
with before:
    ui.pixel_grid(
        data,
        indices[:shown],
        captions,
        key="batch_images",
        images=batch.shown(shown),
        size=size,
        room=room,
        on_click=lambda index: ui.open_image(data.split, index),
    )

tensors, histogram = st.columns([1, 1])
with tensors:
    st.markdown("**The tensors the model receives**")
    st.table({"fact": list(batch.describe()), "value": list(batch.describe().values())})
    st.markdown("**labels**")
    st.code(datalib.tensor_text(batch.labels), language="python")
with histogram:
    counts = datalib.class_counts(batch.labels, len(data.classes))
    figure = px.bar(
        color_discrete_sequence=ui.COLORS,
        x=list(range(len(data.classes))),
        y=counts,
        labels={"x": "label", "y": "samples in this batch"},
        title=f"{ui.plot(view.title)}: labels in batch {k} (batch_size={loader.batch_size})",
    )
    figure.update_xaxes(dtick=1)
    figure.update_yaxes(dtick=1 if counts.max() <= 10 else None)
    ui.chart(
        figure,
        key="batch_labels",
        name=ui.export_name(data.spec, [data.split], f"batch-{k}-labels"),
        table=pd.DataFrame(
            {"label": range(len(data.classes)), "class": data.classes, "count": counts}
        ),
    )

with st.expander("Reproduce this batch in code", icon=":material/code:"):
    st.caption(
        "Runs as shown: the same indices, labels and tensors"
        + (", with the same random draws (seed shown)" if pipeline.random else "")
        + "."
    )
    st.code(
        datalib.snippets.batch_code(
            data.spec, data.root, data.split, loader, data.image_shape, pipeline, k
        ),
        language="python",
    )

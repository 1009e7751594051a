"""Batches: batch k exactly as the DataLoader yields it, images, labels and tensor facts."""

import pandas as pd
import plotly.express as px
import streamlit as st

import datalib
import ui

MAX_SHOWN = 128

view = ui.sidebar()
data, loader = view.data, view.loader
st.title("Batches", anchor=False)
st.caption(
    f"{ui.md(view.title)} through `DataLoader(dataset, batch_size={loader.batch_size}, "
    f"shuffle={loader.shuffle}, drop_last={loader.drop_last}, "
    f"generator=torch.Generator().manual_seed({loader.seed}))` with `transforms.ToTensor()`. "
    "Change these in the sidebar."
)

k = ui.batch_picker(view)
with ui.user_errors():
    batch = datalib.batch(data, loader, k)
indices = batch.indices.tolist()
labels = batch.labels.tolist()

shown = min(len(indices), MAX_SHOWN)
st.subheader(f"Batch {k:,} of {loader.num_batches(len(data)):,}", anchor=False)
st.caption(
    ui.count_caption(shown, len(indices), f"images in batch {k}")
    + " Caption: label (#index); click an image to open it large."
)
ui.pixel_grid(
    data,
    indices[:shown],
    [f"{label} (#{index})" for label, index in zip(labels, indices, strict=True)][:shown],
    key="batch_images",
    images=batch.shown(shown),
    size=112 if shown <= 16 else 84,
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

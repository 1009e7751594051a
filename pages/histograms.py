"""Histograms: pixel values of one image, a batch, a class or the whole split; is it scaled?"""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

import datalib
import ui

SCOPES = ["Whole split", "One class", "Current batch", "One image"]
RAW, SCALED = "raw 0-255 (on disk)", "scaled 0-1 (after ToTensor)"

view = ui.sidebar()
data = view.data
st.title("Histograms", anchor=False)

scope = st.segmented_control(
    "Pixels of", SCOPES, default=SCOPES[0], required=True, key="scope", bind=ui.URL
)
scale_column, axis_column = st.columns([2, 1], vertical_alignment="bottom")
scale = scale_column.segmented_control(
    "Values", [RAW, SCALED], default=SCALED, required=True, key="scale", bind=ui.URL
)
# Background pixels (value 0) outnumber every other value by about 100x: log y shows the rest.
log_y = axis_column.toggle("Log y axis", value=True, key="log_y", bind=ui.URL)

with ui.user_errors():
    if scope == "One class":
        label = ui.class_picker(data, allow_all=False)
        stats = datalib.split_pixel_stats(data, label)
        what = f"class {data.classes[label]}"
    elif scope == "Current batch":
        k = ui.batch_picker(view)
        stats = datalib.subset_pixel_stats(data, datalib.batch(data, view.loader, k).indices)
        what = f"batch {k} (batch_size={view.loader.batch_size})"
    elif scope == "One image":
        index = st.number_input(
            f"Image index (0 to {len(data) - 1:,})",
            min_value=0,
            max_value=len(data) - 1,
            value=0,
            key="image",
            bind=ui.URL,
        )
        stats = datalib.subset_pixel_stats(data, [index])
        what = f"image #{index}"
    else:
        stats = datalib.split_pixel_stats(data)
        what = "all images"

st.info(datalib.scaling_verdict(stats), icon=":material/straighten:")
raw = scale == RAW
factor = 1 if raw else 255
columns = st.columns(5)
columns[0].metric("pixels", f"{stats.total:,}")
for column, name in zip(columns[1:], ("min", "max", "mean", "std"), strict=True):
    column.metric(name, f"{getattr(stats, name) * 255 / factor:.4f}".rstrip("0").rstrip("."))

values = np.arange(256) / factor
figure = px.bar(
    color_discrete_sequence=ui.COLORS,
    x=values,
    y=stats.counts,
    log_y=log_y,
    labels={"x": f"pixel value, {scale}", "y": "pixels"},
    title=f"{view.title}, {what}: pixel values, {scale} (n={stats.total:,} pixels)",
)
figure.update_traces(
    hovertemplate="value %{x}<br>%{y:,} pixels<extra></extra>", marker_line_width=0
)
figure.update_layout(bargap=0)
ui.chart(
    figure,
    key="histogram",
    name=ui.export_name(data.spec, [data.split], "pixel-histogram"),
    table=pd.DataFrame({"raw": range(256), "scaled": np.arange(256) / 255, "pixels": stats.counts}),
)

if scope == "Whole split":
    st.markdown(
        "To normalise with these statistics, paste:"
        if data.split == "train"
        else "These are the test split's statistics; normalise with the **train** split's:"
    )
    st.code(f"transforms.Normalize(({stats.mean:.4f},), ({stats.std:.4f},))", language="python")

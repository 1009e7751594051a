"""Histograms: pixel values of one image, a batch, a class or the whole split; is it scaled?"""

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

import datalib
import datalib.checks
import datalib.snippets
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

# Shown only past half a second: the first count in a fresh install compiles its loop.
with ui.user_errors(), st.spinner("Counting pixel values..."):
    if scope == "One class":
        label = ui.class_picker(data, allow_all=False)
        stats = datalib.pixel_stats(data, label=label)
        selection = datalib.class_indices(data, label)
        what = f"class {data.classes[label]}"
    elif scope == "Current batch":
        k = ui.batch_picker(view)
        selection = datalib.batch(data, view.loader, k).indices
        stats = datalib.pixel_stats(data, selection)
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
        selection = [index]
        stats = datalib.pixel_stats(data, selection)
        what = f"image #{index}"
    else:
        selection = None
        stats = datalib.pixel_stats(data)
        what = "all images"
    # Colour images: one histogram per channel, and mean/std per channel for Normalize.
    channels = stats.channels if data.image_shape[0] > 1 else ()

scaled = datalib.checks.check_scaled(
    stats.min, stats.max, round(stats.min * 255), round(stats.max * 255)
)
st.info(scaled.summary, icon=":material/straighten:")
raw = scale == RAW
factor = 1 if raw else 255
columns = st.columns(5)
columns[0].metric("pixels", f"{stats.total:,}")
for column, name in zip(columns[1:], ("min", "max", "mean", "std"), strict=True):
    column.metric(name, f"{getattr(stats, name) * 255 / factor:.4f}".rstrip("0").rstrip("."))

values = np.arange(256) / factor
traces = {"R": channels[0], "G": channels[1], "B": channels[2]} if channels else {"all": stats}
histogram = pd.DataFrame(
    [
        {
            "channel": name,
            "raw": v,
            "scaled": round(v / 255, 4),
            "value": values[v],
            "pixels": int(n),
        }
        for name, part in traces.items()
        for v, n in enumerate(part.counts.sum(axis=0))
    ]
)
figure = px.bar(
    histogram,
    x="value",
    y="pixels",
    color="channel",
    barmode="overlay",
    opacity=0.6 if channels else 1.0,
    color_discrete_sequence=["#ff2b2b", "#29b09d", "#0068c9"] if channels else ui.COLORS,
    log_y=log_y,
    labels={"value": f"pixel value, {scale}", "pixels": "pixels"},
    title=f"{ui.plot(view.title)}, {ui.plot(what)}: pixel values, {scale} "
    f"(n={stats.total:,} pixels)",
)
figure.update_traces(
    hovertemplate="value %{x}<br>%{y:,} pixels<extra></extra>", marker_line_width=0
)
figure.update_layout(bargap=0, showlegend=bool(channels))
if log_y:  # ticks at powers of ten only: minor digits (2, 5) read like counts
    figure.update_yaxes(dtick=1, exponentformat="SI")
ui.chart(
    figure,
    key="histogram",
    name=ui.export_name(data.spec, [data.split], "pixel-histogram"),
    table=histogram.drop(columns="value"),
)
if channels:
    st.caption(
        "Per channel after ToTensor: "
        + "; ".join(
            f"{name} mean {c.mean:.4f}, std {c.std:.4f}"
            for name, c in zip("RGB", channels, strict=True)
        )
    )

if scope == "Whole split":
    # Normalize with the training split's statistics, whichever split is shown: test data is
    # scaled as the model was trained, never by its own figures.
    with ui.user_errors():
        names = datalib.splits_of(data.spec.name)
        source = (
            data
            if data.split == "train" or "train" not in names
            else ui.load(data.spec.name, "train")
        )
        train_stats = datalib.pixel_stats(source).channels
    if source is data:
        st.markdown("To normalise with these statistics, paste:")
    else:
        st.markdown(
            f"These are the {ui.md(data.split)} split's statistics (mean "
            + ", ".join(f"{s.mean:.4f}" for s in (channels or (stats,)))
            + "). Normalise every split with the **train** split's, as the model was trained:"
        )
    st.code(datalib.snippets.normalize_line(train_stats), language="python")

"""Histograms: pixel values of one image, a batch, a class or the whole split; is it scaled?"""

import pandas as pd
import plotly.express as px
import streamlit as st

import datalib
import datalib.checks
import datalib.snippets
import datalib.transforms
import ui

SCOPES = ["Whole split", "One class", "Current batch", "One image"]
RAW, SCALED = "raw 0-255 (on disk)", "scaled 0-1 (after ToTensor)"
AFTER = "after the pipeline"


def data_range(data, label, selection) -> tuple[int, int]:
    """The raw 0-255 range on disk of what the histogram shows (for the scaled check)."""
    raw = (
        datalib.pixel_stats(data, label=label)
        if selection is None or label is not None
        else datalib.pixel_stats(data, selection)
    )
    return round(raw.min * 255), round(raw.max * 255)


view = ui.sidebar()
data = view.data
st.title("Histograms", anchor=False)

scope = st.segmented_control(
    "Pixels of", SCOPES, default=SCOPES[0], required=True, key="scope", bind=ui.URL
)
pipeline = view.pipeline
scale_column, axis_column = st.columns([2, 1], vertical_alignment="bottom")
if pipeline:
    scale_column.markdown(f"Values after `{pipeline.title}` (set in the sidebar)")
    scale = AFTER
else:
    scale = scale_column.segmented_control(
        "Values", [RAW, SCALED], default=SCALED, required=True, key="scale", bind=ui.URL
    )
# Background pixels (value 0) outnumber every other value by about 100x: log y shows the rest.
log_y = axis_column.toggle("Log y axis", value=True, key="log_y", bind=ui.URL)

# Shown only past half a second: the first count in a fresh install compiles its loop.
with ui.user_errors(), st.spinner("Counting pixel values..."):
    label = selection = None
    if scope == "One class":
        label = ui.class_picker(data, allow_all=False)
        selection = datalib.class_indices(data, label)
        what = f"class {data.classes[label]}"
    elif scope == "Current batch":
        k = ui.batch_picker(view)
        selection = datalib.batch(data, view.loader, k).indices.numpy()
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
        what = f"image #{index}"
    else:
        what = "all images"
    if pipeline:
        after = datalib.transforms.after_stats(
            data, pipeline, None if scope in SCOPES[:2] else selection, label=label
        )
        low, high, mean, std = after.min, after.max, after.mean, after.std
        if after.sampled:
            what = after.what if scope == SCOPES[0] else f"{what}, {after.what}"
    else:
        stats = (
            datalib.pixel_stats(data, label=label)
            if scope in SCOPES[:2]
            else datalib.pixel_stats(data, selection)
        )
        low, high, mean, std = stats.min, stats.max, stats.mean, stats.std
    # Colour images: one histogram per channel, and mean/std per channel for Normalize.
    colour = data.image_shape[0] > 1

on_disk = (
    data_range(data, label, selection)
    if pipeline
    else (round(stats.min * 255), round(stats.max * 255))
)
scaled = datalib.checks.check_scaled(
    low, high, *on_disk, datalib.checks.standardized(pipeline, after if pipeline else None)
)
st.info(scaled.summary, icon=":material/straighten:")
raw = scale == RAW
factor = 1 if raw else 255
columns = st.columns(5)
columns[0].metric("pixels", f"{(after if pipeline else stats).total:,}")
for column, name, value in zip(
    columns[1:], ("min", "max", "mean", "std"), (low, high, mean, std), strict=True
):
    column.metric(name, f"{value * 255 / factor:.4f}".rstrip("0").rstrip("."))

channel_names = ["R", "G", "B"] if colour else ["all"]
if pipeline:
    edges, counts = after.histogram()
    width = float(edges[1] - edges[0]) if len(edges) > 1 else 0.01
    histogram = pd.DataFrame(
        [
            {
                "channel": name,
                "from": round(float(x), 4),
                "value": float(x) + width / 2,
                "pixels": int(n),
            }
            for c, name in enumerate(channel_names)
            for x, n in zip(edges, counts[c], strict=True)
        ]
    )
    table = histogram.drop(columns="value")
else:
    histogram = pd.DataFrame(
        [
            {
                "channel": name,
                "raw": v,
                "scaled": round(v / 255, 4),
                "value": v / factor,
                "pixels": int(n),
            }
            for c, name in enumerate(channel_names)
            for v, n in enumerate(stats.counts[c] if colour else stats.counts.sum(axis=0))
        ]
    )
    table = histogram.drop(columns="value")
figure = px.bar(
    histogram,
    x="value",
    y="pixels",
    color="channel",
    barmode="overlay",
    opacity=0.6 if colour else 1.0,
    color_discrete_sequence=["#ff2b2b", "#29b09d", "#0068c9"] if colour else ui.COLORS,
    log_y=log_y,
    labels={"value": f"pixel value, {scale}", "pixels": "pixels"},
    title=f"{ui.plot(view.title)}, {ui.plot(what)}: pixel values, "
    + (
        f"n={after.total:,} pixels<br><sup>after {ui.plot(pipeline.title)}</sup>"
        if pipeline
        else f"{scale} (n={stats.total:,} pixels)"
    ),
)
figure.update_traces(
    hovertemplate="value %{x:.4g}<br>%{y:,} pixels<extra></extra>", marker_line_width=0
)
figure.update_layout(bargap=0, showlegend=colour)
if log_y:  # ticks at powers of ten only: minor digits (2, 5) read like counts
    figure.update_yaxes(dtick=1, exponentformat="SI")
ui.chart(
    figure,
    key="histogram",
    name=ui.export_name(data.spec, [data.split], "pixel-histogram"),
    table=table,
)
if pipeline:
    st.caption(
        f"Of {after.what}"
        + (
            f", each with its own draws (sample i from seed {pipeline.seed} + i)"
            if pipeline.random
            else ""
        )
        + (
            ". Per channel: "
            + "; ".join(
                f"{name} mean {m:.4f}, std {s:.4f}"
                for name, m, s in zip(
                    channel_names, after.channel_means(), after.channel_stds(), strict=True
                )
            )
            if colour
            else "."
        )
    )
elif colour:
    st.caption(
        "Per channel after ToTensor: "
        + "; ".join(
            f"{name} mean {c.mean:.4f}, std {c.std:.4f}"
            for name, c in zip("RGB", stats.channels, strict=True)
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
        st.markdown("To normalise with these statistics (before any pipeline), paste:")
    else:
        st.markdown(
            f"These are the {ui.md(data.split)} split's statistics. Normalise every split "
            "with the **train** split's, as the model was trained:"
        )
    st.code(datalib.snippets.normalize_line(train_stats), language="python")
    st.caption("Or add it to the pipeline in one click: the sidebar's Normalize button.")

"""Class balance: class counts of train and test side by side, a verdict, and samples."""

import numpy as np
import plotly.express as px
import streamlit as st

import datalib
import ui

SAMPLES = 40

view = ui.sidebar()
spec = view.data.spec
st.title("Class balance", anchor=False)

with ui.user_errors():
    splits = [ui.load(spec.name, split) for split in datalib.splits_of(spec.name)]
table = datalib.class_table(splits)

mode_column, measure_column, order_column = st.columns(3)
mode = mode_column.segmented_control(
    "Bars", ["group", "overlay"], default="group", required=True, key="bars", bind=ui.URL
)
measure = measure_column.segmented_control(
    "Show", ["count", "percent"], default="count", required=True, key="measure", bind=ui.URL
)
order = order_column.segmented_control(
    "Sort by", ["class", "count"], default="class", required=True, key="sort", bind=ui.URL
)

classes = list(splits[0].classes)
if order == "count":  # by the training split's counts, largest first
    train = table[table["split"] == "train"].sort_values("count", ascending=False)
    classes = train["class"].tolist()

sizes = " / ".join(f"{len(d):,}" for d in splits)
# Class and split names come from folders: shown as typed, never as Plotly's HTML.
shown_table = table.assign(**{name: table[name].map(ui.plot) for name in ("class", "split")})
shown_table["split_name"] = table["split"]  # as it is, for a click to choose
figure = px.bar(
    shown_table,
    color_discrete_sequence=ui.COLORS,
    x="class",
    y=measure,
    color="split",
    barmode=mode,
    opacity=0.75 if mode == "overlay" else 1.0,
    category_orders={"class": [ui.plot(name) for name in classes]},
    custom_data=["split", "count", "percent", "label", "split_name"],
    labels={"count": "images", "percent": "% of split", "class": "class"},
    title=(
        f"{ui.plot(spec.title)} {' vs '.join(ui.plot(d.split) for d in splits)}: class "
        f"{'counts' if measure == 'count' else 'shares (%)'} (n={sizes})"
    ),
)
figure.update_traces(
    hovertemplate=(
        "%{customdata[0]}, class %{x}<br>%{customdata[1]:,} images"
        "<br>%{customdata[2]:.2f}% of the split<extra></extra>"
    )
)


def choose_clicked_bar() -> None:
    """A click on a bar chooses its class, and its split, for the samples below."""
    points = st.session_state[chart_key].selection.points
    if points:
        _, _, _, label, split = points[0]["customdata"]
        st.session_state["cls"] = view.data.classes[int(label)]
        st.session_state["samples_from"] = split


# A new key draws the chart afresh: the way to clear a selection Plotly keeps (faded bars).
chart_key = f"balance_{st.session_state.get('_balance_chart', 0)}"
ui.chart(
    figure,
    key=chart_key,
    name=ui.export_name(spec, [d.split for d in splits], "class-balance"),
    table=table,
    on_select=choose_clicked_bar,
)
if st.session_state.get(chart_key) and st.session_state[chart_key].selection.points:

    def clear_selection() -> None:
        st.session_state["_balance_chart"] = st.session_state.get("_balance_chart", 0) + 1

    st.button(
        "Clear the selection", icon=":material/deselect:", on_click=clear_selection, key="unselect"
    )

for data, column in zip(splits, st.columns(len(splits)), strict=True):
    counts = datalib.class_counts(data.labels, len(data.classes))
    ratio = datalib.imbalance_ratio(counts)
    column.metric(f"{ui.md(data.split)}: imbalance ratio (largest / smallest)", f"{ratio:.2f}")
    column.caption(ui.md(datalib.balance_verdict(counts, data.classes)))

st.subheader("Samples of one class", anchor=False)
by_split = {data.split: data for data in splits}
pick_class, pick_split = st.columns([2, 1], vertical_alignment="bottom")
with pick_class:
    label = ui.class_picker(view.data, allow_all=False, label="Class (or click a bar)")
source = pick_split.segmented_control(
    "From",
    list(by_split),
    default=view.data.split,
    required=True,
    key="samples_from",
    bind=ui.URL,
    format_func=ui.md,
)
samples = by_split[source]
name = view.data.classes[label]
with ui.user_errors():  # a folder's splits number their classes each on their own: by name
    members = (
        datalib.class_indices(samples, samples.classes.index(name))
        if name in samples.classes
        else np.zeros(0, dtype=np.int64)
    )
shown = members[:SAMPLES]
st.caption(
    ui.count_caption(len(shown), len(members), f"images of class {ui.md(name)}")
    + f" The first ones in {ui.md(spec.title)} {ui.md(source)}; caption: #index."
)
ui.pixel_grid(samples, shown, [f"#{i}" for i in shown], key="samples", size=70)

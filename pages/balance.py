"""Class balance: class counts of train and test side by side, a verdict, and samples."""

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
figure = px.bar(
    table,
    color_discrete_sequence=ui.COLORS,
    x="class",
    y=measure,
    color="split",
    barmode=mode,
    opacity=0.75 if mode == "overlay" else 1.0,
    category_orders={"class": classes},
    custom_data=["split", "count", "percent", "label"],
    labels={"count": "images", "percent": "% of split", "class": "class"},
    title=(
        f"{spec.title} {' vs '.join(d.split for d in splits)}: class "
        f"{'counts' if measure == 'count' else 'shares (%)'} (n={sizes})"
    ),
)
figure.update_traces(
    hovertemplate=(
        "%{customdata[0]}, class %{x}<br>%{customdata[1]:,} images"
        "<br>%{customdata[2]:.2f}% of the split<extra></extra>"
    )
)


def choose_clicked_class() -> None:
    """A click on a bar chooses its class for the samples below."""
    points = st.session_state["balance"].selection.points
    if points:
        st.session_state["cls"] = view.data.classes[int(points[0]["customdata"][3])]


ui.chart(
    figure,
    key="balance",
    name=ui.export_name(spec, [d.split for d in splits], "class-balance"),
    table=table,
    on_select=choose_clicked_class,
)

for data, column in zip(splits, st.columns(len(splits)), strict=True):
    counts = datalib.split_class_counts(data)
    ratio = datalib.imbalance_ratio(counts)
    column.metric(f"{data.split}: imbalance ratio (largest / smallest)", f"{ratio:.2f}")
    column.caption(datalib.balance_verdict(counts, data.classes))

st.subheader("Samples of one class", anchor=False)
label = ui.class_picker(view.data, allow_all=False, label="Class (or click a bar)")
with ui.user_errors():
    members = datalib.class_indices(view.data, label)
shown = members[:SAMPLES]
st.caption(
    ui.count_caption(len(shown), len(members), f"images of class {view.data.classes[label]}")
    + f" The first ones in {view.title}; caption: #index."
)
ui.pixel_grid(view.data, shown, [f"#{i}" for i in shown], size=70)

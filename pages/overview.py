"""Landing page: what the dataset is, its sizes, classes and image shape."""

import pandas as pd
import streamlit as st

import datalib
import ui

view = ui.sidebar()
spec = view.data.spec
st.title(ui.md(spec.title), anchor=False)
st.write(spec.description)
st.caption(f"Source: {ui.md(spec.source)}")

with ui.user_errors():
    splits = [ui.load(spec.name, split) for split in datalib.splits_of(spec.name)]
columns = st.columns(len(splits) + 2)
for column, data in zip(columns, splits, strict=False):
    column.metric(f"{ui.md(data.split)} images", f"{len(data):,}")
c, h, w = view.data.image_shape
columns[-2].metric("Image shape (C x H x W)", f"{c} x {h} x {w}")
columns[-1].metric("Classes", len(view.data.classes))

st.subheader("One example of each class", anchor=False)
members = [datalib.class_indices(view.data, c) for c in range(len(view.data.classes))]
shown = [c for c, m in enumerate(members) if len(m)]  # a class may have no image in a split
ui.pixel_grid(
    view.data,
    [int(members[c][0]) for c in shown],
    [f"{view.data.classes[c]} (#{members[c][0]})" for c in shown],
    key="examples",
    on_click=lambda index: ui.open_image(view.data.split, index),
)
if len(shown) < len(members):
    missing = [view.data.classes[c] for c in range(len(members)) if c not in shown]
    st.warning(f"No image at all in {ui.md(view.title)} of: {ui.md(', '.join(missing))}.")
st.caption(
    f"The first image of each class in {ui.md(view.title)}, as uint8 0-255 "
    f"{view.data.spec.format.source}; "
    "the Batches page shows them as the model receives them after `transforms.ToTensor()`."
)

details = view.data.details
source = view.data.spec.format.source
st.subheader(f"What was read, {source}", anchor=False)
st.info(details["conformed"], icon=":material/photo_size_select_large:")
sizes, modes = st.columns(2)
sizes.markdown(f"**Image sizes {source}** (width x height: images)")
sizes.dataframe(
    pd.DataFrame(details["sizes"]), hide_index=True, column_order=["width", "height", "count"]
)
modes.markdown(f"**Image modes {source}** (L is grey)")
modes.dataframe(
    pd.DataFrame({"mode": list(details["modes"]), "images": list(details["modes"].values())}),
    hide_index=True,
)
skipped = details["skipped"]
st.markdown(f"**Skipped: {len(skipped):,} files and folders** in {ui.md(view.title)}")
if skipped:
    st.dataframe(pd.DataFrame(skipped), hide_index=True, width="stretch")

st.subheader("What to look at", anchor=False)
for page in ui.PAGES[1:]:
    st.page_link(page.file, label=f"{page.title}: {page.answers}", icon=page.icon)

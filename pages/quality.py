"""Data quality: suspicious labels, near duplicates, outliers, class means and a map of the
data, each explained with the images."""

import base64

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import datalib
import ui
from datalib import quality

SECTIONS = ["Suspicious labels", "Near duplicates", "Outliers", "Class means", "Map"]
SHOWN = 24  # findings drawn as images at a time
GROUPS_SHOWN = 8  # near-duplicate groups drawn at a time

view = ui.sidebar()
data = view.data
spec = data.spec
st.title("Data quality", anchor=False)
section = st.segmented_control(
    "Section", SECTIONS, default=SECTIONS[0], required=True, key="section", bind=ui.URL
)


def page_of(count: int, per_page: int, key: str, what: str = "") -> tuple[int, int]:
    """A page number box (in the URL) over `count` items; the chosen page's start and stop."""
    pages = max(1, -(-count // per_page))
    page = st.number_input(
        f"Page (of {pages:,}{', ' + what if what else ''})",
        min_value=1,
        max_value=pages,
        value=1,
        key=key,
        bind=ui.URL,
    )
    return (page - 1) * per_page, page * per_page


def finding_grid(indices, captions, key: str, split: str = data.split) -> None:
    """Findings as images; a click opens one large on the Images page."""
    ui.pixel_grid(
        data.dataset.split(split),
        [int(i) for i in indices],
        captions,
        key=key,
        size=84,
        on_click=lambda index: ui.open_image(split, index),
    )


def suspicious_labels() -> None:
    st.caption(
        "A small CNN gives every image of the split class probabilities it did not train on "
        f"(the training split: {quality.FOLDS}-fold cross-validation; another split: the "
        "model trained on the training split). cleanlab then ranks the labels by how well "
        "they fit those probabilities, worst first."
    )
    with ui.user_errors():
        found = quality.label_issues(data)
    if found is None:
        ui.job_panel(
            quality.label_job(data),
            start=lambda: quality.start_label_job(data),
            what=f"Finding the suspicious labels of {view.title}",
            button="Find suspicious labels",
            cost=quality.label_cost(data),
        )
        return
    model = found.model
    good = model["accuracy"] >= quality.TRUSTED_ACCURACY
    st.markdown(
        f"**{ui.md(model['kind'])}**: out-of-sample accuracy **{model['accuracy']:.2%}** on "
        f"{len(data):,} images ({model['epochs']} epochs on {model['device']}; this job took "
        f"{model['seconds']:,.0f} s). cleanlab flags **{len(found.flagged):,}** labels."
    )
    if not good:
        st.warning(
            f"The model is right on only {model['accuracy']:.1%} of the images: below "
            f"{quality.TRUSTED_ACCURACY:.0%}, many findings are the model's mistakes, not the "
            "labels'. Read the ranking as a list of hard images.",
            icon=":material/warning:",
        )
    only_flagged = st.toggle("Flagged by cleanlab only", value=False, key="flagged", bind=ui.URL)
    ranked = found.flagged if only_flagged else found.table
    if ranked.empty:
        st.success("cleanlab flags no label of this split.", icon=":material/check_circle:")
        return
    start, stop = page_of(len(ranked), SHOWN, "finding_page", f"{SHOWN} findings each, worst first")
    shown = ranked.iloc[start:stop]
    names = data.classes
    captions = [
        f"{'⚑ ' if row.flagged else ''}#{row.index}: {names[row.given_label]} → "
        f"{names[row.predicted_label]} ({row.confidence:.0%})"
        for row in shown.itertuples(index=False)
    ]
    grid, large = st.columns([3, 2], gap="large")
    with grid:
        st.caption(
            ui.count_caption(len(shown), len(ranked), "findings")
            + " Caption: (⚑ flagged by cleanlab) #index: given label → the model's label (how "
            "sure it is). "
            "Click an image to open it on the Images page."
        )
        finding_grid(shown["index"], captions, key="label_grid")
    with large:
        chosen = st.selectbox(
            "Look closer at",
            shown["index"].tolist(),
            format_func=lambda i: f"#{i}",
            key="finding",
        )
        row = found.table[found.table["index"] == chosen].iloc[0]
        with ui.user_errors():
            pixels = data.pixels([int(chosen)])[0]
        st.image(ui.upscale(pixels, 240), width=240)
        st.markdown(
            f"**#{int(chosen):,}** labelled **{ui.md(names[int(row.given_label)])}**; the "
            f"model believes **{ui.md(names[int(row.predicted_label)])}** "
            f"({row.confidence:.1%} sure; {row.given_probability:.1%} for the given label). "
            f"Label quality {row.label_quality:.4f}."
        )

    def ranking_csv() -> str:  # made when the button is clicked: 60,000 rows on MNIST
        table = found.table
        return table.assign(
            given=[names[i] for i in table["given_label"]],
            predicted=[names[i] for i in table["predicted_label"]],
            link=[ui.image_link(data.split, int(i)) for i in table["index"]],
        ).to_csv(index=False)

    st.download_button(
        "Download the whole ranking (CSV)",
        data=ranking_csv,
        file_name=f"{ui.export_name(spec, [data.split], 'label-issues')}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )
    flagged = found.flagged
    if not flagged.empty:
        pairs = flagged.groupby(["given_label", "predicted_label"]).size().reset_index(name="n")
        matrix = np.zeros((len(names), len(names)), dtype=int)
        matrix[pairs["given_label"], pairs["predicted_label"]] = pairs["n"]
        figure = go.Figure(
            go.Heatmap(
                z=matrix,
                x=[ui.plot(n) for n in names],
                y=[ui.plot(n) for n in names],
                colorscale="Blues",
                hovertemplate="labelled %{y}, model says %{x}: %{z}<extra></extra>",
            )
        )
        figure.update_yaxes(autorange="reversed", title="given label")
        figure.update_xaxes(title="the model's label")
        figure.update_layout(
            title=f"{ui.plot(view.title)}: {len(flagged):,} flagged labels, given vs the "
            f"model's ({ui.plot(model['kind'])}, accuracy {model['accuracy']:.2%})",
            height=460,
        )
        ui.chart(
            figure,
            key="flagged_matrix",
            name=ui.export_name(spec, [data.split], "flagged-labels"),
            table=pairs.assign(
                given=[names[i] for i in pairs["given_label"]],
                predicted=[names[i] for i in pairs["predicted_label"]],
            ),
        )


def near_duplicates() -> None:
    with ui.user_errors():
        splits = [ui.load(spec.name, s) for s in datalib.splits_of(spec.name)]
    left, right, which = st.columns(3)
    bits = left.slider(
        "Hash distance (bits, of 64)",
        0,
        quality.MAX_BITS,
        quality.DEFAULT_BITS,
        key="bits",
        bind=ui.URL,
        help="Perceptual hashes at most this many bits apart are compared pixel by pixel.",
    )
    difference = right.slider(
        "Pixel difference (share)",
        0.0,
        0.3,
        quality.DEFAULT_DIFFERENCE,
        step=0.01,
        key="difference",
        bind=ui.URL,
        help="Sum of |a - b| over the sum of max(a, b), grey, at the thumbnails' size: 0 for "
        "identical pixels.",
    )
    kinds = (["across splits"] if len(splits) > 1 else []) + ["labels disagree", "all"]
    kind = which.segmented_control(
        "Groups", kinds, default=kinds[0], required=True, key="groups", bind=ui.URL
    )
    found = ui.near_duplicates(splits, bits, difference)
    if found is None:  # searched in the background: the page reruns when it is done
        return
    across = found.across
    counts = st.columns(len(splits) + 1)
    for column, split in zip(counts, found.splits, strict=False):
        column.metric(
            f"Groups within {ui.md(split)}",
            f"{len(found.within(split)):,}",
            help=f"{found.images_in(split):,} images of {ui.md(split)} are in some group",
        )
    counts[-1].metric(
        "Groups across splits",
        f"{len(across):,}",
        help=" / ".join(f"{found.images_in(s, across=True):,} of {ui.md(s)}" for s in found.splits),
    )
    if kind == "across splits":
        groups = across
    elif kind == "labels disagree":
        groups = [g for g in found.groups if g.conflicting]
    else:
        groups = list(found.groups)
    st.caption(
        f"{len(groups):,} groups ({kind}) at <= {bits} bits and <= {difference:.2f} pixel "
        "difference. Each row: the images side by side, then each one's difference from the "
        "first (black: the same). Click an image to open it."
    )
    if not groups:
        st.success("No near duplicates at these settings.", icon=":material/check_circle:")
        return
    start, stop = page_of(len(groups), GROUPS_SHOWN, "group_page")
    for n, group in enumerate(groups[start:stop], start=start):
        by_split = {s: [i for t, i in group.members if t == s] for s in group.splits}
        with ui.user_errors():
            decoded = {s: data.dataset.split(s).pixels(idx) for s, idx in by_split.items()}
        images = [img for s in group.splits for img in decoded[s]]
        first = images[0].astype(np.int16)
        flag = " · **labels disagree**" if group.conflicting else ""
        st.markdown(
            f"**Group {n + 1}**: {len(group.members)} images, "
            f"{group.bits} bits apart at most, pixel difference {group.difference:.3f}{flag}"
        )
        # Each image's difference from the first (splits conformed to other sizes: none).
        alike = [img for img in images[1:] if img.shape == first.shape]
        tiles = images + [np.abs(img.astype(np.int16) - first).astype(np.uint8) for img in alike]
        captions = [
            f"{split} #{i}: {name}"
            for (split, i), name in zip(group.members, group.names, strict=True)
        ] + [
            f"difference #{i}"
            for (_, i), img in zip(group.members[1:], images[1:], strict=True)
            if img.shape == first.shape
        ]
        members = group.members
        ui.pixel_grid(
            data,
            list(range(len(tiles))),  # a tile's place: split and index differ within a group
            captions,
            key=f"near_{n}",
            size=72,
            images=tiles,
            on_click=lambda k, members=members: k < len(members) and ui.open_image(*members[k]),
        )
    rows = [
        {"group": g_n + 1, "split": s, "index": i, "label": name, "bits": g.bits,
         "pixel_difference": round(g.difference, 4), "labels_disagree": g.conflicting,
         "link": ui.image_link(s, i)}
        for g_n, g in enumerate(groups)
        for (s, i), name in zip(g.members, g.names, strict=True)
    ]  # fmt: skip
    st.download_button(
        "Download these groups (CSV)",
        data=pd.DataFrame(rows).to_csv(index=False),
        file_name=f"{ui.export_name(spec, list(found.splits), 'near-duplicates')}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )


def outliers() -> None:
    with ui.user_errors(), st.spinner("Measuring every image..."):
        frame = quality.image_properties(data)
        found = quality.outliers(data, SHOWN * 4)
    names = [n for n in quality.PROPERTIES if n in frame]
    prop = st.segmented_control(
        "Property", names, default="ink" if "ink" in names else names[0], required=True,
        key="property", bind=ui.URL,
    )  # fmt: skip
    spread = quality.property_spread(data, prop)
    figure = go.Figure(
        go.Box(
            name=prop,
            x=[ui.plot(c) for c in spread["class"]],
            q1=spread["q1"],
            median=spread["median"],
            q3=spread["q3"],
            lowerfence=spread["low"],
            upperfence=spread["high"],
            marker_color=ui.COLORS[0],
        )
    )
    figure.update_layout(
        title=f"{ui.plot(view.title)}: {prop} per class ({quality.PROPERTIES[prop]}; box: "
        "quartiles, whiskers: 1.5 IQR)",
        yaxis_title=prop,
        xaxis_title="class",
        height=420,
        showlegend=False,
    )
    ui.chart(
        figure,
        key="property_box",
        name=ui.export_name(spec, [data.split], f"{prop}-per-class"),
        table=spread,
    )
    st.subheader("The images furthest from their class", anchor=False)
    st.caption(
        "Each image's distance from its class on every property, in robust standard "
        "deviations (from the class's median absolute deviation); its furthest property is "
        "the reason it is listed. Click an image to open it."
    )
    shown = found[:SHOWN]
    finding_grid(
        [o.index for o in shown],
        [f"#{o.index}: {o.property} {o.value:.3g} ({o.score:.1f}σ)" for o in shown],
        key="outlier_grid",
    )
    st.dataframe(
        pd.DataFrame(
            [{"index": o.index, "class": data.classes[o.label], "score": round(o.score, 2),
              "reason": o.reason, "link": ui.image_link(data.split, o.index)} for o in found]
        ),
        hide_index=True,
        column_config={"link": st.column_config.LinkColumn("open", display_text="open")},
    )  # fmt: skip


def class_means() -> None:
    with ui.user_errors():
        splits = [ui.load(spec.name, s) for s in datalib.splits_of(spec.name)]
        with st.spinner("Averaging every class..."):
            pictures = {d.split: quality.class_pictures(d) for d in splits}
    st.caption(
        "Each class's mean picture and its standard deviation (bright: pixels that vary "
        "within the class), every split side by side, from the index's thumbnails "
        f"({next(iter(pictures.values())).side} px)."
    )
    # One scale for every split's spread, so train and test compare.
    spread_top = max(max(float(p.std.max()), 1.0) for p in pictures.values())
    for kind in ("mean", "standard deviation"):  # the splits' rows one under the other
        for d in splits:
            made = pictures[d.split]
            present = [c for c in range(len(d.classes)) if made.counts[c]]
            stack = made.mean if kind == "mean" else made.std
            top = 255.0 if kind == "mean" else spread_top
            images = [_picture(stack[c], top) for c in present]
            st.markdown(f"**{ui.md(d.split)}: {kind}**")
            ui.pixel_grid(
                d,
                present,
                [f"{d.classes[c]} (n={made.counts[c]:,})" for c in present],
                key=f"means_{d.split}_{kind}",
                size=72,
                images=images,
            )


def _picture(planes: np.ndarray, top: float) -> np.ndarray:
    """C x S x S floats (0 to top) as a picture to show."""
    pixels = np.clip(planes / top * 255, 0, 255).astype(np.uint8)
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def data_map() -> None:
    with ui.user_errors():
        found = quality.data_map(data.dataset)
    if found is None:
        ui.job_panel(
            quality.map_job(data.dataset),
            start=lambda: quality.start_map_job(data),
            what=f"Drawing the map of {spec.title}",
            button="Draw the map from the pictures",
            cost="about a minute per 70,000 images here; the suspicious-labels job draws it "
            "from its model's features instead",
        )
        return
    points = found.points
    on_map = list(dict.fromkeys(points["split"]))
    splits_shown = st.multiselect(
        "Splits on the map",
        on_map,
        default=[data.split] if data.split in on_map else on_map[:1],
        key="map_splits",
    )
    points = points[points["split"].isin(splits_shown)]
    with ui.user_errors():
        labels = {s: ui.load(spec.name, s).labels for s in splits_shown}
        issues = quality.label_issues(data)
    label = np.zeros(len(points), dtype=np.int64)
    for s_name in splits_shown:  # each point's label, looked up in its own split
        rows = (points["split"] == s_name).to_numpy()
        label[rows] = labels[s_name][points.loc[rows, "index"].to_numpy()]
    points = points.assign(
        label=label, split_number=points["split"].map(splits_shown.index).astype(int)
    )
    figure = go.Figure()
    for c, name in enumerate(data.classes):
        members = points[points["label"] == c]
        figure.add_trace(
            go.Scattergl(
                x=members["x"],
                y=members["y"],
                mode="markers",
                name=ui.plot(name),
                marker={"size": 3, "color": _palette(c)},
                customdata=np.stack(
                    [members["index"], np.full(len(members), c), members["split_number"]], axis=1
                ),
                text=members["split"],
                # The class name from the trace, never put into the template: a folder's
                # name could hold Plotly's own %{...}.
                hovertemplate="%{text} #%{customdata[0]}<br>label %{fullData.name}<extra></extra>",
            )
        )
    marked = 0
    if issues is not None and data.split in splits_shown:
        flagged = issues.flagged["index"].to_numpy()
        mine = points[(points["split"] == data.split) & points["index"].isin(flagged)]
        marked = len(mine)
        figure.add_trace(
            go.Scattergl(
                x=mine["x"],
                y=mine["y"],
                mode="markers",
                name="suspicious label",
                marker={"size": 7, "symbol": "x", "color": "black"},
                customdata=np.stack([mine["index"], mine["label"], mine["split_number"]], axis=1),
                text=mine["split"],
                hovertemplate="%{text} #%{customdata[0]}: suspicious label<extra></extra>",
            )
        )
    figure.update_layout(
        title=f"{ui.plot(spec.title)} {ui.plot(' + '.join(splits_shown))}: map of "
        f"{len(points):,} images from the {found.source} (PCA, then UMAP)",
        height=640,
        dragmode="lasso",
        meta="batchscope-map",  # what ui.hover_image finds it by
        xaxis={"showticklabels": False, "title": "", "showgrid": False, "zeroline": False},
        yaxis={"showticklabels": False, "title": "", "showgrid": False, "zeroline": False},
        legend={"itemsizing": "constant"},
    )
    st.caption(
        f"Each point an image, coloured by class; close points look alike to the "
        f"{found.source}. {marked:,} suspicious labels marked x. Draw a lasso (or a box) "
        "round points to see those images below."
    )
    drawn, beside = st.columns([5, 1])
    with drawn:
        event = ui.chart(
            figure,
            key="map",
            name=ui.export_name(spec, splits_shown, "map"),
            table=points,
            on_select="rerun",
            selection_mode=("points", "box", "lasso"),
        )
    with beside:
        st.markdown("**Under the pointer**")
        map_hover(splits_shown)
    chosen = event.selection.points if event else []
    if chosen:
        # A suspicious label is two points (its class's and the x): one image.
        rows = [_customdata(p["customdata"]) for p in chosen if "customdata" in p]
        picked = pd.DataFrame(
            [{"split": splits_shown[row[2]], "index": row[0]} for row in rows]
        ).drop_duplicates()
        st.caption(
            ui.count_caption(min(len(picked), ui.GALLERY_PAGE), len(picked), "selected images")
        )
        picked = picked.head(ui.GALLERY_PAGE)
        for split, members in picked.groupby("split", sort=False):
            shown_data = ui.load(spec.name, split)
            indices = members["index"].tolist()
            finding_grid(
                indices,
                [f"{split} #{i}: {shown_data.classes[shown_data.labels[i]]}" for i in indices],
                key=f"map_grid_{split}",
                split=split,
            )


def _customdata(value) -> list[int]:
    """A point's customdata row as ints: a list, or (typed arrays reach Python so) a dict
    keyed "0", "1", ..."""
    if isinstance(value, dict):
        value = [value[key] for key in sorted(value, key=int)]
    return [int(v) for v in value]


@st.fragment
def map_hover(splits_shown: list[str]) -> None:
    """The image under the pointer on the map (its thumbnail, from the index)."""

    def show(customdata: list) -> tuple[str, str] | None:
        index, label, split_number = _customdata(customdata)[:3]
        if not 0 <= split_number < len(splits_shown):
            return None
        split = splits_shown[split_number]
        shown = ui.load(spec.name, split)
        with ui.user_errors():
            blob, mime = shown.thumbnails([index])[0]
        return (
            f"data:{mime};base64,{base64.b64encode(blob).decode()}",
            f"{split} #{index}: {shown.classes[label]}",
        )

    ui.hover_image("batchscope-map", show, key="map_hover")


def _palette(c: int) -> str:
    tens = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]  # fmt: skip
    return tens[c % len(tens)]


{
    "Suspicious labels": suspicious_labels,
    "Near duplicates": near_duplicates,
    "Outliers": outliers,
    "Class means": class_means,
    "Map": data_map,
}[section]()

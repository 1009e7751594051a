"""Readiness checklist: pass / warn / fail, the evidence and the fix for each thing a tutorial
checks before training, and the code that rebuilds this loader."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import datalib
import datalib.checks
import datalib.sampling
import ui

BADGES = {
    "pass": ("green", ":material/check_circle:"),
    "warn": ("orange", ":material/warning:"),
    "fail": ("red", ":material/cancel:"),
}
SAMPLERS = ["none", *datalib.sampling.SAMPLERS]

view = ui.sidebar()
spec = view.data.spec
st.title("Readiness checklist", anchor=False)

sampler = st.segmented_control(
    "Sampler",
    SAMPLERS,
    default="none",
    required=True,
    key="sampler",
    bind=ui.URL,
    help="weighted: a WeightedRandomSampler with per-class weights n / (C * count), drawing "
    "one epoch with replacement from a torch.Generator seeded with the sidebar's seed.",
)
with ui.user_errors():
    names = datalib.splits_of(spec.name)
if not {"train", "test"} <= set(names):
    st.info(
        f"The checklist compares a train and a test split; {ui.md(spec.title)} has "
        f"{ui.md(', '.join(names))}. Lay the folder out as `<folder>/train/<class>/...` and "
        "`<folder>/test/<class>/...` to check it.",
        icon=":material/call_split:",
    )
    st.stop()
with ui.user_errors():
    splits = {split: ui.load(spec.name, split) for split in names}
# Near duplicates across train and test: searched now when the splits are small, else by a
# background job whose progress shows here; the split check says so until it ends.
near = ui.near_duplicates([splits["train"], splits["test"]])
with ui.user_errors(), st.spinner("Running the checks..."):
    result = datalib.checks.checklist_of(
        splits, view.data.split, view.loader, sampler, view.pipeline, near=near
    )

tally = result.tally()
st.caption(
    f"{ui.md(view.title)} through `{result.loader_text}` with `{result.transform_text}`: "
    f"{tally['pass']} pass, {tally['warn']} warn, {tally['fail']} fail."
)


def badge(verdict: str) -> None:
    """The verdict as a coloured badge."""
    color, icon = BADGES[verdict]
    st.badge(verdict, icon=icon, color=color)


for column, check in zip(st.columns(len(result.checks)), result.checks, strict=True):
    with column:  # badge first, so the badges line up however the titles wrap
        badge(check.verdict)
        st.markdown(f"**{check.title}**")


def show_shuffled(check: datalib.checks.Check) -> None:
    """The labels of the first batches, one row per batch, in loader order."""
    labels = check.evidence.labels
    size = view.loader.batch_size
    figure = px.imshow(
        labels,
        color_continuous_scale="Turbo",
        range_color=(0, len(view.data.classes) - 1),
        text_auto=size <= 32,
        aspect="auto",
        labels={"x": "position in batch", "y": "batch", "color": "label"},
        title=(
            f"{ui.plot(view.title)}: labels of the first {len(labels)} batches of batch_size "
            f"{size}, "
            "in loader order"
        ),
    )
    figure.update_layout(height=120 + 24 * len(labels))
    figure.update_yaxes(dtick=1 if len(labels) <= 20 else None)
    if size <= 32:
        figure.update_xaxes(dtick=1)
    ui.chart(
        figure,
        key="shuffled",
        name=ui.export_name(spec, [view.data.split], "batch-labels"),
        table=check.table,
    )


def show_split(check: datalib.checks.Check) -> None:
    """The duplicate images found, each example's copies side by side."""
    examples = check.evidence.examples
    if not examples:
        st.caption("No image appears twice: nothing to show.")
        return
    st.caption(f"{len(examples)} example(s) of identical images; caption: split #index: label.")
    for number, example in enumerate(examples):
        st.markdown(f"Example {number + 1}: {ui.md(example.kind)}")
        parts = example.by_split()
        # train and test copies side by side, each in a narrow column; one split needs none
        places = st.columns([1] * len(parts) + [2]) if len(parts) > 1 else [st.container()]
        for place, (split, members) in zip(places, parts.items(), strict=False):
            with place:
                ui.pixel_grid(
                    splits[split],
                    [m.index for m in members],
                    [f"{split} #{m.index}: {m.label}" for m in members],
                    key=f"duplicates_{number}_{split}",
                    size=70,
                    room=300 if len(parts) > 1 else 960,
                    on_click=lambda index, split=split: ui.open_image(split, index),
                )


def show_balanced(check: datalib.checks.Check) -> None:
    """Class mix of one epoch without and with the sampler (expected, and the range one epoch
    falls in), and the weights behind it."""
    mix = check.evidence
    seed = view.loader.seed
    classes = [ui.plot(name) for name in mix.classes]  # folder names: as typed, never HTML
    figure = go.Figure(
        [
            go.Bar(
                x=classes,
                y=mix.percent_without_sampler,
                name=f"shuffle={view.loader.shuffle}, no sampler: one epoch",
                marker_color=ui.COLORS[0],
            ),
            go.Bar(
                x=classes,
                y=mix.expected_percent_with_sampler,
                name="WeightedRandomSampler: expected (bar: 95% of epochs)",
                marker_color=ui.COLORS[1],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": mix.one_epoch_high_percent - mix.expected_percent_with_sampler,
                    "arrayminus": mix.expected_percent_with_sampler - mix.one_epoch_low_percent,
                    "color": "#555",
                },
            ),
            go.Bar(
                x=classes,
                y=mix.percent_with_sampler,
                name=f"WeightedRandomSampler: the epoch seed {seed} draws",
                marker_color=ui.COLORS[4],
            ),
            go.Scatter(  # the uniform line's legend entry; the line itself spans the chart
                x=[None],
                y=[None],
                mode="lines",
                name=f"uniform: {100 / len(mix.classes):.1f}%",
                line={"color": "#888", "dash": "dot"},
            ),
        ]
    )
    figure.add_hline(y=100 / len(mix.classes), line_dash="dot", line_color="#888")
    figure.update_layout(
        barmode="group",
        title=(
            f"{ui.plot(view.title)}: class mix of one epoch, without and with a "
            "WeightedRandomSampler "
            f"(seed {seed}, n={int(mix.counts.sum()):,})"
        ),
        xaxis_title="class",
        yaxis_title="% of the epoch's samples",
    )
    ui.chart(
        figure,
        key="balanced",
        name=ui.export_name(spec, [view.data.split], "sampled-class-mix"),
        table=check.table,
    )
    st.dataframe(
        mix.weights_table(),
        hide_index=True,
        column_config={"class_weight": st.column_config.NumberColumn(format="%.4f")},
    )
    st.caption(
        "class_weight = n / (C * count): pass it to `CrossEntropyLoss(weight=...)`, or give each "
        "sample its class's weight in a `WeightedRandomSampler` (one or the other, not both). "
        "The sampler draws with replacement, so one epoch's mix scatters around the expected "
        "one; the verdict goes by the expected mix."
    )


def show_loadable(check: datalib.checks.Check) -> None:
    """The entries that would break the user's ImageFolder, each with what it would do."""
    if check.evidence.entries:
        st.dataframe(check.table, hide_index=True, width="stretch")


EXTRAS = {
    "loadable": show_loadable,
    "shuffled": show_shuffled,
    "split": show_split,
    "balanced": show_balanced,
}

for check in result.checks:
    with st.container(border=True):
        title, verdict = st.columns([5, 1], vertical_alignment="center")
        title.subheader(check.title, anchor=False)
        with verdict:
            badge(check.verdict)
        st.markdown(ui.md(check.summary))
        if check.name in EXTRAS:
            EXTRAS[check.name](check)
        with st.expander("Evidence", expanded=check.verdict != "pass"):
            st.dataframe(check.evidence_table(), hide_index=True, width="stretch")
        if check.fix:
            st.markdown("**Fix**")
            st.code(check.fix, language=check.fix_language)

st.subheader("Reproduce in code", anchor=False)
st.caption(
    "This dataset, transform and DataLoader"
    + (" with its sampler" if result.sampler else "")
    + f", runnable as shown. It prints one epoch's class counts: "
    f"{result['balanced'].facts['epoch_class_counts']}."
)
st.code(result.code, language="python")

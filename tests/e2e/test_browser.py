"""Every page in a real Chromium against `streamlit run app.py` on the real MNIST."""

from __future__ import annotations

import csv
import io
import re
import struct
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest
from PIL import Image

from bench.serving import free_port, read_chart, serving
from tests.e2e.conftest import SCREENSHOTS, assert_no_error, open_view, screenshot, settle

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
PAGES = {
    "overview": ("/", "MNIST"),
    "batches": ("/batches", "Batches"),
    "images": ("/images", "Images"),
    "histograms": ("/histograms", "Histograms"),
    "balance": ("/balance", "Class balance"),
    "checklist": ("/checklist", "Readiness checklist"),
    "quality": ("/quality", "Data quality"),
}


def chart_traces(page, index: int = 0) -> list[dict]:
    """The traces of the index-th Plotly chart as the browser holds them."""
    return read_chart(page, index)["traces"]


def chart_title(page, index: int = 0) -> str:
    return read_chart(page, index)["title"]


def code_text(page, starts: str) -> str:
    """The text of the first code block that starts with `starts`, once it is drawn."""
    block = page.locator("[data-testid=stCode] code").filter(
        has_text=re.compile("^" + re.escape(starts))
    )
    block.first.wait_for()
    return block.first.inner_text()


def gallery_sources(page, grid: str) -> list[str]:
    """The image sources of one image grid (ui.pixel_grid, by its key)."""
    images = page.locator(f".st-key-{grid} figure img")
    images.first.wait_for()
    return images.evaluate_all("els => els.map(e => e.src)")


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_loads_without_error(page, server, name):
    path, title = PAGES[name]
    open_view(page, server + path, title)
    assert_no_error(page)
    sidebar = page.locator("[data-testid=stSidebar]")
    assert "MNIST train: 60,000 images, 6,000 batches of 10" in sidebar.inner_text()
    screenshot(page, name)


def test_next_batch_changes_images_and_labels(page, server):
    open_view(page, server + "/batches", "Batches")
    labels, images = code_text(page, "tensor("), gallery_sources(page, "batch_images")
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Batch 1 of 6,000").wait_for()
    settle(page)
    assert code_text(page, "tensor(") != labels
    assert gallery_sources(page, "batch_images") != images
    assert "batch=1" in page.url
    assert_no_error(page)


def test_sidebar_shuffle_off_gives_the_dataset_order(page, server):
    open_view(page, server + "/batches", "Batches")
    page.locator("[data-testid=stSidebar]").get_by_text("shuffle", exact=True).click()
    settle(page)
    assert code_text(page, "tensor(") == "tensor([5, 0, 4, 1, 9, 2, 1, 3, 1, 4])"
    assert "shuffle=false" in page.url


def test_choosing_a_class_changes_the_gallery(page, server):
    open_view(page, server + "/images", "Images")
    before = gallery_sources(page, "gallery")
    page.get_by_text("Showing 60 of 60,000 images in MNIST train").wait_for()
    page.locator("[data-testid=stSelectbox]").filter(has_text="Class").click()
    page.get_by_role("option", name="3 - three").click()
    page.get_by_text("Showing 60 of 6,131 images of class 3 - three").wait_for()
    settle(page)
    assert gallery_sources(page, "gallery") != before
    assert "cls=3" in page.url


def test_counts_percent_toggle_changes_the_balance_chart(page, server):
    open_view(page, server + "/balance", "Class balance")
    train = next(t for t in chart_traces(page) if t["name"] == "train")
    assert train["y"] == TRAIN_COUNTS
    assert chart_title(page) == "MNIST train vs test: class counts (n=60,000 / 10,000)"
    page.get_by_role("radio", name="percent", exact=True).click()
    settle(page)
    train = next(t for t in chart_traces(page) if t["name"] == "train")
    assert [round(y, 3) for y in train["y"]] == [round(100 * c / 60000, 3) for c in TRAIN_COUNTS]
    assert "shares (%)" in chart_title(page)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_balance_png_downloads(page, server):
    open_view(page, server + "/balance", "Class balance")
    with page.expect_download(timeout=60_000) as server_side:
        page.get_by_role("button", name="Download PNG").click()
    download = server_side.value
    assert download.suggested_filename == "mnist_train-test_class-balance.png"
    width, height = png_size(Path(download.path()).read_bytes())
    assert width >= 1000 and height >= 600  # drawn at 2x scale
    colors = {rgb for _, rgb in Image.open(download.path()).convert("RGB").getcolors(1 << 20)}
    assert {(0, 104, 201), (131, 201, 255)} <= colors  # train and test bars in their colours
    SCREENSHOTS.mkdir(exist_ok=True)
    download.save_as(SCREENSHOTS / download.suggested_filename)  # for a reviewer to open

    page.locator(".js-plotly-plot").first.hover()
    with page.expect_download() as from_browser:
        page.locator(".js-plotly-plot [data-title='Download plot as a PNG']").first.click()
    assert from_browser.value.suggested_filename == "mnist_train-test_class-balance.png"
    png_size(Path(from_browser.value.path()).read_bytes())


def test_balance_csv_has_the_numbers(page, server):
    open_view(page, server + "/balance", "Class balance")
    with page.expect_download() as csv_download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text())))
    train = [int(r["count"]) for r in rows if r["split"] == "train"]
    assert train == TRAIN_COUNTS
    assert {"split", "label", "class", "count", "percent"} <= set(rows[0])


def test_copied_link_reopens_the_view_in_a_new_browser(page, server, browser):
    open_view(page, server + "/batches", "Batches")
    page.locator("[data-testid=stSidebar]").get_by_role("radio", name="test", exact=True).click()
    settle(page)
    for shown in (1, 2):
        page.get_by_role("button", name="Next").click()
        page.get_by_text(f"Batch {shown} of 1,000").wait_for()
    settle(page)
    labels = code_text(page, "tensor(")
    link = page.locator(".st-key-share input").input_value()
    assert link.startswith(server + "/batches?")
    assert re.search(r"split=test", link) and re.search(r"batch=2", link)

    fresh = browser.new_context(viewport={"width": 1400, "height": 1300})
    try:
        other = fresh.new_page()
        open_view(other, link, "Batches")
        other.get_by_text("Batch 2 of 1,000").wait_for()
        assert code_text(other, "tensor(") == labels
        screenshot(other, "batches-from-link")
    finally:
        fresh.close()


def test_bad_link_values_fall_back_with_a_notice(page, server):
    open_view(page, server + "/batches?batch=abc&batch_size=0&dataset=cifar99&seed=-3", "Batches")
    notice = page.locator("[data-testid=stToast]").first
    notice.wait_for()
    text = notice.inner_text()
    for value in ("batch='abc'", "batch_size='0'", "dataset='cifar99'", "seed='-3'"):
        assert value in text
    assert page.get_by_text("Batch 0 of 6,000").is_visible()
    assert_no_error(page)


def test_markdown_in_a_link_is_shown_as_text_never_as_a_link_or_image(page, server):
    """A phishing link in the app's own voice, and an image the visitor's browser would
    fetch: the refused values are shown as typed."""
    phishing = "[Your session expired: sign in here](https://evil.example/login)"
    tracker = "![x](https://evil.example/pixel.png)"
    query = urlencode({"batch_size": phishing, "seed": tracker})
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    open_view(page, f"{server}/batches?{query}", "Batches")
    notice = page.locator("[data-testid=stToast]").first
    notice.wait_for()
    shown = notice.inner_text().replace("\u2060", "")  # invisible joiners break autolinks
    assert phishing in shown and tracker in shown
    assert page.locator("a[href*='evil.example'], img[src*='evil.example']").count() == 0
    assert not [url for url in fetched if urlsplit(url).hostname == "evil.example"]
    assert page.get_by_text("Batch 0 of 6,000").is_visible()  # the defaults, as promised
    screenshot(page, "hostile-link-notice")
    assert_no_error(page)


def test_a_fresh_server_opened_on_a_page_link_shows_that_view(browser, real_root, tmp_path):
    """After a restart the first visitor may arrive on any page's link: same view, same app."""
    with serving(real_root, tmp_path / "streamlit.log") as running:
        fresh_server = running.url
        context = browser.new_context(viewport={"width": 1400, "height": 1300})
        try:
            page = context.new_page()
            # Whatever the first paint is, it must never show Streamlit's own listing of pages/.
            page.add_init_script(
                """new MutationObserver(() => {
                    if (document.querySelector('[data-testid=stSidebarNav]'))
                        window.sawPagesFolder = true;
                }).observe(document, {childList: true, subtree: true});"""
            )
            open_view(page, fresh_server + "/batches?batch=3&batch_size=16&split=test", "Batches")
            page.get_by_text("Batch 3 of 625").wait_for()
            links = page.locator("[data-testid=stSidebar] [data-testid=stPageLink] a")
            links.last.wait_for()  # a busy machine may paint the main column first
            hrefs = links.evaluate_all("els => els.map(e => '/' + e.getAttribute('href'))")
            assert hrefs == [
                "/", "/batches", "/images", "/histograms", "/balance", "/checklist", "/quality"
            ]  # fmt: skip
            assert not page.evaluate("window.sawPagesFolder === true")
            page.get_by_role("button", name="Copy link").wait_for()  # the app's own sidebar
            for path in hrefs:  # every link the app shows is a page, never "Page not found"
                other = context.new_page()
                other.goto(fresh_server + path)
                other.locator("[data-testid=stSidebar] [data-testid=stPageLink]").first.wait_for()
                settle(other)
                assert "Page not found" not in other.content()
                other.close()
            # The Overview's URL before it became "/", in links shared back then: still opens it.
            old = context.new_page()
            old.goto(fresh_server + "/overview?split=test")
            old.wait_for_url(fresh_server + "/?split=test")
            old.get_by_role("heading", name="MNIST", exact=True).wait_for()
            settle(old)
            assert "Page not found" not in old.content()
            assert_no_error(page)
        finally:
            context.close()


def test_a_server_restart_brings_the_view_back(browser, real_root, tmp_path):
    """The browser reconnects on its own after a restart and redraws the view of its URL."""
    port = free_port()
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    try:
        page = context.new_page()
        with serving(real_root, tmp_path / "first.log", port=port) as first:
            open_view(page, first.url + "/images?cls=7+-+seven&image=15", "Images")
            page.get_by_text("images of class 7 - seven").first.wait_for()
        with serving(real_root, tmp_path / "second.log", port=port):
            page.get_by_text("Showing 60 of 6,265 images of class 7 - seven").wait_for(
                timeout=60_000
            )
            settle(page)
            assert page.get_by_text("label 7 - seven").is_visible()
            assert_no_error(page)
    finally:
        context.close()


def test_clicking_a_gallery_image_opens_it_large(page, server):
    open_view(page, server + "/images", "Images")
    page.locator(".st-key-gallery figure").nth(7).click()  # #7, a 3
    page.get_by_text("#7 in MNIST train, label 3 - three").wait_for()
    settle(page)
    assert "image=7" in page.url
    assert (
        page.locator(".st-key-gallery figure.current figcaption").inner_text() == "3 - three (#7)"
    )
    screenshot(page, "images-clicked")


def test_clicking_a_batch_image_opens_it_on_the_images_page(page, server):
    open_view(page, server + "/batches?split=test&shuffle=false", "Batches")
    page.locator(".st-key-batch_images figure").nth(3).click()
    page.get_by_role("heading", name="Images", exact=True).wait_for()
    page.get_by_text("#3 in MNIST test").wait_for()
    settle(page)
    assert "image=3" in page.url and "split=test" in page.url


def test_copy_link_puts_the_link_on_the_clipboard(page, server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_view(page, server + "/batches?batch=4", "Batches")
    shown = page.locator(".st-key-share input").input_value()
    assert shown.startswith(server + "/batches?") and "batch=4" in shown
    page.locator(".st-key-share button").click()
    page.locator(".st-key-share").get_by_text("Copied to the clipboard.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == shown


def test_clicking_a_test_bar_shows_test_samples_and_the_selection_clears(page, server):
    open_view(page, server + "/balance", "Class balance")
    read_chart(page)
    # The test trace's bar for class 3: Plotly draws one path per bar, trace by trace.
    bar = page.locator(".js-plotly-plot .trace.bars").nth(1).locator("path").nth(3).bounding_box()
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)  # Plotly's layer
    page.get_by_text("Showing 40 of 1,010 images of class 3 - three").wait_for()
    settle(page)
    assert page.get_by_text("The first ones in MNIST test").is_visible()
    assert "samples_from=test" in page.url
    faded = "el => [...el.querySelectorAll('.trace.bars path')].some(p => +getComputedStyle(p).opacity < 1)"
    assert page.locator(".js-plotly-plot").first.evaluate(faded)
    screenshot(page, "balance-clicked-test")
    page.get_by_role("button", name="Clear the selection").click()
    settle(page)
    read_chart(page)
    assert not page.locator(".js-plotly-plot").first.evaluate(faded)
    assert page.get_by_role("button", name="Clear the selection").count() == 0
    assert page.get_by_text("The first ones in MNIST test").is_visible()  # the samples stay


def test_a_pipeline_in_the_link_shows_before_and_after_and_a_step_comes_off(page, server):
    """The pipeline rides in the URL; Next keeps it; removing its step takes it off the URL."""
    flip = "RandomHorizontalFlip(p=0.5)"
    open_view(page, f"{server}/batches?transforms={quote(flip)}&draw_seed=4", "Batches")
    before, after = gallery_sources(page, "batch_images"), gallery_sources(page, "batch_after")
    assert len(before) == len(after) == 10
    assert page.get_by_text("torch.manual_seed(4 + i)").first.is_visible()
    screenshot(page, "batches-pipeline")
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Batch 1 of 6,000").wait_for()
    settle(page)
    assert gallery_sources(page, "batch_after") != after
    assert "transforms=" in page.url and "batch=1" in page.url
    sidebar = page.locator("[data-testid=stSidebar]")
    sidebar.locator(".st-key-remove_step_0 button").first.click()
    settle(page)
    assert "transforms=" not in page.url
    assert page.locator(".st-key-batch_after").count() == 0
    assert_no_error(page)

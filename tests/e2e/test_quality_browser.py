"""The map of the data in Chromium: hovering a point shows its image, a lasso selection
shows the selected images (what only a browser shows: Plotly's own events)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import datalib
from bench.serving import serving
from datalib import quality
from tests.conftest import write_learnable
from tests.e2e.conftest import assert_no_error, open_view, screenshot


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> Iterator[str]:
    """A served folder whose test split's label job has run (model, findings, map)."""
    root = write_learnable(tmp_path_factory.mktemp("learnable"))
    test = datalib.load("folder:learnable", "test", root)
    quality.find_label_issues(test)
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with serving(root, log) as running:
        yield running.url


MAP = """Array.from(document.querySelectorAll('.js-plotly-plot'))
  .find((g) => g.layout && g.layout.meta === 'batchscope-map')"""


def open_map(page, url: str) -> None:
    open_view(
        page, url + "/quality?dataset=folder:learnable&split=test&section=Map", "Data quality"
    )
    page.wait_for_function(f"() => {{ const gd = {MAP}; return gd && gd._fullLayout; }}")


def point_on_screen(page, trace: int, point: int) -> dict:
    """Where a point of the map is drawn, in page pixels."""
    return page.evaluate(
        """([trace, point]) => {
          const gd = MAP;
          const layout = gd._fullLayout, data = gd._fullData[trace];
          const box = gd.getBoundingClientRect();
          return {
            x: box.left + layout._size.l + layout.xaxis.l2p(data.x[point]),
            y: box.top + layout._size.t + layout.yaxis.l2p(data.y[point]),
          };
        }""".replace("MAP", MAP),
        [trace, point],
    )


def test_hovering_a_point_of_the_map_shows_its_image(browser, learned):
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_map(page, learned)
    assert_no_error(page)
    preview = page.locator(".preview figcaption")
    preview.filter(has_text="Rest the pointer").wait_for()
    where = point_on_screen(page, 0, 0)
    page.mouse.move(where["x"] - 4, where["y"] - 4)
    page.mouse.move(where["x"], where["y"])
    preview.filter(has_text="test #").wait_for()
    assert page.locator(".preview img").get_attribute("src").startswith("data:image/")
    shown = preview.inner_text()
    assert shown.startswith("test #") and shown.endswith(": dots")  # trace 0: the first class
    screenshot(page, "quality-map-hover")
    context.close()


def test_a_lasso_round_the_map_shows_the_selected_images(browser, learned):
    context = browser.new_context(viewport={"width": 1400, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_map(page, learned)
    box = page.evaluate(
        """() => {
          const gd = MAP;
          const layout = gd._fullLayout, r = gd.getBoundingClientRect();
          return {x: r.left + layout._size.l, y: r.top + layout._size.t,
                  w: layout._size.w, h: layout._size.h};
        }""".replace("MAP", MAP)
    )
    corners = [(0.01, 0.01), (0.99, 0.01), (0.99, 0.99), (0.01, 0.99), (0.01, 0.02)]
    points = [(box["x"] + fx * box["w"], box["y"] + fy * box["h"]) for fx, fy in corners]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text("selected images").wait_for()
    tiles = page.locator(".st-key-map_grid_test figure")
    tiles.nth(25).wait_for()  # the grid draws after the caption
    assert tiles.count() == 26  # every image of the split is inside the lasso, each once
    assert_no_error(page)
    context.close()

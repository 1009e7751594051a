"""Load test over Streamlit's own protocol: simulated readers on websockets, no browsers.

    python -m bench.load_protocol [--sessions 20 50 100] [--root DIR] [--think 4 8]
        [--ramp 0.1 0.5] [--timeout 30] [--settle 5] [--out bench/results/load_protocol.json]

One `streamlit run app.py` on loopback (MNIST's index built beforehand, so no session waits on a
scan) serves one run per `--sessions` figure. Each simulated reader opens
ws://127.0.0.1:PORT/_stcore/stream as the browser does, opens /batches, then does the browser load
test's 10 interactions (Next twice, the gallery's next page, the histogram's "One class", the
balance chart's "percent", the sidebar's page links), each a BackMsg asking for a rerun with the
page and the widget's new state, timed until the ForwardMsg that says the script run is over.
Widget ids and page hashes are read from what the server sends, never written here. An answer
that carries an exception, an error box, or lacks what the interaction should change (the next
batch number, the gallery's page 2, a class histogram, percent bars) is an error.

Reports per run: sessions held to the end, errors (target 0), p50/p95/max of the server's
answer (target p95 < 1 s up to 50 sessions), CPU per request of the server and of this client,
the server's CPU in its busiest 5 s (it is one Python process: about one core at most) and what
the rest of the machine used meanwhile, and the server's RSS before, at the peak (sampled every
100 ms) and a few seconds after the sessions closed (target: back within 10%). Writes `--out`
and a Markdown table; exits 1 naming each missed target. This process runs at nice 10; the
server at its own priority.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from google.protobuf.message import Message
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench import REPO
from bench.machine import (
    describe,
    load_average,
    machine_cpu_seconds,
    process_cpu_seconds,
    process_rss_bytes,
)
from bench.report import percentile
from bench.serving import Server, add_reader_options, data_root, serving

SESSIONS = (20, 50, 100)
# Readers as in the browser load test: a look at a chart or a grid of digits between clicks.
THINK_S = (4.0, 8.0)
RAMP_S = (0.1, 0.5)  # seconds between two readers' arrivals, drawn uniformly
TIMEOUT_S = 30.0  # for one answer; a reader without one is not held
WARM_TIMEOUT_S = 120.0  # the first reader's answers load MNIST's splits and statistics
SETTLE_S = 5.0  # after the last reader closes, before reading the server's RSS "after"
SAMPLE_S = 0.1
BUSY_WINDOW_S = 5.0  # the server's busiest stretch is measured over this long
P95_TARGET_S = 1.0
P95_TARGET_SESSIONS = 50  # the p95 target holds for runs of up to this many sessions
RSS_GROWTH_LIMIT = 0.10
OPEN = "open the app"
SIDEBAR = 1  # a delta's path starts with its root container: 0 the main area, 1 the sidebar
# What the browser sends when the page holds no XSRF cookie (frontend: getSessionTokens).
NO_TOKEN = "PLACEHOLDER_AUTH_TOKEN"
# Plotly's chart titles in a plotly_chart element's JSON spec (axis titles match too).
PLOTLY_TITLE = re.compile(r'"title":\{"text":("(?:[^"\\]|\\.)*")')


class Unanswered(Exception):
    """The interaction could not be asked or got no answer."""


@dataclass
class Answer:
    """What the server sent for one rerun request, up to the end of the script run."""

    sent: float
    finished: float | None = None
    texts: list[str] = field(default_factory=list)  # headings, markdown, captions, chart titles
    widgets: dict[tuple[str, str], Message] = field(default_factory=dict)  # (kind, label)
    sidebar_widgets: set[str] = field(default_factory=set)  # ids
    params: set[str] = field(default_factory=set)  # query keys the widgets are bound to
    media: list[str] = field(default_factory=list)  # /media/ URLs of images
    problems: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """The server's answer: from the request sent to the end of the script run heard."""
        return (self.finished or math.nan) - self.sent

    def widget(self, kind: str, label: str) -> Message:
        """The widget element of this kind and label that the answer drew."""
        try:
            return self.widgets[kind, label]
        except KeyError:
            raise Unanswered(f"no {kind} {label!r} on the page") from None

    def shows(self, pattern: str) -> bool:
        """Whether a heading, caption, markdown or chart title matches the regex `pattern`."""
        return any(re.search(pattern, text) for text in self.texts)

    def restart(self) -> None:
        """A new script run starts (after st.rerun): what the cut-short one drew is gone, not
        its problems."""
        for drawn in (self.texts, self.widgets, self.sidebar_widgets, self.params, self.media):
            drawn.clear()


@dataclass
class Reader:
    """One simulated browser tab: its socket and what the frontend would remember."""

    socket: ClientConnection
    url: str  # http://127.0.0.1:PORT
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)  # title -> hash, path
    page: str = ""  # the page script hash of the last run
    query: str = ""  # the URL's query string, as the server or this reader's widgets set it
    states: dict[str, WidgetState] = field(default_factory=dict)  # values this reader set
    answer: Answer | None = None

    def client_state(self, page: str, query: str, states: list[WidgetState]) -> ClientState:
        """A rerun request as the frontend's sendRerunBackMsg builds it (no cached messages:
        the server then sends every element in full)."""
        path = next((p for h, p in self.pages.values() if h == page), "")
        state = ClientState(
            query_string=query,
            page_script_hash=page,
            context_info=ContextInfo(
                timezone="UTC",
                timezone_offset=0,
                locale="en-US",
                url=f"{self.url}/{path}",
                is_embedded=False,
                color_scheme="light",
            ),
        )
        state.widget_states.widgets.extend(states)
        return state


Action = Callable[[Reader], ClientState]
Check = Callable[[Answer | None, Answer], str | None]  # (before, after) -> what is missing


def hear(reader: Reader, answer: Answer, message: ForwardMsg) -> bool:
    """Take in one ForwardMsg; True when it ends the run that answers the request."""
    kind = message.WhichOneof("type")
    if kind == "script_finished":
        status = message.script_finished
        if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            answer.problems.append("the script did not compile")
        return status != ForwardMsg.FINISHED_EARLY_FOR_RERUN  # st.rerun(): another run follows
    if kind == "new_session":  # a run starts: what an earlier, cut-short run drew is gone
        # The hash of the script it starts: app.py's, or a page's by its old-style pages/ name.
        reader.page = message.new_session.page_script_hash
        answer.restart()
    elif kind == "navigation":  # the pages, and the one that ran: the frontend keeps both
        reader.page = message.navigation.page_script_hash
        reader.pages = {
            page.page_name: (page.page_script_hash, page.url_pathname)
            for page in message.navigation.app_pages
        }
    elif kind == "page_info_changed":
        reader.query = message.page_info_changed.query_string
    elif kind == "page_not_found":
        answer.problems.append(f"page not found: {message.page_not_found.page_name}")
    elif kind == "session_event" and message.session_event.HasField("script_compilation_exception"):
        answer.problems.append("script compilation exception")
    elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
        draw(answer, message.delta.new_element, message.metadata.delta_path)
    return False


def draw(answer: Answer, element: Message, path: Sequence[int]) -> None:
    """Note what one element says: its text, its widget id, an image's URL, an error."""
    kind = element.WhichOneof("type")
    body = getattr(element, kind)
    if kind == "exception":
        answer.problems.append(f"exception: {body.type}: {body.message}")
    elif kind == "alert" and body.format == body.ERROR:
        answer.problems.append(f"error box: {body.body}")
    elif kind in ("heading", "markdown", "alert"):
        answer.texts.append(body.body)
    elif kind == "plotly_chart":
        answer.texts += [json.loads(title) for title in PLOTLY_TITLE.findall(body.spec)]
    elif kind == "imgs":
        answer.media += [image.url for image in body.imgs if image.url.startswith("/media/")]
    fields = body.DESCRIPTOR.fields_by_name
    if "id" in fields and body.id:
        label = body.label if "label" in fields else ""
        answer.widgets[kind, label] = body
        if path and path[0] == SIDEBAR:
            answer.sidebar_widgets.add(body.id)
        if "query_param_key" in fields and body.query_param_key:
            answer.params.add(body.query_param_key)


async def ask(reader: Reader, state: ClientState, timeout: float) -> Answer:
    """Send a rerun request and read the server's messages until its script run is over."""
    answer = Answer(sent=time.perf_counter())
    await reader.socket.send(BackMsg(rerun_script=state).SerializeToString())
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = ForwardMsg.FromString(await reader.socket.recv())
                if hear(reader, answer, message):
                    break
    except TimeoutError:
        raise Unanswered(f"no end of the script run within {timeout:g} s") from None
    answer.finished = time.perf_counter()
    reader.answer = answer
    return answer


# The interactions: what each sends, and what its answer must show.


def opening(path: str) -> Action:
    """The first rerun of a new tab on /`path`: no page hash yet, the page by its URL path."""

    def act(reader: Reader) -> ClientState:
        state = reader.client_state("", "", [])
        state.page_name = path
        return state

    return act


def go_to(title: str) -> Action:
    """A click on the page's link in the sidebar (frontend: onPageChange): the page's hash, the
    sidebar widgets' states, and the URL's query cut to the keys of the widgets bound to it."""

    def act(reader: Reader) -> ClientState:
        if title not in reader.pages:
            raise Unanswered(f"no page {title!r} in the navigation")
        before = reader.answer
        assert before is not None
        reader.query = "&".join(
            pair for pair in reader.query.split("&") if pair.split("=")[0] in before.params
        )
        states = [s for i, s in reader.states.items() if i in before.sidebar_widgets]
        return reader.client_state(reader.pages[title][0], reader.query, states)

    return act


def on_page(
    reader: Reader, state: WidgetState, url_value: str | None = None, keep: bool = True
) -> ClientState:
    """A rerun of this page with one widget's new state and the others this reader set. A widget
    bound to the URL writes `url_value` there first (None: its default, off the URL), as the
    frontend's widget manager does before it sends the rerun."""
    assert reader.answer is not None
    if keep:  # a value the widget keeps; a button's trigger is sent once
        reader.states[state.id] = state
    widget = next(w for w in reader.answer.widgets.values() if w.id == state.id)
    key = getattr(widget, "query_param_key", "")
    if key:
        pairs = [(k, v) for k, v in parse_qsl(reader.query, keep_blank_values=True) if k != key]
        reader.query = urlencode(pairs + ([(key, url_value)] if url_value is not None else []))
    drawn = {widget.id for widget in reader.answer.widgets.values()}
    states = [s for i, s in reader.states.items() if i in drawn and i != state.id]
    return reader.client_state(reader.page, reader.query, [*states, state])


def press(label: str) -> Action:
    """A click on the button labelled `label`."""

    def act(reader: Reader) -> ClientState:
        button = reader.answer.widget("button", label)
        if button.disabled:
            raise Unanswered(f"button {label!r} is disabled")
        return on_page(reader, WidgetState(id=button.id, trigger_value=True), keep=False)

    return act


def turn_to(page: int) -> Action:
    """A click on page `page` of the (one) st.pagination on the page."""

    def act(reader: Reader) -> ClientState:
        pagination = reader.answer.widget("pagination", "")
        if not 1 <= page <= pagination.num_pages:
            raise Unanswered(f"no page {page} of {pagination.num_pages}")
        state = WidgetState(id=pagination.id, int_value=page)
        return on_page(reader, state, None if page == pagination.default else str(page))

    return act


def choose(label: str, option: str) -> Action:
    """A click on `option` of the segmented control labelled `label`."""

    def act(reader: Reader) -> ClientState:
        control = reader.answer.widget("button_group", label)
        options = [o.content for o in control.options]
        if option not in options:
            raise Unanswered(f"no option {option!r} in {label!r}")
        state = WidgetState(id=control.id, string_array_value={"data": [option]})
        default = [options[i] for i in control.default]
        return on_page(reader, state, None if default == [option] else option)

    return act


def shows(pattern: str) -> Check:
    """The answer has a heading, caption or chart title matching `pattern`."""
    return lambda before, after: None if after.shows(pattern) else f"no text matching {pattern!r}"


def batch_number(answer: Answer | None) -> int | None:
    """k of the "Batch k of N" heading an answer drew."""
    for text in answer.texts if answer else ():
        found = re.fullmatch(r"Batch ([\d,]+) of [\d,]+", text)
        if found:
            return int(found.group(1).replace(",", ""))
    return None


def next_batch(before: Answer | None, after: Answer) -> str | None:
    """The batch number went up by one."""
    k, now = batch_number(before), batch_number(after)
    if k is None or now != k + 1:
        return f"batch {now} after batch {k} (expected {None if k is None else k + 1})"
    return None


@dataclass(frozen=True)
class Step:
    """One interaction: its name, the rerun request it sends, what its answer must show."""

    name: str
    action: Action
    check: Check


STEPS = (
    Step(OPEN, opening("batches"), shows("^Batch 0 of 6,000$")),
    Step("next batch", press("Next"), next_batch),
    Step("next batch", press("Next"), next_batch),
    Step("to images", go_to("Images"), shows("^Showing 60 of 60,000")),
    Step("next gallery page", turn_to(2), shows("Page 2 of 1,000")),
    Step("to histograms", go_to("Histograms"), shows(r"pixels\)$")),
    Step("one class", choose("Pixels of", "One class"), shows(r"class .*pixels\)$")),
    Step("to balance", go_to("Class balance"), shows("class counts")),
    Step("percent", choose("Show", "percent"), shows("shares")),
    Step("to overview", go_to("Overview"), shows("^One example of each class$")),
    Step("to batches", go_to("Batches"), shows(r"^Batch \d+ of 6,000$")),
)


@dataclass
class Record:
    """What one run's readers found."""

    times: list[tuple[str, float]] = field(default_factory=list)  # step, server's answer (s)
    errors: list[str] = field(default_factory=list)
    held: int = 0
    requests: int = 0


def fetch(url: str, timeout: float) -> int:
    """GET a URL; its status. In a thread: the event loop keeps serving the other readers."""
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        answer.read()
        return answer.status


async def get(url: str, timeout: float) -> None:
    """GET a URL of the server; anything but 200 is an error."""
    status = await asyncio.to_thread(fetch, url, timeout)
    if status != 200:
        raise Unanswered(f"GET {url}: {status}")


@dataclass(frozen=True)
class Pacing:
    """A run's pace, in seconds: a reader's between interactions and between two readers'
    arrivals (both drawn uniformly), the wait for one answer, and the wait after the readers
    closed before the server's RSS is read."""

    think: tuple[float, float] = THINK_S
    ramp: tuple[float, float] = RAMP_S
    timeout: float = TIMEOUT_S
    settle: float = SETTLE_S


async def read(number: int, url: str, pacing: Pacing, record: Record, rng: random.Random) -> None:
    """One reader: the browser's checks of the server, the socket, then every step in turn."""
    step_name = "connect"
    try:
        for path in ("/_stcore/health", "/_stcore/host-config"):  # as the frontend, first
            await get(url + path, pacing.timeout)
        async with connect(
            url.replace("http://", "ws://") + "/_stcore/stream",
            origin=url,  # same origin, as a page served by this server
            subprotocols=["streamlit", NO_TOKEN],
            max_size=None,
            max_queue=None,  # read every frame as it comes, as a browser does
            open_timeout=pacing.timeout,
        ) as socket:
            reader = Reader(socket=socket, url=url)
            for index, step in enumerate(STEPS):
                step_name = step.name
                if index:
                    await asyncio.sleep(rng.uniform(*pacing.think))
                before = reader.answer
                try:
                    state = step.action(reader)
                except Unanswered as error:
                    record.errors.append(f"session {number}, {step.name}: {error}")
                    continue
                record.requests += 1
                answer = await ask(reader, state, pacing.timeout)
                record.times.append((step.name, answer.seconds))
                missing = step.check(before, answer)
                for problem in answer.problems + ([missing] if missing else []):
                    record.errors.append(f"session {number}, {step.name}: {problem}")
                for media in answer.media:  # the images the browser would load
                    try:
                        await get(url + media, pacing.timeout)
                    except (Unanswered, OSError) as error:
                        record.errors.append(f"session {number}, {step.name}: {error}")
        record.held += 1
    except (Unanswered, WebSocketException, OSError) as error:
        record.errors.append(f"session {number}, {step_name}: {type(error).__name__}: {error}")


@dataclass(frozen=True)
class Sample:
    """The server's RSS and CPU time, and the machine's busy time, at one moment."""

    at: float
    rss: int
    server_cpu: float
    machine_cpu: float


async def watch(pid: int, samples: list[Sample]) -> None:
    """Sample the server and the machine every SAMPLE_S until cancelled."""
    while True:
        now = time.perf_counter()
        cpu, machine = process_cpu_seconds(pid), machine_cpu_seconds()
        samples.append(Sample(now, process_rss_bytes(pid), cpu, machine))
        await asyncio.sleep(SAMPLE_S)


def busiest(samples: list[Sample], seconds: float = BUSY_WINDOW_S) -> float:
    """The server's CPU use in its busiest `seconds` (a sliding window), in cores."""
    best, start = 0.0, 0
    for last in samples:  # the shortest window of at least `seconds` that ends at `last`
        while start + 1 < len(samples) and last.at - samples[start + 1].at >= seconds:
            start += 1
        first = samples[start]
        if last.at - first.at >= seconds:
            best = max(best, (last.server_cpu - first.server_cpu) / (last.at - first.at))
    return best


async def run(sessions: int, server: Server, pacing: Pacing, rng: random.Random) -> dict:
    """`sessions` readers arriving one after another; the figures of one run."""
    pid = server.process.pid
    await asyncio.sleep(2)  # what the last run or the warm-up left settles
    before = process_rss_bytes(pid)
    samples: list[Sample] = []
    watcher = asyncio.create_task(watch(pid, samples))
    record = Record()
    load_start = load_average()
    cpu_before, own_before = process_cpu_seconds(pid), time.process_time()
    machine_before = machine_cpu_seconds()
    started = time.perf_counter()

    async def arrive(number: int, delay: float) -> None:
        await asyncio.sleep(delay)
        await read(number, server.url, pacing, record, random.Random(rng.random()))

    delays = [0.0]
    for _ in range(sessions - 1):
        delays.append(delays[-1] + rng.uniform(*pacing.ramp))
    await asyncio.gather(*(arrive(n + 1, d) for n, d in enumerate(delays)))
    wall = time.perf_counter() - started
    server_cpu = process_cpu_seconds(pid) - cpu_before
    own_cpu = time.process_time() - own_before
    machine_cpu = machine_cpu_seconds() - machine_before
    while_open = list(samples)
    await asyncio.sleep(pacing.settle)
    after = process_rss_bytes(pid)
    watcher.cancel()
    answers = sorted(s for name, s in record.times if name != OPEN)
    opens = sorted(s for name, s in record.times if name == OPEN)
    names = dict.fromkeys(name for name, _ in record.times)
    requests = max(1, record.requests)
    megabytes = 2**20
    return {
        "sessions": sessions,
        "held": record.held,
        "interactions": len(answers),
        "interactions_planned": sessions * (len(STEPS) - 1),
        "errors": record.errors,
        "p50_s": percentile(answers, 0.5),
        "p95_s": percentile(answers, 0.95),
        "max_s": answers[-1] if answers else None,
        "open_p50_s": percentile(opens, 0.5),
        "open_max_s": opens[-1] if opens else None,
        "median_s_by_step": {
            name: statistics.median(s for n, s in record.times if n == name) for name in names
        },
        "requests": record.requests,
        "server_cpu_s": server_cpu,
        # Per rerun request: the 10 interactions and the opening, as the browser test counts.
        "server_cpu_s_per_request": server_cpu / requests,
        "client_cpu_s_per_request": own_cpu / requests,
        # The server is one Python process: its script runs share one interpreter lock.
        "server_cores_busiest_5s": busiest(while_open),
        # Everything else the machine did meanwhile (other work; not the server, not this client).
        "others_cores": (machine_cpu - server_cpu - own_cpu) / wall,
        "machine_busy": machine_cpu / (wall * (os.cpu_count() or 1)),
        "rss_before_mb": before / megabytes,
        "rss_peak_mb": max([before, *(sample.rss for sample in samples)]) / megabytes,
        "rss_after_mb": after / megabytes,
        "wall_s": wall,
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


async def run_all(server: Server, counts: list[int], pacing: Pacing, seed: int) -> list[dict]:
    """A warm-up reader (loads MNIST's splits and statistics), then one run per count."""
    warm = Record()
    warm_pace = Pacing(think=(0.0, 0.0), timeout=WARM_TIMEOUT_S)
    await read(0, server.url, warm_pace, warm, random.Random(seed))
    if warm.errors:
        raise RuntimeError(f"the warm-up reader failed: {warm.errors}")
    rng = random.Random(seed)
    results = []
    for sessions in counts:
        print(f"  {sessions} sessions...", flush=True)
        results.append(await run(sessions, server, pacing, rng))
    return results


def build_index(root: str, cache: str) -> None:
    """MNIST's index, built before the server starts, so that no session waits on a scan."""
    scan = subprocess.run(
        [sys.executable, "-m", "datalib", "scan", "mnist", "--root", root],
        cwd=REPO,
        env=os.environ | {"BATCHSCOPE_CACHE": cache, "DATALIB_ROOT": root},
        check=False,  # its stderr goes into the error below
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.nice(10),  # no threads yet; the scan yields to other work
    )
    if scan.returncode:
        raise RuntimeError(f"`python -m datalib scan mnist` failed:\n{scan.stderr[-2000:]}")


def missed_targets(runs: list[dict]) -> list[str]:
    """A sentence for each target a run missed."""
    missed = []
    for r in runs:
        n = r["sessions"]
        if r["errors"] or r["held"] < n:
            missed.append(
                f"{n} sessions: {len(r['errors'])} errors (target 0), {r['held']} of {n} held"
            )
        if n <= P95_TARGET_SESSIONS and (r["p95_s"] is None or r["p95_s"] >= P95_TARGET_S):
            p95 = "-" if r["p95_s"] is None else f"{r['p95_s']:.2f}"
            missed.append(f"{n} sessions: p95 {p95} s (target < {P95_TARGET_S:g} s)")
        if r["rss_after_mb"] > r["rss_before_mb"] * (1 + RSS_GROWTH_LIMIT):
            missed.append(
                f"{n} sessions: server RSS {r['rss_after_mb']:.0f} MB after closing, "
                f"{r['rss_before_mb']:.0f} MB before (target within {RSS_GROWTH_LIMIT:.0%})"
            )
    return missed


def to_markdown(runs: list[dict]) -> str:
    """One column per run."""

    def f(value: float | None, spec: str = ".2f") -> str:
        return "-" if value is None else format(value, spec)

    rows = {
        "sessions held / started": lambda r: f"{r['held']} / {r['sessions']}",
        "interactions answered": lambda r: f"{r['interactions']} of {r['interactions_planned']}",
        "errors": lambda r: str(len(r["errors"])),
        "server's answer p50 / p95 / max": lambda r: (
            f"{f(r['p50_s'])} / {f(r['p95_s'])} / {f(r['max_s'])} s"
        ),
        "opening /batches p50 / max": lambda r: f"{f(r['open_p50_s'])} / {f(r['open_max_s'])} s",
        "CPU per request: server / this client": lambda r: (
            f"{f(r['server_cpu_s_per_request'], '.3f')} / "
            f"{f(r['client_cpu_s_per_request'], '.3f')} s"
        ),
        "server CPU: busiest 5 s / others on the machine; machine busy": lambda r: (
            f"{r['server_cores_busiest_5s']:.2f} / {r['others_cores']:.2f} cores; "
            f"{r['machine_busy']:.0%}"
        ),
        "server RSS before / peak / after": lambda r: (
            f"{r['rss_before_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_after_mb']:.0f} MB"
        ),
        "run wall time; load average at start": lambda r: (
            f"{r['wall_s']:.0f} s; {r['load_average_start'][0]:g}"
        ),
    }
    lines = [
        "| figure | " + " | ".join(f"{r['sessions']} sessions" for r in runs) + " |",
        "|---" * (len(runs) + 1) + "|",
    ]
    lines += [
        f"| {name} | " + " | ".join(cell(r) for r in runs) + " |" for name, cell in rows.items()
    ]
    return "\n".join(lines)


def main() -> int:
    """Build the index, start the server, run each count of readers, report; 1 if a target
    was missed."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.load_protocol",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sessions", type=int, nargs="+", default=list(SESSIONS))
    add_reader_options(parser, THINK_S)
    parser.add_argument(
        "--ramp",
        type=float,
        nargs=2,
        default=RAMP_S,
        metavar=("MIN", "MAX"),
        help="seconds between two readers' arrivals, drawn uniformly (default 0.1 0.5)",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per answer")
    parser.add_argument(
        "--settle",
        type=float,
        default=SETTLE_S,
        help="seconds from the last reader's close to reading the server's RSS (default 5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the pacing")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/load_protocol.json")
    args = parser.parse_args()
    root = str(data_root(args.root))
    pacing = Pacing(tuple(args.think), tuple(args.ramp), args.timeout, args.settle)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = args.out.with_suffix(".server.log")
    log.unlink(missing_ok=True)
    machine = describe()
    try:
        with tempfile.TemporaryDirectory(prefix="load-protocol-cache-") as cache:
            print(f"building MNIST's index in {cache}...", flush=True)
            build_index(root, cache)
            with serving(root, log, env={"BATCHSCOPE_CACHE": cache}) as server:
                os.nice(10)  # this process only: the server started at its own priority
                runs = asyncio.run(run_all(server, args.sessions, pacing, args.seed))
    except RuntimeError as error:
        print(f"load_protocol: {error}", file=sys.stderr)
        return 1
    missed = missed_targets(runs)
    record = {
        "machine": machine,
        "think_s": list(args.think),
        "ramp_s": list(args.ramp),
        "timeout_s": args.timeout,
        "settle_s": args.settle,
        "steps": [step.name for step in STEPS],
        "runs": runs,
        "missed": missed,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(to_markdown(runs))
    for r in runs:
        for error in r["errors"][:10]:
            print(f"  {r['sessions']} sessions: {error}")
    print(f"written: {args.out}")
    if missed:
        print("MISSED: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

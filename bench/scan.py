"""The scan and the pages on a large synthetic image folder (`python -m bench.make_folder`):
scan throughput against a one-process decode loop and a DataLoader pass over the same files,
the scan's process-tree memory, the index's size, and what the pages cost on the folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import REPO
from bench.machine import process_rss_bytes
from bench.make_folder import BROKEN
from bench.report import Row, duration, megabytes

__all__ = ["run"]

NAME = "synthetic"  # folder:synthetic under the bench's own data root
FLOOR_TARGET = 0.5  # x cores x the one-process decode loop
RAY_TARGET = 0.6  # Ray's overhead on one machine, bounded
LOADER_TARGET = 0.8  # x the DataLoader pass
TREE_TARGET = 1.2 * 2**30  # bytes: the scan's parent and workers together, at the peak
BYTES_TARGET = 2048  # index bytes per sample
PAGE_TARGET = 0.300  # seconds, warm script run
FIRST_OPEN_TARGET = 2.0  # seconds, the first open of a page after the scan
SERVER_TARGET = 300 * 2**20  # bytes a server may add over its after-imports RSS


def _progress(message: str) -> None:
    print(f"  {message}", flush=True)


def ensure_folder(root: Path, images: int, size: int) -> Path:
    """The synthetic folder, written once and kept (bench/data is git-ignored)."""
    folder = root / NAME
    stamp = folder / ".made"
    want = f"{images} {size}"
    if stamp.is_file() and stamp.read_text() == want:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    from bench.make_folder import make_folder  # only when the folder is new

    start = time.perf_counter()
    make_folder(folder, images, size)
    stamp.write_text(want)
    _progress(f"wrote {images:,} images of {size}x{size} in {time.perf_counter() - start:.0f} s")
    return folder


def _image_files(folder: Path) -> list[Path]:
    """Every file ImageFolder would read (the broken ones too: the baselines skip them)."""
    return sorted(p for p in folder.rglob("*") if p.suffix in (".jpg", ".png"))


def decode_floor(files: list[Path]) -> tuple[float, int]:
    """Seconds for one process to open, decode and turn every image into an array."""
    from PIL import Image

    start = time.perf_counter()
    decoded = 0
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                np.asarray(image)
                decoded += 1
        except OSError:  # the few broken files: skipped, as the scan skips them
            pass
    return time.perf_counter() - start, decoded


def dataloader_pass(folder: Path, workers: int) -> tuple[float, int]:
    """Seconds for `DataLoader(ImageFolder(split), batch_size=256, num_workers=cores)`,
    iterated once, over every split (the broken files left out by `is_valid_file`)."""
    import torch
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    broken = {str(p) for p in _image_files(folder) if p.name in BROKEN}
    total, seen = 0.0, 0
    for split in ("train", "test"):
        dataset = ImageFolder(
            str(folder / split),
            transform=transforms.ToTensor(),
            is_valid_file=lambda p: p.endswith((".jpg", ".png")) and p not in broken,
        )
        loader = torch.utils.data.DataLoader(dataset, batch_size=256, num_workers=workers)
        start = time.perf_counter()
        for _images, labels in loader:
            seen += len(labels)
        total += time.perf_counter() - start
    return total, seen


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def tree_rss(pid: int) -> int:
    """A process's resident memory plus all its descendants'."""
    total = 0
    for member in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError, RuntimeError):
            total += process_rss_bytes(member)
    return total


def scan_folder(data_root: Path, cache: Path, *options: str) -> dict:
    """`python -m datalib scan folder:synthetic [OPTIONS]` into an empty cache: wall seconds,
    images, the process tree's peak RSS (sampled every 50 ms)."""
    shutil.rmtree(cache, ignore_errors=True)
    # The Ray row measures a Ray started by the command here, never a cluster RAY_ADDRESS names.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["BATCHSCOPE_CACHE"] = str(cache)
    command = [sys.executable, "-m", "datalib", "scan", f"folder:{NAME}", "--root", str(data_root)]
    command += options
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    log = process.stderr.read()
    if process.returncode:
        raise RuntimeError(f"the scan failed: {log}")
    index = next((cache / "datasets").glob("folder-synthetic-*"))
    current = index / (index / "CURRENT").read_text().strip()
    meta = json.loads((current / "meta.json").read_text())
    images = sum(split["size"] for split in meta["splits"].values())
    used = [index / "shards" / name for name in meta["shards"]]
    stored = sum(p.stat().st_size for p in [*current.iterdir(), *used])
    return {
        "seconds": seconds,
        "images": images,
        "peak_tree_rss": peak,
        "bytes": stored,
        "log": log,
    }


def scan_rows(data_root: Path, cache: Path) -> tuple[list[Row], dict]:
    folder = data_root / NAME
    cores = len(os.sched_getaffinity(0))
    files = _image_files(folder)
    _progress(f"one-process decode loop over {len(files):,} files...")
    floor_s, floor_n = decode_floor(files)
    _progress(f"DataLoader pass, num_workers={cores}...")
    loader_s, loader_n = dataloader_pass(folder, cores)
    _progress("scan...")
    scan = scan_folder(data_root, cache)
    _progress("scan on Ray (started here by the command)...")
    ray_cache = cache.with_name(cache.name + "-ray")
    try:
        on_ray = scan_folder(data_root, ray_cache, "--engine", "ray")
    finally:
        shutil.rmtree(ray_cache, ignore_errors=True)
    floor = floor_n / floor_s
    loader = loader_n / loader_s
    rate = scan["images"] / scan["seconds"]
    per_sample = scan["bytes"] / scan["images"]
    figures = {
        "images": scan["images"],
        "scan_s": scan["seconds"],
        "scan_images_per_s": rate,
        "floor_images_per_s": floor,
        "floor_us_per_image": 1e6 / floor,
        "loader_images_per_s": loader,
        "cores": cores,
        "peak_tree_rss": scan["peak_tree_rss"],
        "index_bytes": scan["bytes"],
        "index_bytes_per_sample": per_sample,
        "scan_cpu_us_per_image": 1e6 * cores / rate,
        "ray_scan_s": on_ray["seconds"],
    }
    ray_rate = on_ray["images"] / on_ray["seconds"]
    rows = [
        Row(
            key="scan_vs_floor",
            work=(
                f"scan, {scan['images']:,} images of a synthetic folder "
                f"(`python -m datalib scan`, {cores} workers, wall time incl. listing and index)"
            ),
            measured=f"{rate:,.0f} images/s ({duration(scan['seconds'])})",
            baseline=(
                f"{floor:,.0f} images/s: one process opening, decoding and making an array of "
                f"each ({1e6 / floor:.0f} µs an image, {duration(floor_s)})"
            ),
            result=f"{rate / (cores * floor):.2f} x cores x the floor",
            target=f">= {FLOOR_TARGET} x cores x the floor",
            ok=rate >= FLOOR_TARGET * cores * floor,
            data=figures,
        ),
        Row(
            key="scan_vs_dataloader",
            work="scan, same run and files",
            measured=f"{rate:,.0f} images/s",
            baseline=(
                f"{loader:,.0f} images/s: `DataLoader(ImageFolder(...), batch_size=256, "
                f"num_workers={cores})` + ToTensor, iterated once ({duration(loader_s)})"
            ),
            result=f"{rate / loader:.2f}x the DataLoader",
            target=f">= {LOADER_TARGET}x the DataLoader",
            ok=rate >= LOADER_TARGET * loader,
            data=figures,
        ),
        Row(
            key="scan_ray_vs_local",
            work=(
                f"scan on Ray (`--engine ray`, a Ray started by the command on this machine's "
                f"{cores} cores, wall time incl. Ray's start), same files"
            ),
            measured=f"{ray_rate:,.0f} images/s ({duration(on_ray['seconds'])})",
            baseline=f"{rate:,.0f} images/s: the local engine, above",
            result=f"{ray_rate / rate:.2f}x the local engine",
            target=f">= {RAY_TARGET}x the local engine",
            ok=ray_rate >= RAY_TARGET * rate,
            data=figures,
        ),
        Row(
            key="scan_memory",
            work="scan's process tree (parent and workers, summed), peak RSS",
            measured=megabytes(scan["peak_tree_rss"]),
            baseline="-",
            result=megabytes(scan["peak_tree_rss"]),
            target=f"<= {TREE_TARGET / 2**30:.1f} GB",
            ok=scan["peak_tree_rss"] <= TREE_TARGET,
            data=figures,
        ),
        Row(
            key="index_size",
            work="index on disk per sample (tables, histograms, shards with thumbnails)",
            measured=f"{per_sample:,.0f} bytes ({megabytes(scan['bytes'])} in all)",
            baseline="-",
            result=f"{per_sample:,.0f} bytes",
            target=f"<= {BYTES_TARGET:,} bytes",
            ok=per_sample <= BYTES_TARGET,
            data=figures,
        ),
    ]
    return rows, figures


def page_rows(data_root: Path, cache: Path) -> list[Row]:
    """Every page's first run and warm reruns on the folder, through the real app (AppTest)."""
    import logging

    from streamlit.testing.v1 import AppTest

    from bench.pages import pages
    from bench.timing import time_repeated

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    os.environ["BATCHSCOPE_CACHE"] = str(cache)
    os.environ["DATALIB_ROOT"] = str(data_root)
    rows = []
    for page in pages():
        app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        app.query_params["dataset"] = f"folder:{NAME}"
        app.switch_page(f"pages/{page}.py")
        first = time_repeated(app.run, repeats=1, warmup=0)
        warm = time_repeated(app.run, repeats=7, warmup=0, quiet_gc=False)
        failures = [str(e.value) for e in [*app.exception, *app.error]]
        rows.append(
            Row(
                key=f"folder_page_{page}",
                work=f"page on folder:{NAME}: {page}, first run / warm rerun (AppTest)",
                measured=f"first {duration(first.median)}, warm {duration(warm.median)} "
                f"(median of {warm.repeats})",
                baseline="-",
                result=duration(warm.median) + (f"; FAILED: {failures[0]}" if failures else ""),
                target=f"first <= {FIRST_OPEN_TARGET:g} s, warm <= {PAGE_TARGET * 1000:.0f} ms",
                ok=not failures
                and first.median <= FIRST_OPEN_TARGET
                and warm.median <= PAGE_TARGET,
                data={"first": first.as_dict(), "warm": warm.as_dict(), "failures": failures},
            )
        )
    return rows


def contention_row(mnist_root: str, data_root: Path) -> Row:
    """Another session's warm page on MNIST while a background scan of the folder runs (the
    app's own scan: one process tree, niced, every core)."""
    import logging

    from streamlit.testing.v1 import AppTest

    import datalib

    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    with tempfile.TemporaryDirectory(prefix="bench-contention-") as cache:
        os.environ["BATCHSCOPE_CACHE"] = cache
        os.environ["DATALIB_ROOT"] = mnist_root
        datalib.load("mnist", "train", mnist_root)  # MNIST's own index, first
        app = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
        app.switch_page("pages/batches.py").run()
        quiet = [_timed_next(app) for _ in range(15)]
        datalib.start_scan(f"folder:{NAME}", data_root)
        deadline = time.monotonic() + 5
        while not datalib.scan_state(f"folder:{NAME}", data_root).running:
            if time.monotonic() > deadline:
                raise RuntimeError("the background scan did not start")
            time.sleep(0.05)
        busy = []
        while datalib.scan_state(f"folder:{NAME}", data_root).running and len(busy) < 60:
            busy.append(_timed_next(app))
            time.sleep(0.2)  # a reader clicks now and then
        with contextlib.suppress(Exception):  # stop the scan: it was only the background
            pid = json.loads(next(Path(cache).rglob("status.json")).read_text())["pid"]
            os.killpg(os.getpgid(pid), 15)
        time.sleep(1)
    p50, p95 = statistics.median(busy), float(np.percentile(busy, 95))
    return Row(
        key="page_during_scan",
        work=f"warm page on MNIST (batches, Next) while the app scans folder:{NAME} "
        "in the background",
        measured=f"p50 {duration(p50)}, p95 {duration(p95)} ({len(busy)} runs)",
        baseline=f"p50 {duration(statistics.median(quiet))} with no scan running (15 runs)",
        result=f"p95 {duration(p95)}",
        target=f"<= {PAGE_TARGET * 1000:.0f} ms",
        ok=p95 <= PAGE_TARGET,
        data={"busy_s": busy, "quiet_s": quiet},
    )


def _timed_next(app) -> float:
    next_button = next(b for b in app.button if b.label == "Next")
    start = time.perf_counter()
    next_button.click().run()
    seconds = time.perf_counter() - start
    if next(b for b in app.button if b.label == "Next").disabled:  # the last batch: go back
        app.number_input(key="batch").set_value(0).run()
    return seconds


def server_memory_row(data_root: Path, cache: Path, results: Path) -> Row:
    """Server RSS after imports, and after a browser has opened every page on the folder."""
    from bench.pages import pages
    from bench.serving import Server, chromium

    env_cache = os.environ.get("BATCHSCOPE_CACHE")
    os.environ["BATCHSCOPE_CACHE"] = str(cache)
    try:
        with (
            Server(data_root, results / "server.log", module="bench.preload") as server,
            chromium() as browser,
        ):
            server.wait_healthy()
            time.sleep(1)
            imports = server.rss()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            for name in pages():
                page.goto(f"{server.url}/{name}?dataset=folder%3A{NAME}", timeout=120_000)
                page.get_by_role("heading").first.wait_for(timeout=120_000)
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=stStatusWidget]')",
                    timeout=120_000,
                )
            time.sleep(1)
            opened = server.rss()
            context.close()
    finally:
        if env_cache is None:
            os.environ.pop("BATCHSCOPE_CACHE", None)
        else:
            os.environ["BATCHSCOPE_CACHE"] = env_cache
    added = opened - imports
    return Row(
        key="folder_server_memory",
        work=f"server memory after every page opened on folder:{NAME} (one browser session)",
        measured=f"+{megabytes(added)} (RSS {megabytes(opened)})",
        baseline=f"{megabytes(imports)}: RSS after imports",
        result=f"+{megabytes(added)}",
        target=f"<= +{SERVER_TARGET / 2**20:.0f} MB",
        ok=added <= SERVER_TARGET,
        data={"after_imports": imports, "after_pages": opened},
    )


LARGE = "synthetic-large"  # images of ImageNet's typical size, for the README's figures
LARGE_IMAGES, LARGE_SIZE = 5_000, (500, 375)


def large_image_row(data_root: Path, results: Path) -> tuple[Row, dict]:
    """The cost per image at ImageNet's typical size (500 x 375 JPEG), the figure the README
    turns into ImageNet-1k's scan time: decode alone and the whole scan, per core."""
    folder = data_root / LARGE
    stamp = folder / ".made"
    want = f"{LARGE_IMAGES} {LARGE_SIZE}"
    if not (stamp.is_file() and stamp.read_text() == want):
        shutil.rmtree(folder, ignore_errors=True)
        from bench.make_folder import make_folder  # only when the folder is new

        make_folder(folder, LARGE_IMAGES, LARGE_SIZE[0], height=LARGE_SIZE[1])
        stamp.write_text(want)
    cores = len(os.sched_getaffinity(0))
    floor_s, floor_n = decode_floor(_image_files(folder))
    cache = results / "scan-cache-large"
    shutil.rmtree(cache, ignore_errors=True)
    env = os.environ | {"BATCHSCOPE_CACHE": str(cache)}
    command = [sys.executable, "-m", "datalib", "scan", f"folder:{LARGE}", "--root", str(data_root)]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    scan_s = time.perf_counter() - start
    index = next((cache / "datasets").glob("folder-synthetic-large-*"))
    current = index / (index / "CURRENT").read_text().strip()
    meta = json.loads((current / "meta.json").read_text())
    images = sum(split["size"] for split in meta["splits"].values())
    used = [index / "shards" / name for name in meta["shards"]]
    stored = sum(p.stat().st_size for p in [*current.iterdir(), *used])
    figures = {
        "images": images,
        "floor_us_per_image": 1e6 * floor_s / floor_n,
        "scan_core_us_per_image": 1e6 * scan_s * cores / images,
        "bytes_per_sample": stored / images,
        "size": list(LARGE_SIZE),
    }
    row = Row(
        key="scan_large_images",
        work=f"scan, {images:,} images of {LARGE_SIZE[0]}x{LARGE_SIZE[1]} (ImageNet's typical "
        f"size): core time per image ({cores} workers)",
        measured=f"{figures['scan_core_us_per_image'] / 1000:.2f} ms an image "
        f"({duration(scan_s)} wall)",
        baseline=f"{figures['floor_us_per_image'] / 1000:.2f} ms an image: one process "
        "opening and decoding each",
        result=f"{figures['scan_core_us_per_image'] / figures['floor_us_per_image']:.2f}x the "
        f"decode; index {figures['bytes_per_sample']:,.0f} bytes a sample",
        target="- (the README's ImageNet-1k figures)",
        ok=None,
        data=figures,
    )
    return row, figures


PNG_FOLDER = "mnist-test-png"  # MNIST's test split as 10,000 PNG files, for the next row
FIFTYONE_SECONDS, FIFTYONE_BYTES = 8.6, 450 * 2**20  # FiftyOne on the same files (issue #11)


def png_info_row(mnist_root: str, data_root: Path, results: Path) -> Row:
    """`python -m datalib info folder:mnist-test-png` from nothing (a fresh cache): wall time
    and the peak memory of its process tree, against FiftyOne's figures on the same files."""
    from PIL import Image

    from datalib.formats.idx import read_idx

    folder = data_root / PNG_FOLDER
    if not (folder / ".made").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        raw = Path(mnist_root) / "MNIST" / "raw"
        images = read_idx(raw / "t10k-images-idx3-ubyte", 3)
        labels = read_idx(raw / "t10k-labels-idx1-ubyte", 1)
        for i, (pixels, label) in enumerate(zip(images, labels, strict=True)):
            target = folder / str(label)
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(target / f"{i:05}.png")
        (folder / ".made").write_text("10000")
    cache = results / "scan-cache-png"
    shutil.rmtree(cache, ignore_errors=True)
    env = os.environ | {"BATCHSCOPE_CACHE": str(cache)}
    command = [sys.executable, "-m", "datalib", "info", f"folder:{PNG_FOLDER}"]
    command += ["--root", str(data_root), "--json"]
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    size = json.loads(process.stdout.read())["splits"]["all"]["size"]
    return Row(
        key="info_png_folder",
        work=f"`python -m datalib info` on MNIST test as {size:,} PNG files, from nothing "
        "(scan included; process tree's peak RSS)",
        measured=f"{duration(seconds)}, {megabytes(peak)}",
        baseline=f"FiftyOne ingesting and counting the same files: {FIFTYONE_SECONDS} s, "
        f"{megabytes(FIFTYONE_BYTES)} (its figures, from the issue; not run here)",
        result=f"{FIFTYONE_SECONDS / seconds:.1f}x faster, {FIFTYONE_BYTES / peak:.1f}x lighter",
        target="faster and lighter than FiftyOne",
        ok=size == 10000 and seconds < FIFTYONE_SECONDS and peak < FIFTYONE_BYTES,
        data={"seconds": seconds, "peak_tree_rss": peak},
    )


def run(
    mnist_root: str, data_root: Path, results: Path, images: int, size: int
) -> tuple[list[Row], dict]:
    ensure_folder(data_root, images, size)
    cache = results / "scan-cache"
    rows, figures = scan_rows(data_root, cache)
    rows += page_rows(data_root, cache)
    rows.append(server_memory_row(data_root, cache, results))
    rows.append(contention_row(mnist_root, data_root))
    large, figures["large"] = large_image_row(data_root, results)
    rows.append(large)
    rows.append(png_info_row(mnist_root, data_root, results))
    return rows, figures

"""`python -m bench.make_folder --images N --size S [--out DIR]`: a synthetic ImageFolder.

`<out>/train/<class>/<i>.jpg|png` and `<out>/test/...`: 10 classes, each image a soft colour
gradient with a few shapes in its class's colours (so JPEG and PNG sizes and decode times are
like photos', not like noise), 4 in 5 JPEG and 1 in 5 PNG, one test image in 10. A few broken
files are mixed in, as real folders have: a truncated JPEG, an HTML error page named .png, an
empty file, and a text file. Writes on every core; prints how long it took.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = [f"class{c}" for c in range(10)]
BROKEN = ("truncated.jpg", "error-page.png", "empty.jpg")  # image names, unreadable
TEST_EVERY = 10
PNG_EVERY = 5


def _image(rng: np.random.Generator, label: int, width: int, height: int) -> Image.Image:
    hue = np.array([(37 * label) % 256, (91 * label + 60) % 256, (151 * label + 120) % 256])
    angle = rng.uniform(0, np.pi)
    field = (
        np.cos(angle) * np.linspace(0, 1, width, dtype=np.float32)[None, :]
        + np.sin(angle) * np.linspace(0, 1, height, dtype=np.float32)[:, None]
    )
    noise = rng.normal(0, 6, (height, width, 3))
    base = (hue * 0.5 + 64 * field[..., None] + noise).clip(0, 255)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    size = min(width, height)
    for _ in range(3):
        x0, y0 = rng.integers(0, size * 3 // 4, 2)
        extent = rng.integers(size // 8, size // 2)
        colour = tuple(int(v) for v in (hue + rng.integers(-40, 40, 3)).clip(0, 255))
        box = [int(x0), int(y0), int(x0 + extent), int(y0 + extent)]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    return image


def _write(job: tuple[str, int, int, int, int]) -> int:
    out, start, stop, width, height = job
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        label = i % len(CLASSES)
        turn = i // len(CLASSES)  # the i-th image of its class
        split = "test" if turn % TEST_EVERY == 3 else "train"
        folder = Path(out) / split / CLASSES[label]
        folder.mkdir(parents=True, exist_ok=True)
        image = _image(rng, label, width, height)
        if turn % PNG_EVERY == 1:
            image.save(folder / f"{i:07}.png", optimize=False)
        else:
            image.save(folder / f"{i:07}.jpg", quality=90)
    return stop - start


def _broken(out: Path) -> None:
    folder = out / "train" / CLASSES[0]
    good = next(folder.glob("*.jpg"))
    (folder / "truncated.jpg").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (out / "train" / CLASSES[1] / "error-page.png").write_text(
        "<!DOCTYPE html><html><body>503 Service Unavailable</body></html>"
    )
    (out / "train" / CLASSES[2] / "empty.jpg").write_bytes(b"")
    (out / "train" / CLASSES[3] / "notes.txt").write_text("scanned at 300 dpi")


def make_folder(
    out: Path, images: int, size: int, workers: int | None = None, height: int | None = None
) -> None:
    """Write the folder: images `size` wide and `height` (default `size`) high."""
    workers = workers or os.cpu_count() or 1
    step = max(100, min(1000, images // (workers * 8)))
    jobs = [
        (str(out), s, min(s + step, images), size, height or size) for s in range(0, images, step)
    ]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write, jobs))
    _broken(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.make_folder", description=__doc__)
    parser.add_argument("--images", type=int, required=True, help="how many images")
    parser.add_argument("--size", type=int, default=64, help="width of each image, in pixels")
    parser.add_argument("--height", type=int, help="height, if not the width")
    parser.add_argument("--out", type=Path, default=Path("data/synthetic"), help="folder to write")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: choose a new folder")
    start = time.perf_counter()
    make_folder(args.out, args.images, args.size, height=args.height)
    on_disk = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(
        f"{args.images:,} images of {args.size}x{args.height or args.size} in {args.out} "
        f"({on_disk / 1e6:,.0f} MB) in {time.perf_counter() - start:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

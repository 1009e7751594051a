"""The data-quality section on the real MNIST: the near-duplicate search cold (a fresh process)
against a brute-force search, the label model's training per epoch against the tutorial's
DataLoader, and the whole label job (train cross-validated, test judged by the train model):
its time and the accuracy that makes its ranking worth reading."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from bench import REPO
from bench.report import Row, duration, megabytes

__all__ = ["run"]

NEAR_TARGET = 2.0  # seconds, cold, MNIST train + test
ACCURACY_TARGET = 0.99
EPOCH_RATIO_TARGET = 0.9  # streamed from disk: at least this share of the DataLoader's speed
BRUTE_ROWS = 2000  # the brute-force baseline compares this many images with all 70,000

_COLD_NEAR = """
import json, time
start = time.perf_counter()
import datalib
from datalib import quality
splits = [datalib.load("mnist", s, scan_first=False) for s in ("train", "test")]
for stored in splits[0].dataset.results.glob("near-*-groups.json"):
    stored.unlink()  # an earlier search's answer (a page's, a job's): searched again here
opened = time.perf_counter()
found = quality.near_duplicates(splits)
done = time.perf_counter()
print(json.dumps({"search_s": done - opened, "process_s": done - start,
                  "groups": len(found.groups), "across": len(found.across)}))
"""

_BRUTE = """
import json, time
import numpy as np
import datalib
splits = [datalib.load("mnist", s, scan_first=False) for s in ("train", "test")]
hashes = np.concatenate([d.column("phash") for d in splits])
rows = {rows}
start = time.perf_counter()
within = 0
for a in range(0, rows, 500):
    near = np.bitwise_count(hashes[a : a + 500, None] ^ hashes[None, :]) <= 4
    within += int(near.sum())
took = time.perf_counter() - start
print(json.dumps({{"seconds": took, "rows": rows, "all": hashes.size}}))
"""


def _python(code: str, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=REPO, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def near_rows(env: dict) -> list[Row]:
    _python(_COLD_NEAR, env)  # the index exists and numba's compiled search is cached
    cold = _python(_COLD_NEAR, env)
    brute = _python(_BRUTE.format(rows=BRUTE_ROWS), env)
    pairs = brute["all"] * (brute["all"] - 1) / 2
    brute_all = brute["seconds"] * pairs / (brute["rows"] * brute["all"])
    return [
        Row(
            key="near_duplicates_cold",
            work="near duplicates of MNIST train + test (70,000 images; <= 4 bits, <= 0.10 "
            "pixel difference), in a fresh process",
            measured=f"{duration(cold['search_s'])} ({duration(cold['process_s'])} with "
            f"imports); {cold['groups']} groups, {cold['across']} across splits",
            baseline=f"numpy brute force over all pairs: {duration(brute_all)} (timed on "
            f"{BRUTE_ROWS:,} x 70,000 pairs, scaled to all)",
            result=f"{brute_all / cold['search_s']:,.0f}x faster",
            target=f"<= {NEAR_TARGET:.0f} s cold",
            ok=cold["search_s"] <= NEAR_TARGET,
            data={"cold": cold, "brute": brute, "brute_all_s": brute_all},
        )
    ]


_EPOCH = """
import json, time
import numpy as np, torch
torch.set_num_threads({threads})
import datalib
from datalib.quality import labels, model
data = datalib.load("mnist", "train", scan_first=False)
progress = labels.Progress(labels.label_job(data), lambda status: None)
pictures = labels.ensure_pictures(data, progress)
start = time.perf_counter()
model.fit(pictures, np.arange(len(data)), data.labels, 10, epochs=1, seed=0, tick=lambda n: None)
ours = time.perf_counter() - start
import torchvision
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision.transforms import Compose, Normalize, ToTensor
dataset = torchvision.datasets.MNIST(
    data.root, train=True, download=False,
    transform=Compose([ToTensor(), Normalize((pictures.mean[0],), (pictures.std[0],))]))
torch.manual_seed(0)
net = model.network(1, 10)
optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
start = time.perf_counter()
for x, y in DataLoader(dataset, batch_size=128, shuffle=True):
    loss = F.cross_entropy(net(x), y)
    optimiser.zero_grad(); loss.backward(); optimiser.step()
tutorial = time.perf_counter() - start
print(json.dumps({{"ours_s": ours, "tutorial_s": tutorial, "images": len(data)}}))
"""


def epoch_rows(env: dict) -> list[Row]:
    threads = os.cpu_count() or 1
    found = _python(_EPOCH.format(threads=threads), env)
    ratio = found["tutorial_s"] / found["ours_s"]
    return [
        Row(
            key="label_model_epoch",
            work="one training epoch of the label model on MNIST train (60,000 images, "
            "pictures streamed from disk in chunks)",
            measured=f"{duration(found['ours_s'])} ({found['images'] / found['ours_s']:,.0f} "
            "images/s)",
            baseline=f"the same network through torchvision's MNIST DataLoader "
            f"(ToTensor, Normalize, batch 128, shuffled): {duration(found['tutorial_s'])}",
            result=f"{ratio:.2f}x the DataLoader's speed",
            target=f">= {EPOCH_RATIO_TARGET}x",
            ok=ratio >= EPOCH_RATIO_TARGET,
            data=found,
        )
    ]


def job_rows(env: dict) -> list[Row]:
    """Both label jobs from nothing: their wall time and accuracy."""
    rows = []
    for split in ("train", "test"):
        start = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run(
            [sys.executable, "-m", "datalib", "quality", "mnist", "--split", split, "--json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
        )
        wall = time.perf_counter() - start
        # The largest child so far: this job's peak, when it is the largest yet (it is: the
        # earlier children only scan or train one epoch).
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        result = json.loads(out.stdout)
        model = result["model"]
        how = (
            "3-fold cross-validation, then the model on all of train and the 70,000-point map"
            if split == "train"
            else "the model trained on train, kept by the train job"
        )
        rows.append(
            Row(
                key=f"label_job_{split}",
                work=f"the suspicious-labels job on MNIST {split} ({how})",
                measured=f"{duration(wall)}; accuracy {model['accuracy']:.2%} on "
                f"{model['device']}, {len(result['label_issues']):,} ranked, "
                f"{result['flagged']:,} flagged; peak RSS "
                + (megabytes(peak) if peak > before * 1024 else "below an earlier child's"),
                baseline="-",
                result=f"{model['accuracy']:.2%}",
                target=f">= {ACCURACY_TARGET:.0%} accuracy",
                ok=model["accuracy"] >= ACCURACY_TARGET,
                data={
                    "wall_s": wall,
                    "model": model,
                    "flagged": result["flagged"],
                    "peak_rss_bytes": peak if peak > before * 1024 else None,
                },
            )
        )
    return rows


def run(root: str) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as cache:
        env = {**os.environ, "DATALIB_ROOT": root, "BATCHSCOPE_CACHE": cache}
        subprocess.run(
            [sys.executable, "-m", "datalib", "scan", "mnist"],
            check=True,
            capture_output=True,
            cwd=REPO,
            env=env,
        )
        return near_rows(env) + epoch_rows(env) + job_rows(env)

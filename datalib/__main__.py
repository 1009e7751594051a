"""Command line: `python -m datalib download|scan|info|check NAME [--root DIR] ...`."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

from datalib.datasets import download, load, splits_of
from datalib.errors import DatalibError
from datalib.paths import data_root
from datalib.registry import DATASETS, dataset_spec
from datalib.stats import class_counts, pixel_stats


def info(name: str, root: str | None, report=None) -> dict:
    """Everything `info --json` prints: classes, and per split its size, shape and statistics.
    Scans first when the index is missing or out of date."""
    from datalib.scan import scan

    spec = dataset_spec(name)
    scan(spec.name, root, report=report)
    result: dict = {"name": spec.name, "title": spec.title, "root": str(data_root(root))}
    splits = {}
    for split in splits_of(spec.name, root):
        data = load(spec.name, split, root, scan_first=False)
        result["classes"] = list(data.classes)
        splits[split] = {
            "size": len(data),
            "image_shape": list(data.image_shape),
            "class_counts": class_counts(data.labels, len(data.classes)).tolist(),
            "pixel": pixel_stats(data).as_dict(),
        }
        if spec.format.name == "folder":  # its classes, what was skipped, how it was conformed
            splits[split]["classes"] = list(data.classes)
            for key in ("skipped", "sizes", "modes", "conformed"):
                splits[split][key] = data.details[key]
    result["splits"] = splits
    return result


def _print_info(result: dict) -> None:
    print(f"{result['title']} in {result['root']}")
    print(f"classes: {', '.join(result['classes'])}")
    for split, facts in result["splits"].items():
        pixel = facts["pixel"]
        print(
            f"{split}: {facts['size']:,} images of shape {'x'.join(map(str, facts['image_shape']))}, "
            f"pixels after ToTensor in [{pixel['min']:g}, {pixel['max']:g}], "
            f"mean {pixel['mean']:.4f}, std {pixel['std']:.4f}"
        )
        print(f"  class counts: {facts['class_counts']}")
        if "conformed" in facts:
            print(f"  {facts['conformed']}")
            for skipped in facts["skipped"]:
                print(f"  skipped {skipped['path']}: {skipped['reason']}")


def _print_checklist(result) -> None:
    print(
        f"{result.spec.title} {result.split} through {result.loader_text}, {result.transform_text}"
    )
    for check in result.checks:
        print(f"\n{check.verdict.upper():4}  {check.title}: {check.summary}")
        for fact, value in check.evidence_table().itertuples(index=False):
            print(f"      {fact}: {value}")
        if check.fix:
            print("      fix:")
            print("\n".join(f"        {line}" for line in check.fix.splitlines()))
    tally = ", ".join(f"{n} {verdict}" for verdict, n in result.tally().items())
    print(f"\n{tally}. Reproduce in code:\n")
    print(result.code, end="")


def quality(args: argparse.Namespace, report=None) -> dict | None:
    """What `quality --json` prints: the split's model and ranked label issues, its near
    duplicates (within it, and with the other splits) and outliers. Scans first if needed;
    trains the model if no job has yet (or waits for the one running)."""
    from datalib import quality
    from datalib.quality.embedding import draw_map
    from datalib.quality.labels import Progress
    from datalib.quality.near import check_settings
    from datalib.scan import scan

    spec = dataset_spec(args.name)
    check_settings(args.bits, args.difference)
    if args.near_only:  # the pages' background search, of the index they read: none scanned
        names = args.splits.split(",") if args.splits else list(splits_of(spec.name, args.root))
        splits = [load(spec.name, name, args.root, scan_first=False) for name in names]
        job = quality.near_job(splits, args.bits, args.difference)
        job.folder.mkdir(parents=True, exist_ok=True)
        from datalib.formats.download import file_lock

        with file_lock(job.lock):
            progress = Progress(job, lambda status: None)
            progress.stage("comparing images", sum(len(d) for d in splits))
            try:
                quality.near_duplicates(
                    splits,
                    args.bits,
                    args.difference,
                    lambda k, total: progress.tick(k),
                    must_store=True,
                )
            except DatalibError as e:
                progress.fail(str(e))
                raise
            except Exception as e:
                progress.fail(f"The near-duplicate search failed: {e}")
                raise
            progress.state, progress.done = "done", progress.total
            progress.write(force=True, finished=time.time())
        return None
    scan(spec.name, args.root, report=report)
    data = load(spec.name, args.split, args.root, scan_first=False)
    if args.map_only:
        job = quality.map_job(data.dataset)
        job.folder.mkdir(parents=True, exist_ok=True)
        from datalib.formats.download import file_lock

        with file_lock(job.lock):
            progress = Progress(job, lambda status: None)
            draw_map(data.dataset, progress, features=False)
            progress.state, progress.done = "done", progress.total
            progress.write(force=True, finished=time.time())
        return None
    found = quality.find_label_issues(data, _status_line)
    if args.labels_only:
        return None
    splits = [data] + [
        load(spec.name, other, args.root, scan_first=False)
        for other in splits_of(spec.name, args.root)
        if other != args.split
    ]
    groups = quality.near_duplicates(splits, args.bits, args.difference)
    worst = found.worst()
    return {
        "name": spec.name,
        "split": args.split,
        "model": {
            key: found.model[key] for key in ("kind", "folds", "accuracy", "epochs", "device")
        },
        "label_issues": [
            {
                "index": int(row.index),
                "given_label": int(row.given_label),
                "predicted_label": int(row.predicted_label),
                "label_quality": round(float(row.label_quality), 6),
                "flagged": bool(row.flagged),
            }
            for row in worst.itertuples(index=False)
        ],
        "flagged": int(found.table["flagged"].sum()),
        "near_duplicates": [g.as_dict() for g in groups.groups if args.split in g.splits],
        "near_duplicate_settings": {"bits": args.bits, "difference": args.difference},
        "outliers": [o.as_dict() for o in quality.outliers(data)],
    }


_last_status = {"state": "", "at": 0.0}


def _status_line(status: dict) -> None:
    """The label job's progress: a line per stage, and one every few seconds within it."""
    if status["state"] == _last_status["state"] and time.monotonic() - _last_status["at"] < 5:
        return
    _last_status.update(state=status["state"], at=time.monotonic())
    eta = f", about {status['eta_s']:.0f} s left" if status.get("eta_s") else ""
    print(
        f"{status['state']}: {status['done']:,} of {status['total']:,} images, "
        f"{status['images_per_s']:,.0f} images/s{eta}",
        file=sys.stderr,
        flush=True,
    )


def _print_quality(result: dict) -> None:
    model = result["model"]
    print(
        f"{result['name']} {result['split']}: {model['kind']}, accuracy "
        f"{model['accuracy']:.2%} ({model['device']})"
    )
    print(f"{result['flagged']:,} labels flagged by cleanlab; the 10 worst:")
    for issue in result["label_issues"][:10]:
        print(
            f"  #{issue['index']}: labelled {issue['given_label']}, the model says "
            f"{issue['predicted_label']} (label quality {issue['label_quality']:.4f})"
        )
    groups = result["near_duplicates"]
    across = [g for g in groups if len({split for split, _ in g["indices"]}) > 1]
    print(f"{len(groups):,} near-duplicate groups, {len(across):,} of them across splits")
    for group in groups[:10]:
        members = ", ".join(f"{split} #{index}" for split, index in group["indices"])
        print(f"  {members} (labels {group['labels']}, {group['distance']} bits apart)")
    print("outliers, furthest first:")
    for outlier in result["outliers"][:10]:
        print(f"  #{outlier['index']}: {outlier['reason']}")


COMMANDS = {
    "download": "put a dataset's files under the data root (needs internet)",
    "scan": "build or update a dataset's per-sample index (every core; resumes where it stopped)",
    "info": "describe a dataset: sizes, classes, class counts, pixels (scans first if needed)",
    "check": "the data-readiness checklist for a split and DataLoader: pass/warn/fail",
    "quality": "suspicious labels (a model, cleanlab), near duplicates and outliers of a split",
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m datalib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in COMMANDS.items():
        sub = commands.add_parser(command, help=help_text)
        sub.add_argument(
            "name",
            help=f"dataset name: {', '.join(DATASETS)}, one the config file names "
            "(batchscope.toml), or folder:<path under the root>",
        )
        sub.add_argument("--root", help="data root (default: $DATALIB_ROOT, else ./data)")
        if command in ("info", "check", "quality"):
            sub.add_argument("--json", action="store_true", help="print one JSON object")
        if command == "scan":
            sub.add_argument(
                "--workers",
                type=int,
                help="processes (default: every core); with --engine ray, a local Ray's CPUs",
            )
            sub.add_argument(
                "--engine",
                choices=["local", "ray"],
                default="local",
                help="local: a process pool on this machine; ray: Ray Data tasks on a cluster",
            )
            sub.add_argument(
                "--address",
                help="with --engine ray: the cluster's head, host:port (default: $RAY_ADDRESS, "
                "else a Ray started on this machine)",
            )
            sub.add_argument("--download", action="store_true", help="download missing files first")
            sub.add_argument(
                "--nice",
                type=int,
                default=0,
                help="run at this lower priority (the app's background scans use 10)",
            )
        if command == "quality":
            from datalib.quality.near import DEFAULT_BITS, DEFAULT_DIFFERENCE

            sub.add_argument("--split", default="train", help="split to judge: train, test")
            sub.add_argument(
                "--bits",
                type=int,
                default=DEFAULT_BITS,
                help="near duplicates: perceptual hashes at most this many bits apart",
            )
            sub.add_argument(
                "--difference",
                type=float,
                default=DEFAULT_DIFFERENCE,
                help="near duplicates: pixels differing by at most this share (0-1)",
            )
            sub.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
            sub.add_argument("--labels-only", action="store_true", help=argparse.SUPPRESS)
            sub.add_argument("--map-only", action="store_true", help=argparse.SUPPRESS)
            sub.add_argument("--near-only", action="store_true", help=argparse.SUPPRESS)
            sub.add_argument("--splits", help=argparse.SUPPRESS)  # with --near-only: a,b
        if command == "check":
            from datalib.batches import LoaderSettings

            defaults = LoaderSettings()
            sub.add_argument("--split", default="train", help="split the loader reads: train, test")
            sub.add_argument("--batch-size", type=int, default=defaults.batch_size)
            sub.add_argument("--seed", type=int, default=defaults.seed, help="torch.Generator seed")
            sub.add_argument("--no-shuffle", action="store_true", help="shuffle=False")
            sub.add_argument("--drop-last", action="store_true", help="drop_last=True")
            sub.add_argument("--sampler", help="weighted: a WeightedRandomSampler by class")
            sub.add_argument(
                "--transforms",
                default="",
                help="the pipeline after ToTensor, as in the app's URL, e.g. "
                "'RandomHorizontalFlip(p=0.5);Normalize(mean=0.1307,std=0.3081)'",
            )
            sub.add_argument(
                "--draw-seed", type=int, default=0, help="random steps: sample i draws seed + i"
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from datalib.scan import print_progress, scan

    # With --json, stdout holds the JSON alone: what anything else prints (a user's dataset
    # factory, say) goes to stderr.
    out = sys.stdout
    quiet = getattr(args, "json", False)
    with contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext():
        return _run(args, out, print_progress, scan)


def _run(args: argparse.Namespace, out, print_progress, scan) -> int:
    try:
        if args.command == "download":
            folder = download(args.name, args.root)
            print(f"{dataset_spec(args.name).title} is in {folder}")
        elif args.command == "scan":
            if args.nice:
                os.nice(args.nice)  # the workers inherit it
            if args.engine == "ray":
                from datalib.ray_engine import scan_on_ray

                path = scan_on_ray(
                    args.name, args.root, args.address, args.workers, args.download, print_progress
                )
            else:
                path = scan(
                    args.name,
                    args.root,
                    workers=args.workers,
                    download=args.download,
                    report=print_progress,
                )
            print(f"{dataset_spec(args.name).title}: index in {path}")
        elif args.command == "check":
            from datalib.batches import LoaderSettings
            from datalib.checks import checklist
            from datalib.sampling import sampler_name
            from datalib.transforms import parse

            settings = LoaderSettings(  # every input is checked before the scan
                batch_size=args.batch_size,
                shuffle=not args.no_shuffle,
                seed=args.seed,
                drop_last=args.drop_last,
            )
            sampler = sampler_name(args.sampler)
            pipeline = parse(args.transforms, args.draw_seed)
            dataset_spec(args.name)
            scan(args.name, args.root, report=print_progress)
            result = checklist(args.name, args.split, settings, sampler, args.root, pipeline)
            if args.json:
                print(json.dumps(result.as_dict()), file=out)
            else:
                _print_checklist(result)
        elif args.command == "quality":
            if args.nice:
                os.nice(args.nice)
            result = quality(args, report=print_progress)
            if result is None:
                pass
            elif args.json:
                print(json.dumps(result), file=out)
            else:
                _print_quality(result)
        elif args.json:
            print(json.dumps(info(args.name, args.root, report=print_progress)), file=out)
        else:
            _print_info(info(args.name, args.root, report=print_progress))
    except DatalibError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "quality":
            print("\nstopped: nothing half-made was kept; run it again", file=sys.stderr)
        else:
            print("\nstopped: the next scan resumes from the finished shards", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

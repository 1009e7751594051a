"""The scan on a Ray cluster: `python -m datalib scan NAME --engine ray [--address ADDR]`.

The same shard function as the local engine (`scan.scan_shard`: a shard of samples in, its
Parquet file out, written where the local engine writes it), run as Ray Data tasks, one per
shard; the driver finishes the index from the shards as the local engine does, so the table is
the local engine's, row for row. Without an address (nor RAY_ADDRESS) it starts a Ray on this
machine; with one it joins that cluster. Every node must see the data root and the cache
folder at the same paths (a shared file system): checked on every node before any shard runs.

Ray is imported here only, when this engine is asked for: the app and the other commands
never load it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

from datalib.errors import DatalibError, DataRootError, ScanFailed

CONNECT_TIMEOUT_S = 5.0
TASK_RETRIES = 3
# One a CPU on the Ray this command starts (and on nodes started with it, `ray start
# --resources='{"batchscope_slot": CPUS}'`): a shard task holds one while it runs.
SLOT = "batchscope_slot"


class EngineError(DatalibError):
    """The cluster cannot run the scan: nothing answers at its address, or its nodes do not
    see the data root or the cache folder."""


def _reachable(address: str) -> None:
    """One clear line unless a Ray head answers at `address` (host:port): nothing listening,
    or something that does not speak gRPC there (the dashboard's port, a web server)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise EngineError(
            f"{address!r} is not a Ray address: give the head node's host:port, as "
            "`ray start --head` prints it (e.g. 10.0.0.5:6379)."
        )
    try:
        with socket.create_connection(
            (host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S
        ) as s:
            s.settimeout(CONNECT_TIMEOUT_S)
            s.sendall(HTTP2_PREFACE)
            answer = s.recv(9)
    except OSError as e:
        raise EngineError(
            f"Nothing answers at {address} ({e.strerror or e}): start the cluster's head with "
            "`ray start --head`, or give its address with --address or RAY_ADDRESS."
        ) from None
    if len(answer) < 9 or answer[3] != SETTINGS_FRAME:
        raise EngineError(
            f"{address} answers, but not as a Ray cluster's head: give the port "
            "`ray start --head` printed (6379 unless set), not the dashboard's or another "
            "server's."
        )


# A gRPC server (the head's GCS) answers HTTP/2's client preface with a SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_FRAME = 4


def _last_line(error: BaseException) -> str:
    """The line of an error (Ray's run to many, the cause last) a user can read."""
    return (str(error).strip().splitlines() or [type(error).__name__])[-1]


def _code_path() -> str:
    """The folder that holds the datalib package: workers import it from there."""
    return str(Path(__file__).resolve().parents[1])


def connect(address: str | None, workers: int | None) -> str:
    """Join Ray at `address` (or RAY_ADDRESS), else start it on this machine with `workers`
    CPUs (default: every core). Returns the dashboard's URL ("" if none)."""
    import ray

    from datalib.paths import config_env, environment

    # Workers on every node import datalib from the same path as this process, and run one
    # BLAS thread each, as the local engine's workers do (a thread per core each otherwise).
    from datalib.scan import BLAS_THREADS

    env_vars = {
        "PYTHONPATH": _code_path(),
        **dict.fromkeys(BLAS_THREADS, "1"),
        **config_env(),  # your own datasets: the same config file
    }
    options = {"log_to_driver": False, "logging_level": "ERROR"}
    try:
        if address:
            context = ray.init(address=address, runtime_env={"env_vars": env_vars}, **options)
        else:
            # A Ray of our own inherits this environment: the workers it starts at once (one
            # a CPU, while the files are listed) then serve the scan, where a runtime_env
            # would have them started again, after the listing.
            cpus = workers or len(os.sched_getaffinity(0))  # the CPUs this process may use
            with environment(env_vars):
                context = ray.init(
                    num_cpus=cpus, resources={SLOT: cpus}, include_dashboard=False, **options
                )
    except Exception as e:  # noqa: BLE001 - Ray's many ways to refuse, said in one line
        reason = _last_line(e)
        if not address:
            raise EngineError(f"Could not start Ray on this machine: {reason}.") from None
        raise EngineError(
            f"Could not join the Ray cluster at {address}: {reason}. Run the scan on one of the "
            "cluster's nodes (a Ray driver needs a Ray node on its own machine), with the "
            "cluster's token if it has one."
        ) from None
    return getattr(context, "dashboard_url", "") or ""


def _node_view(token_file: str, root: str) -> dict:
    """What one node sees: the token the driver wrote into the cache folder, whether it can
    write there, and a digest of the data root's top-level names."""
    import ray

    seen = {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}
    try:
        seen["token"] = Path(token_file).read_text()
    except OSError as e:
        seen["token"] = f"unreadable: {e.strerror or e}"
    probe = Path(token_file).with_name(f".probe-{secrets.token_hex(4)}")
    try:
        probe.write_text("")
        probe.unlink()
        seen["writable"] = True
    except OSError:
        seen["writable"] = False
    try:
        seen["root"] = _listing_digest(root)
    except OSError as e:
        seen["root"] = f"unreadable: {e.strerror or e}"
    return seen


def _listing_digest(root: str) -> str:
    return hashlib.sha256("\0".join(sorted(os.listdir(root))).encode()).hexdigest()


def check_nodes(root: Path, cache: Path) -> int:
    """Every alive node sees the data root (the same names in it) and the cache folder (reads
    the token written here, and can write); returns the number of nodes. One line otherwise."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token_file = cache / f".ray-token-{secrets.token_hex(6)}"
    token = secrets.token_hex(16)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token)
    except OSError as e:
        raise DataRootError(
            f"Cannot write to the cache folder {cache} ({e.strerror or e}): set BATCHSCOPE_CACHE "
            "to a folder this user can write, on storage every node mounts."
        ) from None
    try:
        view = ray.remote(num_cpus=0)(_node_view)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        seen = ray.get(
            [
                view.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                ).remote(str(token_file), str(root))
                for n in nodes
            ]
        )
    except ray.exceptions.RayError as e:  # a node died, or cannot import datalib
        reason = _last_line(e)
        raise EngineError(
            f"A Ray node could not run the storage check ({reason}): every node needs this "
            f"code at {_code_path()} (the same image) and must stay up."
        ) from None
    finally:
        token_file.unlink(missing_ok=True)
    digest = _listing_digest(str(root))
    for node in seen:
        where = f"Ray node {node['host']} ({node['node'][:8]})"
        if node["root"] != digest:
            raise EngineError(
                f"{where} does not see the data root {root} as this machine does "
                f"({'missing or ' if 'unreadable' in node['root'] else ''}other files): put the "
                "data root on storage every node mounts at the same path."
            )
        if node["token"] != token or not node["writable"]:
            raise EngineError(
                f"{where} does not share the cache folder {cache} with this machine (or cannot "
                "write to it): set BATCHSCOPE_CACHE to a folder on storage every node mounts at "
                "the same path."
            )
    return len(seen)


def _scan_shards(batch: dict) -> dict:
    """Ray Data's map over shard tasks: each one through the local engine's shard function.
    A file the driver listed that this node cannot find fails the scan (its shard removed):
    the node does not see the data. An error the user must read comes back as data (Ray
    would wrap it past recognition): its kind and message."""
    from datalib.scan import scan_shard

    rows, kinds, messages = [], [], []
    for name, root, sources, classes, path in zip(
        batch["name"], batch["root"], batch["sources"], batch["classes"], batch["path"], strict=True
    ):
        try:
            count, table, _ = scan_shard(
                str(name), str(root), list(sources), list(classes), str(path)
            )
            reasons = table.column("reason").to_pylist()
            if GONE in reasons:  # listed by the driver, absent here: this node lacks the data
                Path(str(path)).unlink(missing_ok=True)  # never a shard read as finished
                missing = sources[reasons.index(GONE)]
                raise EngineError(
                    f"Ray node {socket.gethostname()} does not see {missing} under the data root "
                    f"{root}: put the data root on storage every node mounts at the same path."
                )
            rows.append(count)
            kinds.append("")
            messages.append("")
        except DatalibError as e:
            rows.append(0)
            kinds.append("datalib")
            messages.append(str(e))
        except OSError as e:
            rows.append(0)
            kinds.append(f"os:{e.errno or 0}")
            messages.append(f"{e.strerror or e} ({e.filename or path})")
    return {"path": batch["path"], "rows": rows, "kind": kinds, "message": messages}


GONE = "cannot be read: No such file or directory"  # what the readers say of a missing file


def _raise(kind: str, message: str) -> None:
    """The error a shard sent back, as the local engine would raise it."""
    if kind == "os:28":  # ENOSPC
        raise ScanFailed(
            f"A disk is full (no space left on device: {message}): the scan stopped and wrote no "
            "index. Free some space; the next scan resumes from the finished shards."
        )
    if kind.startswith("os:"):
        raise ScanFailed(f"The scan stopped on a Ray node: {message}.")
    raise ScanFailed(message)


class Runner:
    """The scan's runner on Ray (`scan.scan(..., runner=Runner(...))`).

    `start()` runs while the scan lists the files: it starts or joins Ray, checks that every
    node sees the data root and the cache folder, and readies Ray Data. Called with the
    queued shards, it runs each as one Ray Data task, reports each as it ends (the terminal's
    progress), and leaves Ray: the driver finishes the index on its own."""

    def __init__(self, address: str | None, workers: int | None, root: Path, cache: Path):
        self.address, self.workers, self.root, self.cache = address, workers, root, cache
        self.started = False
        self.leaving: threading.Thread | None = None

    def start(self) -> None:
        self.started = True  # from here on, a Ray that came up (even half: Ctrl-C) is stopped
        dashboard = connect(self.address, self.workers)
        nodes = check_nodes(self.root, self.cache)
        where = f"; dashboard at http://{dashboard}" if dashboard else ""
        print(f"ray: {nodes} node{'s' if nodes != 1 else ''}{where}", file=sys.stderr, flush=True)
        import ray.data

        # Ray Data's own notices (progress bars off, a dataset finished) would break the
        # terminal's progress lines: only its errors are shown. (Its import sets its levels.)
        for name in ("ray.data", "ray.data._internal"):
            logging.getLogger(name).setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False

    def stop(self, *, wait: bool = True) -> None:
        """Leave Ray (and stop the one started here), once; in the background unless `wait`
        (stopping a local Ray takes a second or two, the index can be finished meanwhile)."""
        if self.started:
            import ray

            self.started = False
            if ray.is_initialized():
                self.leaving = threading.Thread(target=ray.shutdown, name="ray-shutdown")
                self.leaving.start()
        if wait and self.leaving is not None:
            self.leaving.join()

    def __call__(self, tasks: list[tuple], advance: Callable) -> None:
        try:
            if tasks:
                self._run(tasks, advance)
        except BaseException:
            # A shard's error, Ray's, or Ctrl-C: this job's tasks end with the driver, before
            # the scan clears temp files and releases its lock (the next scan resumes from
            # the finished shards).
            self.stop()
            raise
        self.stop(wait=False)  # every task has ended: Ray leaves while the index is finished

    def _run(self, tasks: list[tuple], advance: Callable) -> None:
        import ray.data

        items = [
            {"name": n, "root": r, "sources": s, "classes": c, "path": p} for n, r, s, c, p in tasks
        ]
        # Two tasks a CPU in Ray Data's count: it sees a task end only at its next look (a
        # tenth of a second), so the next shard's task must be there already. Where the
        # nodes have slots (one a CPU), a task also holds one: the second waits in Ray's
        # queue and starts the moment the first ends, one running a CPU. Without slots, two
        # run a CPU, sharing it.
        slots = {SLOT: 1} if ray.cluster_resources().get(SLOT) else {}
        with warnings.catch_warnings():  # Ray 2.60 names no other way to bound retries
            warnings.simplefilter("ignore", DeprecationWarning)
            shards = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                _scan_shards,
                batch_size=1,
                batch_format="numpy",
                num_cpus=0.5,
                resources=slots,
                # A task whose worker or node died runs again elsewhere, a few times: a shard
                # that kills every worker it runs on (Ray Data's default: forever) ends the scan.
                max_retries=TASK_RETRIES,
            )
        try:
            for row in shards.iter_rows():
                if row["kind"]:
                    _raise(str(row["kind"]), str(row["message"]))
                advance((int(row["rows"]), None, None), str(row["path"]))
        except (DatalibError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - Ray's own failure, after its retries: one line
            reason = _last_line(e)
            raise ScanFailed(f"The scan failed on the Ray cluster: {reason}") from None


def scan_on_ray(
    name: str,
    root: str | None,
    address: str | None,
    workers: int | None,
    download: bool,
    report: Callable,
) -> Path:
    """`scan.scan` with every shard a Ray Data task: on the cluster at `address` (or
    RAY_ADDRESS), else on a Ray started here while the files are listed; the nodes checked
    before any shard runs."""
    from datalib.formats.download import check_root
    from datalib.index import dataset_dir
    from datalib.paths import data_root
    from datalib.registry import dataset_spec
    from datalib.scan import scan

    spec = dataset_spec(name)
    root_path = data_root(root)
    check_root(root_path, create=download and root is None)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        _reachable(address)
    runner = Runner(address, workers, root_path, dataset_dir(spec, root_path))
    try:
        return scan(name, root, download=download, report=report, runner=runner)
    finally:
        runner.stop()

"""The scan on a real two-node Ray cluster started on this machine (`ray start --head` and a
second `ray start --address ...`, one CPU each): the same table as the local engine, a worker
node killed mid-scan, an address where nothing answers. The cluster is stopped afterwards:
only the processes these tests started."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bench.serving import free_port
from datalib.ray_engine import SLOT
from tests.conftest import USER_CONFIG, run_cli, write_folder

RAY = [sys.executable, "-m", "ray.scripts.scripts"]
START = ["--num-cpus=1", "--disable-usage-stats", "--block"]


def ray_env(work: Path) -> dict[str, str]:
    """Token authentication, Ray's default, with a token of this test's own (never the
    user's ~/.ray/auth_token): for the nodes and for every client of the cluster."""
    token = work / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
    return {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def _start(*args: str, log: Path, hide: Path | None = None) -> subprocess.Popen:
    """`ray start ARGS --block`; with `hide`, in a mount namespace of its own where an empty
    file system covers that folder: a node that does not see it."""
    command = [*RAY, "start", *args, *START]
    if hide is not None:
        command = [
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs tmpfs "{hide}" && exec "$@"', "node", *command,
        ]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(
            command,
            env=ray_env(log.parent),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, and only it
        )


def _stop(process: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
            return
        except subprocess.TimeoutExpired:
            continue


def _alive_nodes(address: str, work: Path) -> int:
    code = (
        f"import ray; ray.init(address={address!r}, logging_level='ERROR', log_to_driver=False); "
        "print(sum(n['Alive'] for n in ray.nodes()))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        env=ray_env(work),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return int(answer.stdout.split()[-1]) if answer.returncode == 0 and answer.stdout else 0


class Cluster:
    """A head and one worker node on this machine, one CPU each; with `slots`, each node
    offers one scan slot (the README's recipe: one shard runs a CPU, the next queued)."""

    def __init__(self, work: Path, *, slots: bool = False) -> None:
        self.work = work
        self.node_args = [f'--resources={{"{SLOT}": 1}}'] if slots else []
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # Unix socket paths must stay short: a temp folder of its own under /tmp.
        self.temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
        head_args = [
            "--head",
            f"--port={self.port}",
            "--include-dashboard=false",
            f"--temp-dir={self.temp}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            *self.node_args,
        ]
        self.head = _start(*head_args, log=work / "head.log")
        self.worker: subprocess.Popen | None = None

    def add_worker(self, hide: Path | None = None) -> None:
        args = [
            f"--address={self.address}",
            f"--node-manager-port={free_port()}",
            f"--object-manager-port={free_port()}",
            *self.node_args,
        ]
        self.worker = _start(*args, log=self.work / "worker.log", hide=hide)

    def wait_for(self, nodes: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _alive_nodes(self.address, self.work) == nodes:
                return
            time.sleep(1)
        logs = "\n".join(p.read_text()[-1500:] for p in self.work.glob("*.log"))
        raise RuntimeError(f"the Ray cluster did not reach {nodes} nodes:\n{logs}")

    def stop(self) -> None:
        for process in (self.worker, self.head):
            if process is not None:
                _stop(process)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Nodes with slots; the killed-node test's cluster has none (Ray Data alone paces it)."""
    cluster = Cluster(tmp_path_factory.mktemp("ray"), slots=True)
    try:
        cluster.add_worker()
        cluster.wait_for(2)
        yield cluster
    finally:
        cluster.stop()


def scan_process(
    name: str, root: Path, cache: Path, *args: str, work: Path | None = None
) -> subprocess.Popen:
    env = ray_env(work) if work else {**os.environ}
    return subprocess.Popen(
        [sys.executable, "-m", "datalib", "scan", name, "--root", str(root), *args],
        env={**env, "BATCHSCOPE_CACHE": str(cache)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ray_scan(name: str, root: Path, cache: Path, cluster: Cluster) -> subprocess.Popen:
    """`scan NAME --engine ray` on `cluster`, with its token."""
    return scan_process(
        name, root, cache, "--engine", "ray", "--address", cluster.address, work=cluster.work
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Its exit status and stderr, read as it runs (a full pipe never stalls it); killed if it
    outlives `timeout`."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"still running after {timeout:g} s:\n{err[-2000:]}")
    return process.returncode, err


def index_tables(cache: Path) -> dict[str, object]:
    """Every table of the one index under `cache`, by file name."""
    (index,) = cache.glob("datasets/*/index-*")
    return {p.name: pq.read_table(p) for p in sorted(index.glob("*.parquet"))}


def assert_same_index(local: Path, ray: Path) -> None:
    a, b = index_tables(local), index_tables(ray)
    assert a.keys() == b.keys() and any(name.startswith("samples-") for name in a)
    for name in a:
        assert a[name].equals(b[name]), f"{name} differs"
    # The same index key: the same shards, listing and classes.
    assert [p.name for p in local.glob("datasets/*/index-*")] == [
        p.name for p in ray.glob("datasets/*/index-*")
    ]


def test_the_table_from_a_two_node_cluster_is_the_local_table(cluster, tmp_path):
    root = write_folder(tmp_path / "data", classes=3, per_class=700)
    code, err = finish(scan_process("folder:shapes", root, tmp_path / "local"))
    assert code == 0, err
    ray = ray_scan("folder:shapes", root, tmp_path / "ray", cluster)
    code, err = finish(ray)
    assert code == 0, err
    assert "ray: 2 nodes" in err
    assert_same_index(tmp_path / "local", tmp_path / "ray")


def test_a_config_dataset_on_the_cluster_is_the_local_table(cluster, tiny_root, tmp_path):
    """The cluster's nodes were started without the config: the scan hands its workers the
    file's path, and they read the user's Dataset as the local engine does."""
    scan = [sys.executable, "-m", "datalib", "scan", "tensordigits", "--root", str(tiny_root)]
    config = {"BATCHSCOPE_CONFIG": str(USER_CONFIG)}
    local = subprocess.run(
        scan,
        check=False,
        env={**os.environ, **config, "BATCHSCOPE_CACHE": str(tmp_path / "local")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0, local.stderr
    ray = subprocess.Popen(
        [*scan, "--engine", "ray", "--address", cluster.address],
        env={**ray_env(cluster.work), **config, "BATCHSCOPE_CACHE": str(tmp_path / "ray")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    code, err = finish(ray)
    assert code == 0, err
    assert_same_index(tmp_path / "local", tmp_path / "ray")


def write_photos(root: Path, images: int, side: int = 256) -> Path:
    """`root/photos/<class>/<i>.jpg`: noisy colour JPEGs, slow enough to decode that a scan
    of them lasts a few seconds on two CPUs."""
    rng = np.random.default_rng(1)
    for i in range(images):
        folder = root / "photos" / f"class{i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05}.jpg", quality=95)
    return root


def test_a_worker_node_killed_mid_scan_leaves_a_complete_equal_table(tmp_path):
    root = write_photos(tmp_path / "data", 3000)
    code, err = finish(scan_process("folder:photos", root, tmp_path / "local"))
    assert code == 0, err
    cluster = Cluster(tmp_path)
    try:
        cluster.add_worker()
        cluster.wait_for(2)
        scan = ray_scan("folder:photos", root, tmp_path / "ray", cluster)
        shards = tmp_path / "ray"
        deadline = time.monotonic() + 120
        # Mid-scan: the first shard is written, the scan still runs.
        while not list(shards.glob("datasets/*/shards/*.parquet")):
            assert scan.poll() is None, finish(scan)[1]
            if time.monotonic() > deadline:
                scan.kill()
                pytest.fail("no shard written within 2 minutes")
            time.sleep(0.05)
        written = len(list(shards.glob("datasets/*/shards/*.parquet")))
        assert scan.poll() is None, "the scan ended before the worker node could be killed"
        _stop(cluster.worker)  # the node's raylet and its workers, mid-task
        code, err = finish(scan)
        assert code == 0, err
        total = len(list(shards.glob("datasets/*/shards/*.parquet")))
        assert written < total  # shards were still to come when the node died
    finally:
        cluster.stop()
    assert_same_index(tmp_path / "local", tmp_path / "ray")


def _ray_processes() -> set[int]:
    """Ray's own processes on this machine (GCS, raylets), whoever started them."""
    found = subprocess.run(
        ["pgrep", "-f", "gcs_server|raylet/raylet"], capture_output=True, text=True, check=False
    )
    return {int(pid) for pid in found.stdout.split()}


def test_without_an_address_the_scan_starts_its_own_ray_and_stops_it(tmp_path):
    """No cluster: a Ray of the command's own, started while the files are listed, with a
    scan slot a CPU; the same table as the local engine; nothing of it left running."""
    root = write_folder(tmp_path / "data", classes=2, per_class=300)
    code, err = finish(scan_process("folder:shapes", root, tmp_path / "local"))
    assert code == 0, err
    before = _ray_processes()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    ray = subprocess.run(
        [sys.executable, "-m", "datalib", "scan", "folder:shapes", "--root", str(root)]
        + ["--engine", "ray", "--workers", "2"],
        env={**env, "BATCHSCOPE_CACHE": str(tmp_path / "ray")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ray.returncode == 0, ray.stderr
    assert "ray: 1 node" in ray.stderr
    assert_same_index(tmp_path / "local", tmp_path / "ray")
    assert _ray_processes() <= before, "the command's Ray still runs"


def test_an_address_where_nothing_answers_is_refused_in_one_line(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHSCOPE_CACHE", str(tmp_path / "cache"))
    result = run_cli(
        "scan",
        "mnist",
        "--root",
        tiny_root,
        "--engine",
        "ray",
        "--address",
        f"127.0.0.1:{free_port()}",
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: Nothing answers at 127.0.0.1:")
    assert "ray start --head" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "cache").exists()  # nothing written: no table, partial or whole


@pytest.mark.parametrize("hidden", ["data root", "cache folder"])
def test_a_node_that_does_not_see_the_storage_is_named_in_one_line(hidden, tiny_root, tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("hiding a folder from one node needs root and unshare")
    cache = tmp_path / "cache"
    cache.mkdir()
    cluster = Cluster(tmp_path)
    try:
        cluster.add_worker(hide=tiny_root if hidden == "data root" else cache)
        cluster.wait_for(2)
        scan = ray_scan("mnist", tiny_root, cache, cluster)
        code, err = finish(scan, timeout=120)
        result = subprocess.CompletedProcess(scan.args, code, "", err)
    finally:
        cluster.stop()
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: Ray node ")
    assert f"does not {'see the data root' if hidden == 'data root' else 'share the cache'}" in (
        result.stderr
    )
    assert not list(cache.glob("**/index-*")) and not list(cache.glob("**/*.parquet"))


def test_an_address_that_is_not_a_ray_head_is_refused_in_one_line(tiny_root, tmp_path, monkeypatch):
    """The dashboard's port, a web server: something answers, but not Ray's GCS."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_like_a_web_server() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=answer_like_a_web_server, daemon=True).start()
    monkeypatch.setenv("BATCHSCOPE_CACHE", str(tmp_path / "cache"))
    started = time.monotonic()
    result = run_cli(
        "scan", "mnist", "--root", tiny_root, "--engine", "ray", "--address", f"127.0.0.1:{port}"
    )
    listener.close()
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert result.stderr == (
        f"error: 127.0.0.1:{port} answers, but not as a Ray cluster's head: give the port "
        "`ray start --head` printed (6379 unless set), not the dashboard's or another "
        "server's.\n"
    )
    assert not (tmp_path / "cache").exists()


def test_a_shard_whose_files_this_node_lacks_fails_and_leaves_no_shard(tmp_path):
    """What a Ray task does on a node that misses part of the data root."""
    from datalib.ray_engine import _scan_shards

    root = write_folder(tmp_path / "data", classes=1, per_class=3)
    (root / "shapes" / "class0" / "0001.png").unlink()  # listed by the driver, gone here
    shard = tmp_path / "shard.parquet"
    sources = [f"shapes/class0/{i:04}.png" for i in range(3)]
    out = _scan_shards(
        {
            "name": ["folder:shapes"],
            "root": [str(root)],
            "sources": [sources],
            "classes": [["class0"] * 3],
            "path": [str(shard)],
        }
    )
    assert out["kind"] == ["datalib"] and out["rows"] == [0]
    assert "does not see shapes/class0/0001.png under the data root" in out["message"][0]
    assert not shard.exists()


def test_the_other_commands_never_import_ray(tiny_root, tmp_path):
    code = (
        "import sys; from datalib.__main__ import main; "
        f"assert main(['info', 'mnist', '--root', {str(tiny_root)!r}]) == 0; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    answer = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "BATCHSCOPE_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr

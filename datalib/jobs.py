"""Long work in the background, once per server: a scan, a model's training.

A job is a `python -m datalib ...` process started in its own session, so a page's rerun or
a Ctrl-C to the server does not stop it. It holds a lock file while it runs (so any process,
another server or the command line, sees it running and never starts a second) and writes
how far it is to a status file that every session reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from datalib.paths import config_env

__all__ = ["Job", "JobState", "atomic_write", "clear_temp"]

TEMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class JobState:
    """What a page shows of a job: is it running, how far it is, and why it stopped."""

    running: bool
    state: str
    done: int
    total: int
    images_per_s: float
    eta_s: float | None
    error: str | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


_processes: dict[str, subprocess.Popen] = {}
_processes_lock = threading.Lock()


@dataclass(frozen=True)
class Job:
    """One kind of work on one folder: `<name>.lock` while it runs, its status and its log."""

    folder: Path
    name: str
    status_file: str = ""  # default `<name>.json`

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.name}.lock"

    @property
    def status_path(self) -> Path:
        return self.folder / (self.status_file or f"{self.name}.json")

    @property
    def log(self) -> Path:
        return self.folder / f"{self.name}.log"

    def held(self) -> bool:
        """Does some process (this server, another, the command line) run this job now?"""
        if not self.lock.exists():
            return False
        with open(self.lock, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
        return False

    def start(self, args: list[str]) -> bool:
        """Run `python -m datalib *args` in the background unless this job runs already
        (started by anyone). Returns whether it was started now."""
        key = str(self.lock)
        with _processes_lock:
            process = _processes.get(key)
            if process is not None and process.poll() is None:
                return False
            if self.held():
                return False
            self.folder.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **config_env()}  # the job runs elsewhere: the same file
            with open(self.log, "ab") as log:
                _processes[key] = subprocess.Popen(
                    [sys.executable, "-m", "datalib", *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=Path(__file__).resolve().parents[1],
                    env=env,
                    start_new_session=True,  # a page's rerun or the server's Ctrl-C: it goes on
                )
        return True

    def read_status(self) -> dict:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def write_status(self, **status) -> None:
        """Replace the status file whole (a reader never sees half of it)."""
        status = {"pid": os.getpid(), "updated": time.time(), **status}
        with contextlib.suppress(OSError):  # a status not written costs a stale progress bar
            atomic_write(self.status_path, lambda temp: temp.write_text(json.dumps(status)))

    def state(self) -> JobState:
        """How the job is going, as its status file says; a process of ours that died without
        a word is reported with its log's last line."""
        status = self.read_status()
        with _processes_lock:
            process = _processes.get(str(self.lock))
            ours = process is not None and process.poll() is None
        running = ours or self.held()
        error = status.get("error") if status.get("state") in ("failed", "stopped") else None
        if not running and error is None and process is not None and process.returncode:
            with contextlib.suppress(OSError):
                tail = self.log.read_text().strip().splitlines()[-1:]
                error = tail[0].removeprefix("error: ") if tail else None
            error = error or f"The {self.name} job stopped (exit code {process.returncode})."
        return JobState(
            running=running,
            state=status.get("state", "starting") if running or status else "not started",
            done=int(status.get("done", 0)),
            total=int(status.get("total", 0)),
            images_per_s=float(status.get("images_per_s", 0.0)),
            eta_s=status.get("eta_s"),
            error=error,
        )


def atomic_write(path: Path, write) -> None:
    """`write(temp)` to a temp file beside `path`, then rename it over `path`: a reader sees
    the old file or the new one, never half of one; a failed write leaves nothing behind."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temp))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def clear_temp(folder: Path, older_than: float = 0.0) -> None:
    """Remove the temp files a killed writer left in `folder` (those `older_than` seconds
    old: another job's may still be in use)."""
    now = time.time()
    for path in folder.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime >= older_than:
                path.unlink()

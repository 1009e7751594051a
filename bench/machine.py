"""What the figures were measured on: cores, torch threads, versions, load on the machine; and
what one process has used (CPU time, resident memory), read from /proc."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata

import torch

__all__ = ["describe", "load_average", "process_cpu_seconds", "process_rss_bytes"]


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far, seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def machine_cpu_seconds() -> float:
    """CPU time this machine's cores have spent busy since boot (user, nice, system, irq,
    softirq; not idle, I/O wait or time stolen by the hypervisor), seconds."""
    with open("/proc/stat") as stat:
        user, nice, system, _, _, irq, softirq = map(int, stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: other work on the machine skews timings."""
    return [round(x, 2) for x in os.getloadavg()]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict:
    """The machine and software the run used, with a one-line summary for the table."""
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    facts = {
        "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": cores,
        "cores_usable": usable,
        "memory_gib": round(_memory_gib(), 1),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "python": platform.python_version(),
        "versions": {
            name: _version(name)
            for name in ("torch", "torchvision", "streamlit", "numpy", "plotly")
        },
        "load_average_at_start": load_average(),
    }
    facts["summary"] = (
        f"{usable} cores ({facts['cpu']}), {facts['memory_gib']:g} GiB, "
        f"torch {facts['versions']['torch']} with {facts['torch_threads']} threads, "
        f"Python {facts['python']}"
    )
    return facts

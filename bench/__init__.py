"""Batchscope's benchmarks: `python -m bench` times every hot path against its baseline."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

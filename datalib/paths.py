"""Paths a user can influence, kept inside the data root."""

from __future__ import annotations

import os
from pathlib import Path

from datalib.errors import InvalidRequest

__all__ = ["inside_root"]


def inside_root(root: Path, relative: str) -> Path:
    """`root / relative`, resolved (symlinks followed), refused unless it stays inside `root`.

    Refuses NUL bytes, absolute paths, `..` parts and links that lead out of the root, each
    with a message that says what was wrong.
    """
    if "\x00" in relative:
        raise InvalidRequest("The path contains a NUL byte. Use a plain folder name.")
    if not relative.strip():
        raise InvalidRequest("The path is empty. Name a folder inside the data root.")
    if os.path.isabs(relative) or relative.startswith("~"):
        raise InvalidRequest(
            f"{relative!r} is an absolute path. Name a folder relative to the data root {root}."
        )
    if ".." in Path(relative).parts:
        raise InvalidRequest(f"{relative!r} climbs out with '..'. Name a folder inside {root}.")
    base = root.resolve()
    resolved = (base / relative).resolve()
    if not resolved.is_relative_to(base):
        raise InvalidRequest(
            f"{relative!r} leads outside the data root {root} (through a symbolic link). "
            "Copy the data into the data root instead of linking to it."
        )
    return resolved

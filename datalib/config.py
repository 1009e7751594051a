"""Your own datasets, named in a config file: `$BATCHSCOPE_CONFIG`, else `./batchscope.toml`.

    [datasets.mydigits]
    title = "My digits"                    # optional; else the name
    classes = ["zero", "one"]              # optional; else the dataset's `classes`
    [datasets.mydigits.splits.train]
    factory = "mypkg.data:make_dataset"    # returns a map-style torch Dataset of (image, label)
    kwargs = { split = "train" }

The file is the only place code is named: a dataset's factory is imported (by its format,
datalib.formats.torch) when the dataset is listed or read, never while the file is read, and
never for a name the file does not hold. The file's folder is put on the import path, so a
package beside it imports as is.

What is wrong is said once, naming the dataset, the file and the line: a file that does not
parse leaves only the built-in datasets, an entry that is wrong leaves the others working.
tomllib gives no line numbers for values, so lines are found in the text (`_Lines`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from datalib.errors import ConfigError, UnknownDataset
from datalib.paths import CONFIG_ENV, config_path
from datalib.registry import DATASETS, FOLDER_PREFIX, TORCH, DatasetSpec

__all__ = ["Config", "ConfigEntry", "SplitEntry", "parse_config", "read_config"]

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SPLIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
FACTORY = re.compile(rf"{_DOTTED}:{_DOTTED}")
ENTRY_KEYS = ("title", "description", "classes", "splits")
SPLIT_KEYS = ("factory", "kwargs")
KEPT = 4  # parsed files kept (by path, modification time and size)


@dataclass(frozen=True)
class SplitEntry:
    """One split of a config dataset: the factory that makes it, its keyword arguments, and
    the line that names the factory."""

    name: str
    factory: str
    kwargs: dict = field(compare=False)
    line: int
    key: str  # the factory and its kwargs as text: what a change of either changes

    @property
    def module(self) -> str:
        return self.factory.split(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.factory.split(":", 1)[1]


@dataclass(frozen=True)
class ConfigEntry:
    """A dataset as the config file names it."""

    name: str
    path: Path
    line: int  # its [datasets.NAME] table's
    splits: tuple[SplitEntry, ...]
    classes: tuple[str, ...] | None
    classes_line: int

    def split(self, name: str) -> SplitEntry:
        for entry in self.splits:
            if entry.name == name:
                return entry
        names = ", ".join(entry.name for entry in self.splits)
        raise UnknownDataset(f"{self.name} has no split {name!r}. Choose one of: {names}.")

    def where(self, line: int | None = None) -> str:
        """How a message starts: `name (/path/batchscope.toml, line 7)`."""
        return f"{self.name} ({self.path}, line {line or self.line})"


@dataclass(frozen=True)
class Config:
    """What the config file holds: the datasets it names well, why the others cannot be used
    (by name), and why the file itself cannot be read, if it cannot."""

    path: Path
    specs: dict[str, DatasetSpec] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    problem: str | None = None
    notes: tuple[str, ...] = ()  # what no dataset's name reaches: a table out of place
    headers: dict[str, int] = field(default_factory=dict)  # dataset tables in the text
    parse_error: tuple[int, str] | None = None  # where the text stops being TOML, and why

    def summary(self) -> str | None:
        """Everything wrong with the file, in a few sentences, or None."""
        if self.problem:
            return self.problem
        return " ".join([*self.notes, *self.problems.values()]) or None

    def unknown(self, name: str) -> ConfigError | None:
        """The error for a name the file would hold if it parsed, else None."""
        if self.parse_error is None or name not in self.headers:
            return None
        line, reason = self.parse_error
        return ConfigError(
            f"{name} ({self.path}, line {line}): the config file is not valid TOML ({reason}). "
            "Fix it: until then none of its datasets can be opened (the built-in ones still can)."
        )


_parsed: OrderedDict[tuple, Config] = OrderedDict()
_parsed_lock = threading.Lock()


def read_config() -> Config:
    """The config file, parsed once per version (path, modification time, size); its folder
    goes on the import path. No file at the default path is no config; a file named by
    BATCHSCOPE_CONFIG that is not there is a problem."""
    path = config_path()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV):
            return Config(
                path,
                problem=f"{CONFIG_ENV} names {path}, which does not exist: write the file "
                f"there, or point {CONFIG_ENV} at it.",
            )
        return Config(path)
    except OSError as e:
        return Config(path, problem=f"The config file {path} cannot be read ({e.strerror}).")
    key = (str(path), info.st_mtime_ns, info.st_size)
    with _parsed_lock:
        if key in _parsed:
            _parsed.move_to_end(key)
            return _parsed[key]
    folder = str(path.parent)
    if folder not in sys.path:
        # Appended, not put first: a module of the user's never hides one of Batchscope's.
        sys.path.append(folder)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "it is not UTF-8 text"
        config = Config(path, problem=f"The config file {path} cannot be read ({reason}).")
    else:
        config = parse_config(text, path)
    with _parsed_lock:
        _parsed[key] = config
        while len(_parsed) > KEPT:
            _parsed.popitem(last=False)
    return config


def parse_config(text: str, path: Path) -> Config:
    """The datasets `text` (the file at `path`) names, and what is wrong with it."""
    lines = _Lines(text)
    headers = lines.datasets()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        reason = re.sub(r"\s*\(at .*\)$", "", message)
        if found:
            reason += f", column {found.group(2)}"
        inside = lines.dataset_at(line)
        where = f"{inside} ({path}, line {line})" if inside else f"{path}, line {line}"
        return Config(
            path,
            problem=f"{where}: the config file is not valid TOML ({reason}). Fix it: until "
            "then none of its datasets can be opened (the built-in ones still can).",
            headers=headers,
            parse_error=(line, reason),
        )
    notes = [
        f"{path}, line {lines.of(key)}: unknown table or key {key!r}: the file holds only "
        "[datasets.NAME] tables."
        for key in data
        if key != "datasets"
    ]
    tables = data.get("datasets", {})
    if not isinstance(tables, dict):
        notes.append(f"{path}, line {lines.of('datasets')}: `datasets` must be a table.")
        tables = {}
    specs: dict[str, DatasetSpec] = {}
    problems: dict[str, str] = {}
    titles = {spec.title: spec.name for spec in DATASETS.values()}
    for name, value in tables.items():
        try:
            spec = _spec(name, value, path, lines, titles)
        except ConfigError as e:
            problems[name] = str(e)
            continue
        specs[name] = spec
        titles[spec.title] = name
    return Config(path, specs, problems, None, tuple(notes), headers)


def _spec(name: str, value: object, path: Path, lines: _Lines, titles: dict) -> DatasetSpec:
    """One [datasets.NAME] table as a dataset, or ConfigError saying what to change."""

    def fail(message: str, *keys: str) -> ConfigError:
        return ConfigError(f"{name} ({path}, line {lines.of('datasets', name, *keys)}): {message}")

    if name.startswith(FOLDER_PREFIX):
        raise fail(
            f"a name in the config cannot start with {FOLDER_PREFIX!r}, which names an image "
            "folder under the data root: rename the table."
        )
    if not NAME.fullmatch(name):
        raise fail(
            "a dataset's name is lowercase letters, digits, '-' and '_' (at most 64; it goes "
            "in links and commands): rename the table."
        )
    if name in DATASETS:
        raise fail(f"{name!r} is a built-in dataset's name: give yours another name.")
    if not isinstance(value, dict):
        raise fail(f"[datasets.{name}] must be a table, with a `splits` table in it.")
    for key in value:
        if key not in ENTRY_KEYS:
            raise fail(
                f"unknown key {key!r}: a dataset takes {', '.join(ENTRY_KEYS)}.",
                key,
            )
    title = value.get("title", name)
    if not isinstance(title, str) or not title.strip():
        raise fail("`title` must be a non-empty string.", "title")
    if title in titles:
        raise fail(
            f"the title {title!r} is {titles[title]}'s already: the sidebar and links name a "
            "dataset by its title, so give it another.",
            "title",
        )
    description = value.get("description", "")
    if not isinstance(description, str):
        raise fail("`description` must be a string.", "description")
    classes = value.get("classes")
    if classes is not None:
        if not (
            isinstance(classes, list)
            and classes
            and all(isinstance(c, str) and c.strip() for c in classes)
        ):
            raise fail("`classes` must be a list of class names (non-empty strings).", "classes")
        if len(set(classes)) != len(classes):
            raise fail("`classes` names a class twice: each name once.", "classes")
    splits = value.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise fail(
            f"no splits: add a [datasets.{name}.splits.train] table (and .test) with a "
            '`factory = "package.module:function"`.',
            "splits",
        )
    entries = tuple(
        _split(split, table, fail, lines.of("datasets", name, "splits", split, "factory"))
        for split, table in splits.items()
    )
    entry = ConfigEntry(
        name=name,
        path=path,
        line=lines.of("datasets", name),
        splits=entries,
        classes=tuple(classes) if classes is not None else None,
        classes_line=lines.of("datasets", name, "classes"),
    )
    return DatasetSpec(
        name=name,
        title=title,
        description=description
        or f"Your own Dataset: {entries[0].factory}(...) per split, named in {path}.",
        source=f"{path}, line {entry.line}",
        format=TORCH,
        config=entry,
    )


def _split(split: str, table: object, fail, line: int) -> SplitEntry:
    keys = ("splits", split)
    if not SPLIT.fullmatch(split):
        raise fail(
            f"the split name {split!r} is not letters, digits, '-' and '_' (at most 32): "
            "rename it (train and test are the usual two).",
            *keys,
        )
    if not isinstance(table, dict):
        raise fail(f"split {split!r} must be a table with a `factory`.", *keys)
    for key in table:
        if key not in SPLIT_KEYS:
            raise fail(
                f"unknown key {key!r} in split {split!r}: a split takes factory and kwargs.",
                *keys,
                key,
            )
    factory = table.get("factory")
    if not isinstance(factory, str) or not FACTORY.fullmatch(factory.strip()):
        raise fail(
            f'split {split!r} needs `factory = "package.module:function"` (a module, a colon, '
            f"and the function or class in it that returns the Dataset); it has {factory!r}.",
            *keys,
            "factory",
        )
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise fail(
            f'the `kwargs` of split {split!r} must be a table: kwargs = {{ split = "{split}" }}.',
            *keys,
            "kwargs",
        )
    dated = [name for name, value in _values(kwargs) if not isinstance(value, _PLAIN)]
    if dated:
        raise fail(
            f"the `kwargs` of split {split!r} hold a date or time ({dated[0]}): give strings, "
            "numbers, booleans, lists and tables only (a date as a string).",
            *keys,
            "kwargs",
        )
    key = json.dumps([factory.strip(), kwargs], sort_keys=True)
    return SplitEntry(split, factory.strip(), kwargs, line, key)


_PLAIN = (str, int, float, bool)


def _values(value: object, name: str = "kwargs"):
    """Every leaf value of a TOML value, with its dotted name."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _values(item, f"{name}.{key}")
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _values(item, f"{name}[{position}]")
    else:
        yield name, value


# Tables and keys in the text -------------------------------------------------------------

_HEADER = re.compile(r"\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?")
_KEY = re.compile(
    r"((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)"
    r"\s*="
)
_PART = re.compile(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)")


def _parts(text: str) -> tuple[str, ...]:
    return tuple(a or b or c for a, b, c in _PART.findall(text))


class _Lines:
    """Where each table header and key first appears in the file's text, by its dotted path
    (`("datasets", "mydigits", "splits", "train", "factory")`). A line in a multi-line string
    that looks like a key may be taken for one; the first appearance wins."""

    def __init__(self, text: str) -> None:
        self.found: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            header = _HEADER.fullmatch(stripped)
            if header:
                table = _parts(header.group(1))
                self.found.setdefault(table, number)
                continue
            key = _KEY.match(stripped)
            if key:
                self.found.setdefault(table + _parts(key.group(1)), number)

    def of(self, *path: str) -> int:
        """The line of `path`; else of the first thing under it; else of its parent's."""
        while path:
            if path in self.found:
                return self.found[path]
            below = [n for p, n in self.found.items() if p[: len(path)] == path]
            if below:
                return min(below)
            path = path[:-1]
        return 1

    def dataset_at(self, line: int) -> str | None:
        """The dataset whose table holds `line`, if one does."""
        before = [(n, p) for p, n in self.found.items() if n <= line]
        if not before:
            return None
        _, path = max(before)
        return path[1] if len(path) >= 2 and path[0] == "datasets" else None

    def datasets(self) -> dict[str, int]:
        """The dataset names the text has tables or keys for, and their first lines."""
        names: dict[str, int] = {}
        for path, number in sorted(self.found.items(), key=lambda item: item[1]):
            if len(path) >= 2 and path[0] == "datasets":
                names.setdefault(path[1], number)
        return names

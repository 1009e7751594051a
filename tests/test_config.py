"""Your own Dataset, named in batchscope.toml: the command line and every page on it, the code
the pages show (run, and compared with the batches they show), every kind of sample, and
each way a config can be wrong, said in one message naming the dataset, the file and the line
while MNIST and the config's other datasets go on working.

The datasets (tests/userdata, described in tests/conftest.py): `pildigits` and
`tensordigits`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import datalib
import datalib.transforms
import ui
from datalib import checks, scan, snippets
from datalib.registry import TORCH
from tests.conftest import (
    USERDATA,
    line_of,
    open_page,
    plain,
    run_cli,
)

BUILT_IN = ["mnist", "fashionmnist", "kmnist", "cifar10"]
MNIST_INFO_KEYS = ["name", "title", "root", "classes", "splits"]
SPLIT_INFO_KEYS = ["size", "image_shape", "class_counts", "pixel"]


def info(name: str, root: Path) -> dict:
    result = run_cli("info", name, "--root", root, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_line_error(*args) -> str:
    """The message of a command that must fail: exit 1, one line on stderr, nothing on
    stdout (progress lines aside)."""
    result = run_cli(*args)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0].removeprefix("error: ")


def link_name(name: str) -> str:
    """How the sidebar's link names a dataset: by its title (ui._url_form)."""
    return datalib.dataset_spec(name).title


# The datasets as the command line sees them --------------------------------------------------


def test_the_config_names_its_datasets_after_the_built_in_ones(user_config):
    assert datalib.dataset_names() == [*BUILT_IN, "pildigits", "tensordigits"]
    assert datalib.config_problem() is None
    spec = datalib.dataset_spec("TensorDigits")  # names are case-insensitive, as built-in ones
    assert (spec.name, spec.title) == ("tensordigits", "Tensor digits")
    assert spec.description == "Four shapes drawn as float tensors, for the tests."
    assert datalib.splits_of("pildigits", USERDATA) == ("train", "test")


def test_no_config_file_is_no_config(tmp_path, monkeypatch):
    monkeypatch.delenv("BATCHSCOPE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert datalib.dataset_names() == BUILT_IN
    assert datalib.config_problem() is None
    with pytest.raises(datalib.UnknownDataset, match="Unknown dataset 'pildigits'"):
        datalib.dataset_spec("pildigits")


def test_info_json_has_mnists_keys_and_the_known_answers(user_config, tiny_root):
    mnist = info("mnist", tiny_root)
    digits = info("pildigits", tiny_root)
    assert list(digits) == list(mnist) == MNIST_INFO_KEYS
    assert digits["classes"] == ["zero", "one", "two"]  # from the config
    train, test = digits["splits"]["train"], digits["splits"]["test"]
    assert list(train) == list(test) == list(mnist["splits"]["train"]) == SPLIT_INFO_KEYS
    assert (train["size"], train["image_shape"], train["class_counts"]) == (
        48,
        [3, 16, 16],
        [16] * 3,
    )
    assert (test["size"], test["image_shape"], test["class_counts"]) == (12, [1, 16, 16], [4] * 3)
    tensors = info("tensordigits", tiny_root)
    assert tensors["title"] == "Tensor digits"
    assert tensors["classes"] == ["circle", "square", "cross", "dot"]  # the dataset's own
    assert tensors["splits"]["train"]["class_counts"] == [10] * 4
    assert tensors["splits"]["test"]["image_shape"] == [3, 12, 12]


def test_the_index_says_what_was_conformed(user_config, tiny_root):
    data = datalib.load("pildigits", "train", tiny_root)
    assert data.details["modes"] == {"L": 47, "RGBA": 1}
    assert "1 of 48 images resized from other sizes to 16x16" in data.details["conformed"]
    assert "47 greyscale images converted to RGB" in data.details["conformed"]
    assert data.sources([0, 47]) == ["train:0", "train:47"]


def test_check_runs_on_both(user_config, tiny_root):
    for name in ("pildigits", "tensordigits"):
        result = run_cli("check", name, "--root", tiny_root, "--json")
        assert result.returncode == 0, result.stderr
        verdicts = {n: c["verdict"] for n, c in json.loads(result.stdout)["checks"].items()}
        assert verdicts["balanced"] == "pass" and verdicts["numerical"] == "pass"


def test_scan_workers_import_the_users_package(user_config, tiny_root, tmp_path, monkeypatch):
    """Worker processes (spawned: nothing of this process's imports) make the dataset
    themselves, from the config; the index equals the one read in this process."""
    monkeypatch.setattr(scan, "IN_PROCESS_BELOW", 8)
    monkeypatch.setenv("BATCHSCOPE_CACHE", str(tmp_path / "pool"))
    pooled = datalib.load("tensordigits", "train", tiny_root, workers=2)
    monkeypatch.setattr(scan, "IN_PROCESS_BELOW", 1 << 20)
    monkeypatch.setenv("BATCHSCOPE_CACHE", str(tmp_path / "here"))
    here = datalib.load("tensordigits", "train", tiny_root)
    for column in ("content_hash", "sum_c0", "label"):
        assert pooled.column(column).tolist() == here.column(column).tolist()


def test_the_apps_background_scan_finds_the_config_from_any_folder(tiny_root, monkeypatch):
    """The default ./batchscope.toml, read from the folder the server started in: the scan
    process the app starts runs elsewhere, and is told where the file is."""
    monkeypatch.delenv("BATCHSCOPE_CONFIG", raising=False)
    monkeypatch.chdir(USERDATA)
    assert datalib.dataset_names()[-2:] == ["pildigits", "tensordigits"]
    datalib.start_scan("pildigits", tiny_root)
    deadline = time.monotonic() + 60
    while datalib.scan_state("pildigits", tiny_root).running and time.monotonic() < deadline:
        time.sleep(0.2)
    state = datalib.scan_state("pildigits", tiny_root)
    assert state.error is None and state.state == "done"
    assert len(datalib.opened("pildigits", "test", tiny_root)) == 12


# The code the pages show ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pildigits", "tensordigits"])
@pytest.mark.parametrize(
    "pipeline",
    ["", "RandomResizedCrop(size=10);RandomHorizontalFlip(p=0.5);Normalize(mean=0.5,std=0.25)"],
)
def test_the_shown_code_gives_the_pages_batches(user_config, tiny_root, name, pipeline):
    """The checklist's code, run as shown: every batch its loader yields equals the batch the
    pages show, image for image (through the pipeline, with its draws), and its epoch's
    counts are the ones printed."""
    settings = datalib.LoaderSettings(batch_size=7, shuffle=True, seed=3)
    data = datalib.load(name, "train", tiny_root)
    pipeline = datalib.transforms.parse(pipeline, seed=5)
    result = checks.checklist(name, "train", settings, None, tiny_root, pipeline)
    namespace: dict = {}
    exec(compile(result.code, "<checklist code>", "exec"), namespace)  # noqa: S102 - the test
    loader = namespace["loader"]
    loader.generator.manual_seed(settings.seed)  # the code ran one epoch: its first again
    shown = list(loader)
    assert len(shown) == settings.num_batches(len(data))
    for index, (images, labels) in enumerate(shown):
        expected = datalib.batch(data, settings, index, pipeline)
        assert torch.equal(images, expected.images), index
        assert torch.equal(labels, expected.labels), index
    assert namespace["dataset"].classes == list(data.classes)
    assert namespace["dataset"].targets == data.labels.tolist()


def test_the_split_fix_builds_both_splits(user_config, tiny_root):
    train = datalib.load("pildigits", "train", tiny_root)
    namespace: dict = {}
    exec(compile(snippets.split_fix(train, 0, 0), "<split fix>", "exec"), namespace)  # noqa: S102
    assert (len(namespace["train_set"]), len(namespace["test_set"])) == (48, 12)


KINDS = [
    "pil L",
    "pil RGBA",
    "pil P",
    "pil I;16",
    "tensor uint8 CHW",
    "tensor uint8 HWC",
    "tensor uint8 HW",
    "tensor float32 CHW",
    "tensor float64 HW",
    "tensor uint8 2HW",
    "tensor uint8 4HW",
    "array uint8 HWC",
    "array uint8 CHW",
    "array uint8 HW",
    "array float32 HWC",
]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_sample_reads_as_the_shown_code_reads_it(kind, write_config, tiny_root):
    """Each kind of image (and labels as ints, numpy ints and 0-d tensors): the index's
    images, through ToTensor, equal what the shown dataset gives, sample for sample."""
    write_config(
        "[datasets.kinds.splits.train]\n"
        'factory = "userdigits.kinds:samples"\n'
        f"kwargs = {{ kind = {json.dumps(kind)} }}\n"
    )
    data = datalib.load("kinds", "train", tiny_root)
    channels = 1 if kind.split()[-1] in ("HW", "2HW", "L", "I;16") else 3
    assert data.image_shape == (channels, 10, 12)
    assert data.labels.tolist() == [0, 1, 2, 1, 0, 1]
    code = "\n".join(TORCH.dataset_code(data.spec, tiny_root, "train", data.image_shape))
    namespace: dict = {}
    exec(  # noqa: S102 - running the shown code is the test
        "from torchvision import transforms\ntransform = transforms.ToTensor()\n" + code,
        namespace,
    )
    dataset = namespace["dataset"]
    assert len(dataset) == 6
    for i in range(6):
        image, label = dataset[i]
        expected = torch.from_numpy(data.images([i])[0]).float().div(255)
        assert torch.equal(image, expected), i
        assert label == data.labels[i]


def test_a_sample_that_fails_stops_the_scan_with_its_index(write_config, tiny_root):
    """Skipping it would shift every later index against the user's DataLoader: refused."""
    path = write_config(
        '[datasets.flaky]\nclasses = ["zero", "one", "two"]\n'
        "[datasets.flaky.splits.train]\n"
        'factory = "userdigits.broken:flaky"\nkwargs = { split = "test" }\n'
    )
    with pytest.raises(datalib.ConfigError) as raised:
        datalib.load("flaky", "train", tiny_root)
    assert str(raised.value).startswith(f"flaky ({path}, line 4): dataset[5] raised OSError")
    assert "A DataLoader over this dataset raises there too" in str(raised.value)


def test_a_changed_entry_or_module_is_scanned_again(write_config, tiny_root):
    path = write_config(
        "[datasets.again.splits.train]\n"
        'factory = "userdigits.data:TensorDigits"\nkwargs = { train = false }\n'
    )
    first = TORCH.listing(datalib.dataset_spec("again"), tiny_root, "train").base
    path.write_text(path.read_text().replace("train = false", "train = false, dtype = 'uint8'"))
    second = TORCH.listing(datalib.dataset_spec("again"), tiny_root, "train").base
    assert first != second
    module = USERDATA / "userdigits" / "data.py"
    stamp = module.stat()
    os.utime(module, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))
    try:
        third = TORCH.listing(datalib.dataset_spec("again"), tiny_root, "train").base
    finally:
        os.utime(module, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert third != second


# Every page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ui.PAGES, ids=lambda page: Path(page.file).stem)
@pytest.mark.parametrize(
    ("name", "caption"),
    [("pildigits", "pildigits train: 48 images"), ("tensordigits", "Tensor digits train: 40")],
)
def test_every_page_renders_on_a_config_dataset(
    user_config, tiny_root, monkeypatch, name, caption, page
):
    app = open_page(tiny_root, monkeypatch, Path(page.file).stem, dataset=link_name(name))
    assert not app.error, [e.value for e in app.error]
    assert plain(app.sidebar.caption[0].value).startswith(caption)


# A config that is wrong ----------------------------------------------------------------------


def assert_mnist_still_works(root: Path) -> None:
    assert info("mnist", root)["splits"]["train"]["size"] == 12


def test_a_file_that_does_not_parse(write_config, tiny_root, monkeypatch):
    path = write_config(
        '[datasets.mydigits]\ntitle = "My digits"\n'
        "[datasets.mydigits.splits.train]\n"
        'factory = "userdigits.data:pil_digits"\n'
        'kwargs = { split = "train" \n'
    )
    assert datalib.dataset_names() == BUILT_IN
    problem = datalib.config_problem()
    assert problem.startswith(f"mydigits ({path}, line 5): the config file is not valid TOML (")
    message = one_line_error("info", "mydigits", "--root", tiny_root)
    assert message.startswith(f"mydigits ({path}, line 5): the config file is not valid TOML")
    assert_mnist_still_works(tiny_root)
    app = open_page(tiny_root, monkeypatch, "overview")  # MNIST's pages work as before
    assert not app.error


# Each bad entry beside a good one: the config text, the text of the line the message names,
# and what the message says.
BAD = {
    "unknown module": (
        'factory = "nosuchpkg.data:make"',
        'factory = "nosuchpkg.data:make"',
        "there is no module 'nosuchpkg.data' to import. Put its package beside batchscope.toml",
    ),
    "unknown attribute": (
        'factory = "userdigits.data:make_digits"',
        "make_digits",
        "userdigits.data has no 'make_digits'. Check the name after the colon",
    ),
    "factory raises": (
        'factory = "userdigits.broken:raises"\nkwargs = { split = "valid" }',
        "broken:raises",
        "raised FileNotFoundError: no data for split 'valid' in /nowhere. Fix the factory",
    ),
    "not a dataset": (
        'factory = "userdigits.broken:not_a_dataset"',
        "not_a_dataset",
        "returned a generator, not a map-style Dataset",
    ),
    "unsupported sample": (
        'factory = "userdigits.broken:strings"',
        "strings",
        "dataset[0]: the image is a builtins.str: give a PIL image, a uint8 numpy array",
    ),
    "normalized floats": (
        'factory = "userdigits.broken:normalized"',
        "normalized",
        "outside [0, 1]. Batchscope reads images before any normalization: remove Normalize",
    ),
    "float labels": (
        'factory = "userdigits.broken:float_labels"',
        "float_labels",
        "dataset[0]: the label is 0.0 (float): give an int class index",
    ),
    "label outside the classes": (
        (
            'classes = ["zero", "one"]\n[datasets.mydigits.splits.train]\n'
            'factory = "userdigits.data:pil_digits"\nkwargs = { split = "train" }'
        ),
        "classes =",
        "dataset[2] has label 2, outside the classes 0 to 1 (2 named); 16 samples have such",
    ),
    "targets of another length": (
        'factory = "userdigits.broken:short_targets"\nkwargs = { split = "test" }',
        "short_targets",
        "the dataset's `targets` holds 11 labels but len(dataset) is 12: make them agree",
    ),
    "random transforms": (
        'factory = "userdigits.broken:augmented"\nkwargs = { split = "test" }',
        "augmented",
        "dataset[0] gives other pixels each time it is read (a random transform?)",
    ),
    "targets that raise": (
        'factory = "userdigits.broken:lazy_targets"',
        "lazy_targets",
        "reading the dataset's `targets` raised RuntimeError: targets are computed lazily",
    ),
    "empty images": (
        'factory = "userdigits.broken:empty_images"',
        "empty_images",
        "dataset[0]: the image is empty (shape (1, 0, 4))",
    ),
    "IndexError below len": (
        'factory = "userdigits.broken:overstated"',
        "overstated",
        "dataset[9] raised IndexError (list index out of range) though len(dataset) is 10",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_entry_says_so_once_and_the_rest_works(case, write_config, tiny_root):
    entry, line_text, said = BAD[case]
    if not entry.startswith("classes"):
        entry = "[datasets.mydigits.splits.train]\n" + entry
    path = write_config(
        "# A dataset that works, then one that does not.\n"
        "[datasets.good.splits.train]\n"
        'factory = "userdigits.data:TensorDigits"\n\n'
        f'[datasets.mydigits]\ntitle = "My digits"\n{entry}\n'
    )
    assert datalib.dataset_names() == [*BUILT_IN, "good", "mydigits"]  # fails when it is read
    message = one_line_error("info", "mydigits", "--root", tiny_root)
    assert message.startswith(f"mydigits ({path}, line {line_of(path, line_text)}): "), message
    assert said in message
    assert info("good", tiny_root)["splits"]["train"]["size"] == 40
    assert_mnist_still_works(tiny_root)


def test_a_bad_entry_shows_on_the_page(write_config, tiny_root, monkeypatch):
    """The page opens the dataset, its background scan fails, and the page says why."""
    path = write_config('[datasets.mydigits.splits.train]\nfactory = "nosuchpkg.data:make"\n')
    app = open_page(tiny_root, monkeypatch, "overview", dataset="mydigits")
    shown = [plain(e.value) for e in app.error]
    assert shown and shown[0].startswith(f"mydigits ({path}, line 2): there is no module")
    mnist = open_page(tiny_root, monkeypatch, "overview")
    assert not mnist.error


# Entries the file names wrongly: the text, the line's text, and what is said. None of them
# is offered; `config_problem` names each, and asking for one by name says the same.
WRONG = {
    "a built-in name": (
        '[datasets.mnist.splits.train]\nfactory = "userdigits.data:pil_digits"',
        "[datasets.mnist",
        "mnist",
        "'mnist' is a built-in dataset's name: give yours another name.",
    ),
    "a folder: name": (
        '[datasets."folder:x".splits.train]\nfactory = "userdigits.data:pil_digits"',
        "folder:x",
        "folder:x",
        "a name in the config cannot start with 'folder:'",
    ),
    "no factory": (
        "[datasets.mydigits.splits.train]\nkwargs = { split = 'train' }",
        "[datasets.mydigits.splits.train]",
        "mydigits",
        "split 'train' needs `factory = \"package.module:function\"`",
    ),
    "a factory without a colon": (
        '[datasets.mydigits.splits.train]\nfactory = "userdigits.data.pil_digits"',
        "userdigits.data.pil_digits",
        "mydigits",
        "it has 'userdigits.data.pil_digits'",
    ),
    "a misspelt key": (
        (
            '[datasets.mydigits]\ntitel = "My digits"\n'
            '[datasets.mydigits.splits.train]\nfactory = "userdigits.data:pil_digits"'
        ),
        "titel",
        "mydigits",
        "unknown key 'titel': a dataset takes title, description, classes, splits.",
    ),
    "a taken title": (
        (
            '[datasets.mydigits]\ntitle = "MNIST"\n'
            '[datasets.mydigits.splits.train]\nfactory = "userdigits.data:pil_digits"'
        ),
        "title",
        "mydigits",
        "the title 'MNIST' is mnist's already",
    ),
    "no splits": (
        '[datasets.mydigits]\ntitle = "Mine"',
        "[datasets.mydigits]",
        "mydigits",
        "no splits",
    ),
}


@pytest.mark.parametrize("case", list(WRONG))
def test_a_wrong_entry_is_not_offered_and_says_why(case, write_config, tiny_root):
    text, line_text, name, said = WRONG[case]
    path = write_config(
        f'[datasets.good.splits.train]\nfactory = "userdigits.data:TensorDigits"\n\n{text}\n'
    )
    assert datalib.dataset_names() == [*BUILT_IN, "good"]
    problem = datalib.config_problem()
    start = f"{name} ({path}, line {line_of(path, line_text)}): "
    assert problem.startswith(start) and said in problem, problem
    if name not in ("mnist", "folder:x"):  # those names are the built-in's and a folder's
        assert one_line_error("info", name, "--root", tiny_root) == problem
    assert info("good", tiny_root)["splits"]["train"]["size"] == 40
    assert_mnist_still_works(tiny_root)


def test_a_config_file_that_is_not_there(tmp_path, monkeypatch, tiny_root):
    missing = tmp_path / "nowhere" / "batchscope.toml"
    monkeypatch.setenv("BATCHSCOPE_CONFIG", str(missing))
    assert datalib.dataset_names() == BUILT_IN
    assert datalib.config_problem() == (
        f"BATCHSCOPE_CONFIG names {missing}, which does not exist: write the file there, or "
        "point BATCHSCOPE_CONFIG at it."
    )
    assert_mnist_still_works(tiny_root)


def test_a_name_from_a_link_never_imports(write_config, monkeypatch):
    """Only the config's own text names code: a link's dataset name that it does not hold
    is an unknown dataset, whatever it looks like."""
    write_config('[datasets.good.splits.train]\nfactory = "userdigits.data:TensorDigits"\n')
    datalib.dataset_names()
    before = set(sys.modules)
    for name in ("os:system", "userdigits.kinds:samples", "userdigits.kinds", "good:x", "../x"):
        with pytest.raises(datalib.UnknownDataset):
            datalib.dataset_spec(name)
    assert set(sys.modules) == before


def test_numbers_are_the_classes_when_nothing_names_them(write_config, tiny_root):
    write_config(
        "[datasets.fake.splits.train]\n"
        'factory = "torchvision.datasets:FakeData"\n'
        "kwargs = { size = 30, image_size = [3, 8, 8], num_classes = 3 }\n"
    )
    found = info("fake", tiny_root)
    assert found["classes"] == ["0", "1", "2"]
    assert sum(found["splits"]["train"]["class_counts"]) == 30
    assert np.asarray(found["splits"]["train"]["image_shape"]).tolist() == [3, 8, 8]


def test_json_holds_only_the_json_whatever_the_factory_prints(write_config, tiny_root):
    write_config(
        '[datasets.chatty]\nclasses = ["zero", "one", "two"]\n'
        '[datasets.chatty.splits.train]\nfactory = "userdigits.broken:chatty"\n'
        'kwargs = { split = "test" }\n'
    )
    result = run_cli("info", "chatty", "--root", tiny_root, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["train"]["size"] == 12
    assert "loading my dataset..." in result.stderr


def test_an_edited_entry_is_never_read_through_the_old_index(write_config, tiny_root):
    """The pages open no index made under another entry: they start a scan and wait for it."""
    entry = (
        '[datasets.mine.splits.train]\nfactory = "userdigits.data:TensorDigits"\n'
        "kwargs = {{ train = {train} }}\n"
    )
    write_config(entry.format(train="true"))
    assert len(datalib.load("mine", "train", tiny_root)) == 40
    time.sleep(0.01)
    write_config(entry.format(train="false"))  # now test's 16 images under the name train
    assert datalib.opened("mine", "train", tiny_root) is None  # and a scan started
    deadline = time.monotonic() + 120
    while (data := datalib.opened("mine", "train", tiny_root)) is None:
        assert time.monotonic() < deadline, datalib.scan_state("mine", tiny_root)
        time.sleep(0.3)
    assert len(data) == 16


def test_an_index_made_before_identities_is_scanned_once_not_forever(
    write_config, tiny_root, monkeypatch
):
    """An index from a Batchscope that stored no identity: one scan makes one that does."""
    write_config(
        '[datasets.mine.splits.train]\nfactory = "userdigits.data:TensorDigits"\n'
        "kwargs = { train = true }\n"
    )
    with monkeypatch.context() as old:
        old.setattr(type(TORCH), "identity", lambda self, spec: "")
        datalib.load("mine", "train", tiny_root)
    assert datalib.opened("mine", "train", tiny_root) is None  # not trusted: a scan starts
    datalib.load("mine", "train", tiny_root)  # (or the background one) makes the new index
    assert len(datalib.opened("mine", "train", tiny_root)) == 40


def test_a_torchvision_class_named_in_the_config_is_that_dataset(write_config, real_root):
    """torchvision's MNIST class over the real files, named in the config: the same split as
    the built-in MNIST, image for image."""
    write_config(
        '[datasets.tvmnist]\ntitle = "MNIST via torchvision"\n'
        '[datasets.tvmnist.splits.test]\nfactory = "torchvision.datasets:MNIST"\n'
        f'kwargs = {{ root = "{real_root}", train = false }}\n'
    )
    mine = datalib.load("tvmnist", "test", real_root)
    builtin = datalib.load("mnist", "test", real_root)
    assert len(mine) == 10_000 and mine.classes == builtin.classes
    assert np.array_equal(mine.labels, builtin.labels)
    picked = [0, 1234, 9999]
    assert np.array_equal(mine.images(picked), builtin.images(picked))
    assert datalib.pixel_stats(mine).as_dict() == datalib.pixel_stats(builtin).as_dict()

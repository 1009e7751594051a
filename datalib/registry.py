"""The datasets Batchscope knows: one entry each, naming the format object that reads it;
then the user's own, named in the config file (datalib.config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datalib.errors import UnknownDataset
from datalib.formats import Format
from datalib.formats.cifar import CifarFormat
from datalib.formats.folder import FolderFormat
from datalib.formats.idx import IdxFormat
from datalib.formats.torch import TorchFormat

if TYPE_CHECKING:
    from datalib.config import ConfigEntry

__all__ = [
    "DATASETS",
    "FOLDER_PREFIX",
    "DatasetSpec",
    "config_problem",
    "dataset_names",
    "dataset_spec",
]

FOLDER_PREFIX = "folder:"  # `folder:<path under the data root>`: a user's own image folder
IDX, CIFAR, FOLDER, TORCH = IdxFormat(), CifarFormat(), FolderFormat(), TorchFormat()


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset: how it is described to a user, and the format object that reads it."""

    name: str
    title: str
    description: str
    source: str
    format: Format
    torchvision_class: str = ""
    # Class names where the format does not store them (the MNIST family; a test checks them
    # against torchvision's).
    classes: tuple[str, ...] = ()
    config: ConfigEntry | None = None  # a dataset the config file names: its entry there

    def dataset_class(self) -> type:
        """The torchvision dataset class (imported lazily: torchvision is slow to import)."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        torchvision_class="MNIST",
        format=IDX,
        description=(
            "Handwritten digits 0-9, centred in 28x28 greyscale images, "
            "written by Census Bureau staff and high-school students."
        ),
        source="LeCun, Cortes and Burges, http://yann.lecun.com/exdb/mnist/",
        classes=tuple(
            f"{digit} - {word}"
            for digit, word in enumerate(
                ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
            )
        ),
    ),
    "fashionmnist": DatasetSpec(
        name="fashionmnist",
        title="FashionMNIST",
        torchvision_class="FashionMNIST",
        format=IDX,
        description=(
            "Zalando's article images in 10 classes of clothing, shoes and bags, 28x28 "
            "greyscale: a drop-in replacement for MNIST that is harder to get right."
        ),
        source="Xiao, Rasul and Vollgraf, https://github.com/zalandoresearch/fashion-mnist",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="KMNIST",
        torchvision_class="KMNIST",
        format=IDX,
        description=(
            "Kuzushiji-MNIST: 10 hiragana characters in cursive Kuzushiji script, from "
            "classical Japanese books, 28x28 greyscale."
        ),
        source="Clanuwat et al., https://github.com/rois-codh/kmnist",
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        torchvision_class="CIFAR10",
        format=CIFAR,
        description=(
            "Small colour photographs, 32x32 RGB, of 10 classes: airplanes, cars, birds, "
            "cats, deer, dogs, frogs, horses, ships and trucks."
        ),
        source="Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html",
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry for `name` (case-insensitive), a `folder:<path>` spec, a dataset the
    config file names, or `UnknownDataset` (`ConfigError` for one the file names wrongly)."""
    if str(name).startswith(FOLDER_PREFIX) and name.removeprefix(FOLDER_PREFIX).strip():
        return DatasetSpec(
            name=name,
            title=name,
            torchvision_class="ImageFolder",
            format=FOLDER,
            description=(
                "Your own images, one folder per class (split folders optional), read with "
                "torchvision's ImageFolder conventions and brought to one shape."
            ),
            source=f"{name.removeprefix(FOLDER_PREFIX)} under the data root",
        )
    key = str(name).strip().lower()
    spec = DATASETS.get(key)
    if spec is not None:
        return spec
    from datalib.config import read_config
    from datalib.errors import ConfigError

    config = read_config()
    if key in config.specs:
        return config.specs[key]
    if key in config.problems:
        raise ConfigError(config.problems[key])
    unparsed = config.unknown(key)
    if unparsed is not None:
        raise unparsed
    known = ", ".join(sorted(DATASETS) + list(config.specs))
    raise UnknownDataset(
        f"Unknown dataset {name!r}. Choose one of: {known}, or folder:<path> for a folder "
        "of images under the data root."
        + (f" (The config file has a problem: {config.summary()})" if config.summary() else "")
    )


def dataset_names() -> list[str]:
    """The datasets to offer: the built-in ones, then those the config file names (in its
    order; an entry with a problem is left out, and `config_problem` says why)."""
    from datalib.config import read_config

    return list(DATASETS) + list(read_config().specs)


def config_problem() -> str | None:
    """What is wrong with the config file, naming each dataset, the file and the line: the
    file cannot be read or parsed, or entries in it cannot be used. None when all is well
    (or there is no file)."""
    from datalib.config import read_config

    return read_config().summary()

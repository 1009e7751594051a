"""The datasets Batchscope knows: one entry each, naming the format object that reads it."""

from __future__ import annotations

from dataclasses import dataclass

from datalib.errors import UnknownDataset
from datalib.formats import Format
from datalib.formats.cifar import CifarFormat
from datalib.formats.folder import FolderFormat
from datalib.formats.idx import IdxFormat

__all__ = ["DATASETS", "FOLDER_PREFIX", "DatasetSpec", "dataset_spec"]

FOLDER_PREFIX = "folder:"  # `folder:<path under the data root>`: a user's own image folder
IDX, CIFAR, FOLDER = IdxFormat(), CifarFormat(), FolderFormat()


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
    """The registry entry for `name` (case-insensitive), a `folder:<path>` spec, or
    `UnknownDataset`."""
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
    spec = DATASETS.get(str(name).strip().lower())
    if spec is None:
        known = ", ".join(sorted(DATASETS))
        raise UnknownDataset(
            f"Unknown dataset {name!r}. Choose one of: {known}, or folder:<path> for a folder "
            "of images under the data root."
        )
    return spec

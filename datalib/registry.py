"""The datasets Batchscope knows, and how each one loads."""

from __future__ import annotations

import os
from dataclasses import dataclass

from datalib.errors import UnknownDataset

__all__ = ["DATASETS", "SPLITS", "DatasetSpec", "check_split", "dataset_spec"]

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """How one torchvision dataset family is found on disk and described to a user."""

    name: str
    title: str
    torchvision_class: str
    description: str
    source: str

    @property
    def folder(self) -> str:
        """Folder under the data root, as torchvision lays it out (`<root>/MNIST/raw`)."""
        return self.torchvision_class

    def dataset_class(self) -> type:
        """The torchvision dataset class (imported lazily: torchvision is slow to import)."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)

    def raw_files(self) -> list[str]:
        """Uncompressed file names torchvision reads from `<root>/<folder>/raw`."""
        # FashionMNIST lists whole URLs here, MNIST bare names: keep the file name only.
        return [
            os.path.basename(url).removesuffix(".gz") for url, _ in self.dataset_class().resources
        ]


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        title="MNIST",
        torchvision_class="MNIST",
        description=(
            "Handwritten digits 0-9, centred in 28x28 greyscale images, "
            "written by Census Bureau staff and high-school students."
        ),
        source="LeCun, Cortes and Burges, http://yann.lecun.com/exdb/mnist/",
    ),
    "fashionmnist": DatasetSpec(
        name="fashionmnist",
        title="FashionMNIST",
        torchvision_class="FashionMNIST",
        description=(
            "Zalando's article images in 10 classes of clothing, shoes and bags, 28x28 "
            "greyscale: a drop-in replacement for MNIST that is harder to get right."
        ),
        source="Xiao, Rasul and Vollgraf, https://github.com/zalandoresearch/fashion-mnist",
    ),
    "kmnist": DatasetSpec(
        name="kmnist",
        title="KMNIST",
        torchvision_class="KMNIST",
        description=(
            "Kuzushiji-MNIST: 10 hiragana characters in cursive Kuzushiji script, from "
            "classical Japanese books, 28x28 greyscale."
        ),
        source="Clanuwat et al., https://github.com/rois-codh/kmnist",
    ),
}


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry for `name` (case-insensitive), or `UnknownDataset`."""
    spec = DATASETS.get(str(name).strip().lower())
    if spec is None:
        known = ", ".join(sorted(DATASETS))
        raise UnknownDataset(f"Unknown dataset {name!r}. Choose one of: {known}.")
    return spec


def check_split(split: str) -> str:
    """`split` if it is one of `SPLITS`, else `UnknownDataset` naming the choices."""
    if split not in SPLITS:
        raise UnknownDataset(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")
    return split

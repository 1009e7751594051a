"""The datasets Batchscope knows, and how each one loads."""

from __future__ import annotations

from dataclasses import dataclass

from datalib.errors import UnknownDataset

__all__ = ["DATASETS", "FOLDER_PREFIX", "SPLITS", "DatasetSpec", "check_split", "dataset_spec"]

# The MNIST family's four IDX files: every member names them alike.
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FOLDER_PREFIX = "folder:"  # `folder:<path under the data root>`: a user's own image folder

SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """How one torchvision dataset family is found on disk and described to a user.

    `file_format` says how its files are read: "idx" (the MNIST family: headers checked and
    data read by datalib.idx), "pickle" (CIFAR: read by torchvision, which checks its md5s)
    or "folder" (a user's image folder, read by datalib.folders).
    """

    name: str
    title: str
    torchvision_class: str
    description: str
    source: str
    file_format: str = "idx"
    # The class names as torchvision gives them ("idx" only, so loading needs no torchvision;
    # a test checks them against torchvision's).
    classes: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        """The dataset's folder under the data root, where torchvision looks for its files."""
        if self.file_format == "pickle":
            return self.dataset_class().base_folder  # cifar-10-batches-py
        if self.file_format == "folder":
            return self.name.removeprefix(FOLDER_PREFIX)
        return f"{self.torchvision_class}/raw"

    def dataset_class(self) -> type:
        """The torchvision dataset class (imported lazily: torchvision is slow to import)."""
        import torchvision.datasets

        return getattr(torchvision.datasets, self.torchvision_class)

    def raw_files(self) -> list[str]:
        """The dataset's file names in its folder, as torchvision names them."""
        if self.file_format == "idx":
            return list(IDX_FILES)
        cls = self.dataset_class()
        if self.file_format == "pickle":
            return [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
        raise ValueError(f"{self.name} is a folder of images: it has no fixed file names")


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
        description=(
            "Small colour photographs, 32x32 RGB, of 10 classes: airplanes, cars, birds, "
            "cats, deer, dogs, frogs, horses, ships and trucks."
        ),
        source="Krizhevsky, https://www.cs.toronto.edu/~kriz/cifar.html",
        file_format="pickle",
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
            description=(
                "Your own images, one folder per class (split folders optional), read with "
                "torchvision's ImageFolder conventions and brought to one shape."
            ),
            source=f"{name.removeprefix(FOLDER_PREFIX)} under the data root",
            file_format="folder",
        )
    spec = DATASETS.get(str(name).strip().lower())
    if spec is None:
        known = ", ".join(sorted(DATASETS))
        raise UnknownDataset(
            f"Unknown dataset {name!r}. Choose one of: {known}, or folder:<path> for a folder "
            "of images under the data root."
        )
    return spec


def check_split(split: str) -> str:
    """`split` if it is one of `SPLITS`, else `UnknownDataset` naming the choices."""
    if split not in SPLITS:
        raise UnknownDataset(f"Unknown split {split!r}. Choose one of: {', '.join(SPLITS)}.")
    return split

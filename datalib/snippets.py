"""The code Batchscope shows: Python (and shell) a user can run as shown to rebuild a loader,
normalize it, weight it, drop duplicates or set aside what ImageFolder cannot read."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

from datalib.batches import LoaderSettings
from datalib.index import SplitData
from datalib.registry import DatasetSpec
from datalib.sampling import sampler_name
from datalib.stats import PixelStats
from datalib.transforms import EMPTY, Pipeline

__all__ = [
    "batch_code",
    "loadable_fix",
    "loader_code",
    "normalize_line",
    "reproduce_code",
    "split_fix",
    "weights_fix",
]


def normalize_line(stats: Sequence[PixelStats]) -> str:
    """The `transforms.Normalize(mean, std)` line for these per-channel statistics."""
    return (
        f"transforms.Normalize({_tuple_text(s.mean for s in stats)}, "
        f"{_tuple_text(s.std for s in stats)})"
    )


SEEDED_DRAWS = [
    "class SeededDraws(torch.utils.data.Dataset):",
    '    """Sample i\'s random transforms drawn from torch.manual_seed(seed + i), as Batchscope',
    '    draws them: the same in every epoch, batch and worker."""',
    "",
    "    def __init__(self, dataset, transform, seed):",
    "        self.dataset, self.transform, self.seed = dataset, transform, seed",
    "        self.classes, self.targets = dataset.classes, dataset.targets",
    "",
    "    def __len__(self):",
    "        return len(self.dataset)",
    "",
    "    def __getitem__(self, i):",
    "        image, label = self.dataset[i]",
    "        with torch.random.fork_rng(devices=[]):",
    "            torch.manual_seed(self.seed + i)",
    "            return self.transform(image), label",
    "",
]


def loader_code(
    spec: DatasetSpec,
    root: Path,
    split: str,
    settings: LoaderSettings,
    sampler: str | None,
    image_shape: tuple[int, int, int],
    pipeline: Pipeline = EMPTY,
    normalize: str = "",
) -> list[str]:
    """Python lines that build this dataset, its transform (ToTensor, then the pipeline) and
    its DataLoader (and sampler), named `dataset` and `loader`."""
    s = settings
    sampler = sampler_name(sampler)
    lines = [
        "import torch",
        f"from torch.utils.data import DataLoader{', WeightedRandomSampler' if sampler else ''}",
        "from torchvision import datasets, transforms",
        *(["from torchvision.transforms import v2"] if pipeline else []),
        "",
        *(SEEDED_DRAWS if pipeline.random else []),
    ]
    steps = spec.format.transform_steps(image_shape)
    lines += [
        "transform = transforms.Compose([",
        *(
            f"    {step.replace('  #', ',  #', 1) if '  #' in step else step + ','}"
            for step in steps
        ),
        "    transforms.ToTensor(),  # uint8 0-255 -> float32 0-1",
        # The normalized check's fix, where no pipeline follows (its own fix says where).
        *(
            [f"    # {normalize},  # the normalized check's fix"]
            if normalize and not pipeline
            else []
        ),
        *([] if pipeline.random else [f"    {line}" for line in pipeline.code_lines()]),
        "])",
    ]
    if pipeline.random:
        lines += [
            f"augment = v2.Compose([  # the random steps' draws: seed {pipeline.seed} + index",
            *(f"    {line}" for line in pipeline.code_lines()),
            "])",
        ]
    lines += spec.format.dataset_code(spec, root, split, image_shape)
    if pipeline.random:
        lines.append(f"dataset = SeededDraws(dataset, augment, seed={pipeline.seed})")
    if sampler:
        lines += [
            "targets = torch.as_tensor(dataset.targets)",
            "class_counts = torch.bincount(targets, minlength=len(dataset.classes))",
            (
                "class_weights = len(dataset) / (len(dataset.classes) * "
                "class_counts.clamp(min=1).double())"
            ),
            "sampler = WeightedRandomSampler(",
            "    class_weights[targets],  # one weight per sample: its class's weight",
            "    num_samples=len(dataset),",
            "    replacement=True,",
            f"    generator=torch.Generator().manual_seed({s.seed}),",
            ")",
            "loader = DataLoader(",
            f"    dataset, batch_size={s.batch_size}, sampler=sampler, drop_last={s.drop_last}",
            ")",
        ]
    elif s.shuffle:
        lines += [
            "loader = DataLoader(",
            "    dataset,",
            f"    batch_size={s.batch_size},",
            "    shuffle=True,",
            f"    drop_last={s.drop_last},",
            f"    generator=torch.Generator().manual_seed({s.seed}),",
            ")",
        ]
    else:
        lines += [
            "loader = DataLoader(",
            f"    dataset, batch_size={s.batch_size}, shuffle=False, drop_last={s.drop_last}",
            ")",
        ]
    return lines


def reproduce_code(
    spec: DatasetSpec,
    root: Path,
    split: str,
    settings: LoaderSettings,
    sampler: str | None,
    normalize: str,
    image_shape: tuple[int, int, int],
    pipeline: Pipeline = EMPTY,
) -> str:
    """Python that builds this dataset, transform and DataLoader (and sampler), then counts one
    epoch's labels: runnable as shown."""
    lines = loader_code(
        spec, root, split, settings, sampler, image_shape, pipeline, normalize=normalize
    )
    lines += [
        "",
        "# One epoch's class counts, as the balanced check shows them for this loader.",
        "counts = torch.zeros(len(dataset.classes), dtype=torch.int64)",
        "for images, labels in loader:",
        "    counts += torch.bincount(labels, minlength=len(dataset.classes))",
        "print(counts.tolist())",
    ]
    return "\n".join(lines) + "\n"


def batch_code(
    spec: DatasetSpec,
    root: Path,
    split: str,
    settings: LoaderSettings,
    image_shape: tuple[int, int, int],
    pipeline: Pipeline,
    index: int,
) -> str:
    """Python that builds this loader and takes its batch `index`, as the Batches page shows
    it: runnable as shown."""
    lines = loader_code(spec, root, split, settings, None, image_shape, pipeline)
    lines += [
        "",
        f"# Batch {index} of the first epoch (the loader decodes the batches before it too).",
        f"images, labels = next(itertools.islice(loader, {index}, None))",
        "print(images.shape, images.dtype, float(images.min()), float(images.max()))",
        "print(labels)",
    ]
    return "import itertools\n" + "\n".join(lines) + "\n"


def weights_fix(settings: LoaderSettings) -> str:
    """Class weights for the loss, or a WeightedRandomSampler drawing balanced batches."""
    return (
        "targets = torch.as_tensor(dataset.targets)\n"
        "class_counts = torch.bincount(targets, minlength=len(dataset.classes))\n"
        "class_weights = len(dataset) / (len(dataset.classes) * "
        "class_counts.clamp(min=1).double())\n"
        "\n"
        "# Either weight the loss ...\n"
        "criterion = torch.nn.CrossEntropyLoss(weight=class_weights.float())\n"
        "# ... or draw balanced batches (not both):\n"
        "sampler = torch.utils.data.WeightedRandomSampler(\n"
        "    class_weights[targets],\n"
        "    num_samples=len(dataset),\n"
        "    replacement=True,\n"
        f"    generator=torch.Generator().manual_seed({settings.seed}),\n"
        ")\n"
        f"loader = DataLoader(dataset, batch_size={settings.batch_size}, sampler=sampler)"
    )


def split_fix(train: SplitData, from_train: int, from_test: int) -> str:
    """Subsets of train and test that keep each distinct image once, where it first appears."""
    shape = train.image_shape
    build = [
        line.replace("transform=transform", "transform=to_tensor")
        for split in ("train", "test")
        for line in train.spec.format.dataset_code(
            train.spec, train.root, split, shape, name=f"{split}_set"
        )
    ]
    return "\n".join(
        [
            "import hashlib",
            "from torch.utils.data import Subset",
            "from torchvision import datasets, transforms",
            "",
            "to_tensor = transforms.ToTensor()",
            *build,
            "# Keep each distinct image once, where it first appears (train before test):",
            f"# drops {from_train:,} train and {from_test:,} test images.",
            "seen, keep = set(), {'train': [], 'test': []}",
            "for name, part in (('train', train_set), ('test', test_set)):",
            "    for i in range(len(part)):",
            "        key = hashlib.blake2b(part[i][0].numpy().tobytes(), digest_size=16).digest()",
            "        if key not in seen:",
            "            seen.add(key)",
            "            keep[name].append(i)",
            "train_set = Subset(train_set, keep['train'])",
            "test_set = Subset(test_set, keep['test'])",
        ]
    )


def loadable_fix(root: Path, paths: list[str]) -> str:
    """Shell lines that move every listed entry out of the dataset, into one folder beside it."""

    aside = ".batchscope-set-aside"
    lines = [
        "# Move these out of the dataset, where ImageFolder never looks (nothing is deleted):",
        f"cd {shlex.quote(str(root))}",
    ]
    for path in paths:
        parent = shlex.quote(str(Path(aside) / Path(path).parent))
        lines.append(f"mkdir -p {parent} && mv {shlex.quote(path)} {parent}/")
    return "\n".join(lines)


def _tuple_text(values: Iterable[float]) -> str:
    items = [f"{float(v):.4f}" for v in values]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

"""Data quality: suspicious labels (a model and cleanlab), near duplicates, outliers, class
means and a map of the data. Only the label job and the map import torch, scikit-learn,
cleanlab or UMAP, in their own process: the app reads what they stored."""

import os
import tempfile


def _numba_cache() -> str:
    """Where numba keeps what it compiles (the near-duplicate loop, UMAP's): compiling costs
    seconds, loading a tenth. ~/.cache/numba, else the temp folder: in a read-only container
    neither a home nor site-packages can be written, and numba then refuses to cache at all.
    $NUMBA_CACHE_DIR, when set, wins."""
    home = os.path.join(os.path.expanduser("~"), ".cache", "numba")
    try:
        os.makedirs(home, exist_ok=True)
        if os.access(home, os.W_OK):
            return home
    except OSError:
        pass
    return os.path.join(tempfile.gettempdir(), f"batchscope-numba-{os.getuid()}")


if "NUMBA_CACHE_DIR" not in os.environ:  # before anything imports numba
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache()


from datalib.quality.embedding import DataMap, data_map, map_job, start_map_job
from datalib.quality.labels import (
    EPOCHS,
    FOLDS,
    TRUSTED_ACCURACY,
    LabelIssues,
    find_label_issues,
    label_cost,
    label_issues,
    label_job,
    start_label_job,
    training_split,
)
from datalib.quality.near import (
    DEFAULT_BITS,
    DEFAULT_DIFFERENCE,
    MAX_BITS,
    SEARCH_RATE,
    NearDuplicates,
    NearGroup,
    near_duplicates,
    near_job,
    searched_in_page,
    start_near_job,
    stored_near_duplicates,
)
from datalib.quality.outliers import (
    PROPERTIES,
    ClassPictures,
    Outlier,
    class_pictures,
    image_properties,
    outliers,
    property_spread,
)

__all__ = [
    "DEFAULT_BITS",
    "DEFAULT_DIFFERENCE",
    "EPOCHS",
    "FOLDS",
    "MAX_BITS",
    "PROPERTIES",
    "SEARCH_RATE",
    "TRUSTED_ACCURACY",
    "ClassPictures",
    "DataMap",
    "LabelIssues",
    "NearDuplicates",
    "NearGroup",
    "Outlier",
    "class_pictures",
    "data_map",
    "find_label_issues",
    "image_properties",
    "label_cost",
    "label_issues",
    "label_job",
    "map_job",
    "near_duplicates",
    "near_job",
    "outliers",
    "property_spread",
    "searched_in_page",
    "start_label_job",
    "start_map_job",
    "start_near_job",
    "stored_near_duplicates",
    "training_split",
]

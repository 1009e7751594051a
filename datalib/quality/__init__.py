"""Data quality: suspicious labels (a model and cleanlab), near duplicates, outliers, class
means and a map of the data. Only the label job and the map import torch, scikit-learn,
cleanlab or UMAP, in their own process: the app reads what they stored."""

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
    NearDuplicates,
    NearGroup,
    near_duplicates,
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
    "outliers",
    "property_spread",
    "start_label_job",
    "start_map_job",
    "training_split",
]
